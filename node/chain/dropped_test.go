package chain_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

// TestSubmitDroppedTx: a tx that passed CheckTx but left the mempool uncommitted
// (checked again after a block and found no longer valid) ends SubmitTx with
// *TxDropped within a few heights, whatever the caller's deadline; before, a caller
// without one (a background loop) waited for ever. Blocks hold one of the two txs at
// most (block.max_bytes), so the gate commits alone and makes the other invalid while
// it waits in the mempool.
func TestSubmitDroppedTx(t *testing.T) {
	t.Parallel()
	small := func(c *nodetest.ValidatorsConfig) { c.MaxBlockBytes = 8000 }
	net := nodetest.New(t, 1, func(int) abci.StateMachine { return new(nodetest.KV) }, small)
	net.Start()
	nd := net.Nodes[0]
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := net.WaitHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 3000)
	var wg sync.WaitGroup
	var gateErr error
	var gateHeight int64
	wg.Go(func() {
		_, gateHeight, _, gateErr = nd.SubmitTx(ctx, []byte("gate="+pad))
	})
	time.Sleep(10 * time.Millisecond) // the gate first in the mempool
	start := time.Now()
	check, height, res, err := nd.SubmitTx(ctx, []byte("unless:gate:late="+pad))
	wg.Wait()
	if gateErr != nil || gateHeight == 0 {
		t.Fatalf("the gate: height %d, %v", gateHeight, gateErr)
	}
	var dropped *chain.TxDropped
	if !errors.As(err, &dropped) {
		t.Fatalf("a tx made invalid in the mempool: check %+v, height %d, result %+v, err %v; want *TxDropped", check, height, res, err)
	}
	t.Logf("dropped after %s (gate at height %d): %v", time.Since(start).Round(time.Millisecond), gateHeight, err)
	if st, err := nd.TxStatus(dropped.Hash); err != nil || st.State != chain.TxUnknown {
		t.Fatalf("status of the dropped tx: %+v %v, want unknown", st, err)
	}
	// A tx that stays valid commits as before.
	if _, height, res, err := nd.SubmitTx(ctx, []byte("kept=1")); err != nil || res.Code != 0 || height == 0 {
		t.Fatalf("submit of a valid tx: height %d, result %+v, err %v", height, res, err)
	}
}
