package abci_test

import (
	"bytes"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/medledger/medledger/node/chain/abci"
)

// TestIdleBlockKeepsState: a block without txs changes neither the state nor the app
// hash (so CometBFT makes no proof block after it and an idle chain stops), while the
// height advances and its hash parts still rebuild the hash.
func TestIdleBlockKeepsState(t *testing.T) {
	a := openApp(t, t.TempDir())
	initChain(t, a)
	busy := &abcitypes.RequestFinalizeBlock{Height: 1, Time: genesisTime.Add(time.Second), Txs: [][]byte{[]byte("a=1"), []byte("tmp:b=2")}}
	run(t, a, []*abcitypes.RequestFinalizeBlock{busy})
	before := a.AppHash()
	keys := func() string {
		q, err := a.Query(t.Context(), &abcitypes.RequestQuery{Path: "/keys"})
		if err != nil || q.Code != 0 {
			t.Fatalf("query: %v %+v", err, q)
		}
		return string(q.Value)
	}
	state := keys()
	idle := []*abcitypes.RequestFinalizeBlock{
		{Height: 2, Time: genesisTime.Add(2 * time.Second)},
		{Height: 3, Time: genesisTime.Add(time.Hour)},
	}
	for i, h := range run(t, a, idle) {
		if !bytes.Equal(h, before) {
			t.Fatalf("idle height %d: app hash %x, want the unchanged %x", i+2, h, before)
		}
	}
	if got := keys(); got != state || a.Height() != 3 {
		t.Fatalf("after idle blocks: height %d, state %q, want 3 and %q", a.Height(), got, state)
	}
	p, err := a.HashPartsAt(3)
	if err != nil || p == nil || p.Height != 1 || !bytes.Equal(abci.AppHashOf(p.Prev, p.Digest, p.Height, p.Commitment), before) {
		t.Fatalf("hash parts of idle height 3: %+v, %v; want height 1's, rebuilding %x", p, err, before)
	}
	if h, _ := a.AppHashAt(3); !bytes.Equal(h, before) {
		t.Fatalf("AppHashAt(3) = %x, want %x", h, before)
	}
	// A block with txs after the idle ones changes the hash again.
	next := run(t, a, []*abcitypes.RequestFinalizeBlock{{Height: 4, Time: genesisTime.Add(time.Hour + time.Second), Txs: [][]byte{[]byte("c=3")}}})
	if bytes.Equal(next[0], before) {
		t.Fatal("a block with a tx kept the app hash")
	}
}

// TestPrepareProposalStaleTime: a proposal whose block time lags the proposer's clock
// by more than StaleBlockTime (the chain was idle) carries no txs, so that the txs are
// decided in the next block, at a current time.
func TestPrepareProposalStaleTime(t *testing.T) {
	a := openApp(t, t.TempDir())
	txs := [][]byte{[]byte("a=1"), []byte("b=2")}
	for _, c := range []struct {
		lag  time.Duration
		want int
	}{
		{0, 2},
		{abci.StaleBlockTime / 2, 2},
		{abci.StaleBlockTime + time.Second, 0},
		{time.Hour, 0},
	} {
		res, err := a.PrepareProposal(t.Context(), &abcitypes.RequestPrepareProposal{
			Txs: txs, MaxTxBytes: 1 << 20, Time: time.Now().Add(-c.lag), Height: 5})
		if err != nil || len(res.Txs) != c.want {
			t.Errorf("block time %v old: %d txs proposed (%v), want %d", c.lag, len(res.Txs), err, c.want)
		}
	}
}
