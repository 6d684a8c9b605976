package abci_test

import (
	"bytes"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/node/chain/abci"
)

// TestConsentAppHashDeterminism feeds one stream of signed consent txs, through the
// ABCI adapter, to fresh consent machines under GOMAXPROCS 1 and 2, and to one whose
// app has no read cache (every read reaches the store): the app hash must agree at
// every height.
func TestConsentAppHashDeterminism(t *testing.T) {
	const chainID = "determinism"
	genesisTime := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	txs := consenttest.Stream(42, 300, chainID, 1000)
	runs := []struct {
		procs     int
		readCache bool
	}{
		{1, true},
		{2, true},
		{2, false},
	}
	hashes := make([][][]byte, len(runs))
	for i, run := range runs {
		prev := runtime.GOMAXPROCS(run.procs)
		a, err := abci.NewApp(filepath.Join(t.TempDir(), "app"), abci.NewConsentMachine(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !run.readCache {
			abci.SetReadCache(a, 0)
		}
		init, err := a.InitChain(t.Context(), &abcitypes.RequestInitChain{ChainId: chainID, InitialHeight: 1,
			Time: genesisTime, AppStateBytes: consenttest.WorldGenesis()})
		if err != nil {
			t.Fatal(err)
		}
		hashes[i] = append(hashes[i], init.AppHash)
		applied := 0
		for h := 1; (h-1)*5 < len(txs); h++ {
			req := &abcitypes.RequestFinalizeBlock{Height: int64(h), Time: genesisTime.Add(time.Duration(h) * time.Second),
				Txs: txs[(h-1)*5 : min(h*5, len(txs))]}
			res, err := a.FinalizeBlock(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Commit(t.Context(), &abcitypes.RequestCommit{}); err != nil {
				t.Fatal(err)
			}
			for _, r := range res.TxResults {
				if r.Code == 0 {
					applied++
				}
			}
			hashes[i] = append(hashes[i], res.AppHash)
		}
		if applied < len(txs)/4 {
			t.Fatalf("only %d of %d txs applied: the stream does not exercise the machine", applied, len(txs))
		}
		a.Close()
		runtime.GOMAXPROCS(prev)
	}
	for i := range runs[1:] {
		for h := range hashes[0] {
			if !bytes.Equal(hashes[0][h], hashes[i+1][h]) {
				t.Fatalf("height %d: app hash %x in run 0, %x in run %d", h, hashes[0][h], hashes[i+1][h], i+1)
			}
		}
	}
	if bytes.Equal(hashes[0][1], hashes[0][len(hashes[0])-1]) {
		t.Fatal("app hash never changed")
	}
}
