package chain_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

// TestWaitHeight: a wait for a height ends as soon as the node commits it (woken by the
// event bus), a wait that ctx ends says so, and once the node stops every wait ends
// with ErrStopped.
func TestWaitHeight(t *testing.T) {
	net := nodetest.New(t, 1, func(int) abci.StateMachine { return new(nodetest.KV) })
	net.Start()
	nd := net.Nodes[0]
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	target := nd.Height() + 3
	if err := nd.WaitHeight(ctx, target); err != nil || nd.Height() < target {
		t.Fatalf("WaitHeight(%d) = %v at height %d", target, err, nd.Height())
	}
	before := nd.Height()
	select {
	case <-nd.NewHeight():
		if nd.Height() <= before {
			t.Fatalf("woken at height %d, not above %d", nd.Height(), before)
		}
	case <-ctx.Done():
		t.Fatal("no new height within 30 s")
	}

	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := nd.WaitHeight(short, nd.Height()+1_000_000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitHeight(far) with a 50 ms context = %v, want the deadline", err)
	}

	if err := nd.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := nd.WaitHeight(ctx, nd.Height()+1); !errors.Is(err, chain.ErrStopped) {
		t.Fatalf("WaitHeight after Stop = %v, want ErrStopped", err)
	}
	select {
	case <-nd.NewHeight():
	case <-time.After(time.Second):
		t.Fatal("NewHeight after Stop is not closed")
	}
}
