package chain_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

// TestSubmitDroppedTx: a tx that passed CheckTx but left the mempool uncommitted
// (checked again after a block and found no longer valid) ends SubmitTx with
// *TxDropped within a few heights, whatever the caller's deadline; before, a caller
// without one (a background loop) waited for ever. Blocks hold one of the two txs at
// most (block.max_bytes): the gate, first in the mempool, commits alone and makes the
// other invalid while it waits. The late tx must reach the mempool after the gate and
// before the gate's block commits; an attempt that misses that window (the gate
// committed first, so the late tx is refused at once) is made again, five at most.
func TestSubmitDroppedTx(t *testing.T) {
	t.Parallel()
	small := func(c *nodetest.ValidatorsConfig) { c.MaxBlockTxBytes = 4500 } // one tx of ~3 kB, not two
	net := nodetest.New(t, 1, func(int) abci.StateMachine { return new(nodetest.KV) }, small)
	net.Start()
	nd := net.Nodes[0]
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := net.WaitHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 3000)
	for attempt := range 5 {
		gate := fmt.Appendf(nil, "gate%d=%s", attempt, pad)
		gated := make(chan error, 1)
		go func() {
			_, _, res, err := nd.SubmitTx(ctx, gate)
			if err == nil && res.Code != 0 {
				err = fmt.Errorf("gate refused: %+v", res)
			}
			gated <- err
		}()
		for st, _ := nd.TxStatus(cmttypes.Tx(gate).Hash()); st.State == chain.TxUnknown && ctx.Err() == nil; st, _ = nd.TxStatus(cmttypes.Tx(gate).Hash()) {
			time.Sleep(time.Millisecond)
		}
		lateCtx, cancelLate := context.WithTimeout(ctx, 20*time.Second) // a dropped tx ends within two heights
		check, height, res, err := nd.SubmitTx(lateCtx, fmt.Appendf(nil, "unless:gate%d:late%d=%s", attempt, attempt, pad))
		cancelLate()
		if gerr := <-gated; gerr != nil {
			t.Fatalf("the gate: %v", gerr)
		}
		var dropped *chain.TxDropped
		switch {
		case errors.As(err, &dropped):
			t.Logf("attempt %d: %v", attempt+1, err)
			if st, err := nd.TxStatus(dropped.Hash); err != nil || st.State != chain.TxUnknown {
				t.Fatalf("status of the dropped tx: %+v %v, want unknown", st, err)
			}
			// A tx that stays valid commits as before.
			if _, height, res, err := nd.SubmitTx(ctx, []byte("kept=1")); err != nil || res.Code != 0 || height == 0 {
				t.Fatalf("submit of a valid tx: height %d, result %+v, err %v", height, res, err)
			}
			return
		case err == nil && check.Code == nodetest.CodeGated: // the gate committed first: try again
			t.Logf("attempt %d: the gate committed before the late tx was checked", attempt+1)
		default:
			t.Fatalf("a tx made invalid in the mempool: check %+v, height %d, result %+v, err %v; want *TxDropped", check, height, res, err)
		}
	}
	t.Fatal("in five attempts the late tx never reached the mempool before the gate's block")
}
