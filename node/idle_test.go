package node_test

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
)

// startIdleNet starts n hospitals whose homes have the production default
// chain.empty_block_interval (off: no blocks without txs); they stop with the test.
func startIdleNet(t *testing.T, n int) ([]*home.Home, []*node.Node) {
	t.Helper()
	homes, err := node.Testnet(node.TestnetConfig{Dir: t.TempDir(), Hospitals: n, EmptyBlockInterval: home.EmptyBlocksOff})
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*node.Node, n)
	for i, h := range homes {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if nodes[i], err = node.Start(t.Context(), node.Config{Home: h, APIListener: l}); err != nil {
			t.Fatal(err)
		}
		nd := nodes[i]
		t.Cleanup(func() { nd.Close() })
	}
	return homes, nodes
}

// settle waits (at most 20 s) until no node has made a block for quiet, and returns
// node 0's height then.
func settle(t *testing.T, nodes []*node.Node, quiet time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last, since := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		h := nodes[0].Chain().Height()
		for _, nd := range nodes {
			h = min(h, nd.Chain().Height())
		}
		if h != last || nodes[0].Chain().Height() != h {
			last, since = h, time.Now()
		}
		if h > 0 && time.Since(since) >= quiet {
			return h
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the chain never stopped making blocks (node 0 at height %d)", nodes[0].Chain().Height())
	return 0
}

// decide submits bayside's request for rec and returns the chain's decision.
func decide(t *testing.T, nd *node.Node, h *home.Home, rec consent.RecordID) consent.GrantInfo {
	t.Helper()
	body := consent.Body{Kind: consent.KindRequest, Request: &consent.Request{Requester: consent.HospitalID(h.Config.ID), Record: rec, Purpose: "TREAT"}}
	c, err := nd.SubmitTx(nodetest.Ctx(t), nodetest.Signed(t, nd, body, h.Keys.Operator))
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := nd.Chain().Query("/grant/"+string(c.ID), nil)
	var g consent.GrantInfo
	if err != nil || res.Code != 0 || json.Unmarshal(res.Value, &g) != nil {
		t.Fatalf("decision %s: %v %+v", c.ID, err, res)
	}
	return g
}

// TestIdleChainMakesNoBlocks: with the production default, an idle consortium makes no
// blocks; a tx still commits; and a consent whose end passes while the chain is idle
// denies the next request (its block has a current time, not the time the chain went
// idle).
func TestIdleChainMakesNoBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	homes, nodes := startIdleNet(t, 4)
	ada, bayside := nodes[0], nodes[1]
	idleAt := settle(t, nodes, 2*time.Second)
	time.Sleep(2 * time.Second)
	if h := ada.Chain().Height(); h != idleAt {
		t.Fatalf("an idle chain went on from height %d to %d", idleAt, h)
	}

	patient, pid := nodetest.NewPatient(t)
	rid, err := crypto.NewRecordID()
	if err != nil {
		t.Fatal(err)
	}
	rec := consent.RecordID(rid.String())
	reg := consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: rec, CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm", Patient: pid,
		Classes: []consent.DataClass{"Observation"}, Custodians: []consent.HospitalID{"ada"}}}
	if _, err := ada.SubmitTx(nodetest.Ctx(t), nodetest.Signed(t, ada, reg, homes[0].Keys.Operator)); err != nil {
		t.Fatal(err)
	}
	grant := nodetest.Permit(pid, "bayside")
	end := time.Now().Add(4 * time.Second).Unix()
	grant.Grant.Policy.End = end
	nodetest.AsPatient(t, bayside, patient, grant)
	if g := decide(t, bayside, homes[1], rec); !g.Granted {
		t.Fatalf("a request within the consent's period was denied: %s", g.Reason)
	}

	// Idle past the consent's end: no blocks are made meanwhile.
	quietFrom := settle(t, nodes, time.Second)
	for time.Now().Unix() <= end+1 {
		time.Sleep(100 * time.Millisecond)
	}
	if h := ada.Chain().Height(); h != quietFrom {
		t.Fatalf("the idle chain went on from height %d to %d", quietFrom, h)
	}
	g := decide(t, bayside, homes[1], rec)
	if g.Granted || g.Reason != consent.ReasonExpired || g.Time <= end {
		t.Fatalf("request after the consent ended (%d) during an idle period: granted %v, reason %q, block time %d",
			end, g.Granted, g.Reason, g.Time)
	}
	t.Logf("idle at height %d; request after idle decided at height %d (time %d > end %d)", quietFrom, g.Height, g.Time, end)
}
