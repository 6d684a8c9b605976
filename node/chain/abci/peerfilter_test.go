package abci_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/node/chain/abci"
)

// TestPeerFilter: an App given AdmitPeers answers CometBFT's peer filter queries from
// the committed state (here the genesis registry, before the first commit), whatever
// the RPC gate: a member's node ID is admitted, any other refused, any address let
// through; if the registry cannot be read, no peer is admitted.
func TestPeerFilter(t *testing.T) {
	var g consent.Genesis
	for _, id := range []string{"ada", "bayside"} {
		g.Hospitals = append(g.Hospitals, consenttest.Hospital(id, 1))
	}
	gb, _ := json.Marshal(g)
	a, err := abci.NewApp(filepath.Join(t.TempDir(), "app"), abci.NewConsentMachine(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.InitChain(t.Context(), &abcitypes.RequestInitChain{ChainId: "filter", InitialHeight: 1,
		Time: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), AppStateBytes: gb}); err != nil {
		t.Fatal(err)
	}
	a.GateQueries(nil) // no path is public over the RPC
	fail := false
	a.AdmitPeers(func(r consent.Reader, _ int64) ([]ed25519.PublicKey, error) {
		if fail {
			return nil, context.DeadlineExceeded
		}
		hs, err := consent.Hospitals(r)
		keys := make([]ed25519.PublicKey, len(hs))
		for i, h := range hs {
			keys[i] = h.Node
		}
		return keys, err
	}, func(id string) bool { return id == "5ca1ab1e" })
	ask := func(path string) *abcitypes.ResponseQuery {
		t.Helper()
		res, err := a.Query(context.TODO(), &abcitypes.RequestQuery{Path: path}) // as CometBFT asks
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if k := consenttest.Hospital("bayside", 1).Node; abci.NodeID(k) != strings.ToLower(cmted25519.PubKey(k).Address().String()) {
		t.Fatalf("NodeID %s is not CometBFT's %s", abci.NodeID(k), cmted25519.PubKey(k).Address())
	}
	member := abci.NodeID(consenttest.Hospital("bayside", 1).Node)
	outsider := abci.NodeID(consenttest.NewKey("outsider/node").Public())
	if res := ask("/p2p/filter/id/" + member); res.Code != 0 {
		t.Errorf("a member's node refused: %d %s", res.Code, res.Log)
	}
	if res := ask("/p2p/filter/id/" + outsider); res.Code != abci.CodeNotAdmitted {
		t.Errorf("an outsider's node: %d %s, want refused", res.Code, res.Log)
	}
	if res := ask("/p2p/filter/addr/127.0.0.1:26656"); res.Code != 0 {
		t.Errorf("an address refused: %d %s", res.Code, res.Log)
	}
	if res := ask("/p2p/filter/id/5ca1ab1e"); res.Code != 0 {
		t.Errorf("a node the override admits refused: %d %s", res.Code, res.Log)
	}
	fail = true
	if res := ask("/p2p/filter/id/" + member); res.Code != abci.CodeNotAdmitted || strings.Contains(res.Log, "deadline") {
		t.Errorf("a member's node while the registry cannot be read: %d %q, want refused without the error's text", res.Code, res.Log)
	}
}
