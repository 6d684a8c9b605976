package abci_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

// TestStoreFailureIsAFault: a validator whose app store fails its writes stops
// (CometBFT halts on the failed Commit) and says why through Fault and Faulted; the
// other three go on, and its Status shows the peers ahead of it.
func TestStoreFailureIsAFault(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 4-validator network")
	}
	net := nodetest.New(t, 4, func(int) abci.StateMachine { return new(nodetest.KV) })
	net.Start()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := net.WaitHeight(ctx, 3); err != nil {
		t.Fatal(err)
	}
	bad := net.Nodes[0]
	if err := bad.Fault(); err != nil {
		t.Fatalf("fault before any: %v", err)
	}
	for s := bad.Status(); s.Peers != 3 || !s.Running || s.BlockTime.IsZero() || s.Height < 3; s = bad.Status() {
		if ctx.Err() != nil {
			t.Fatalf("healthy status %+v; want 3 peers, running, a block time, height ≥ 3", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	errDisk := errors.New("no space left on device")
	abci.InjectStoreFaults(bad.App(), nil, errDisk)
	injected := time.Now()
	select {
	case <-bad.Faulted():
	case <-ctx.Done():
		t.Fatal("no fault within a minute of the store failing")
	}
	t.Logf("fault reported %s after the store began to fail", time.Since(injected).Round(time.Millisecond))
	if err := bad.Fault(); !errors.Is(err, errDisk) {
		t.Fatalf("Fault = %v, want the store's error", err)
	}
	stuck := bad.Height()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := bad.Status()
		if s.Height == stuck && s.PeerHeight > stuck+1 {
			break
		}
		if s.Height != stuck {
			t.Fatalf("height moved from %d to %d after the fault", stuck, s.Height)
		}
		if time.Now().After(deadline) {
			t.Fatalf("peers not seen ahead within 30 s: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, i := range []int{1, 2, 3} {
		if err := net.Nodes[i].Fault(); err != nil {
			t.Errorf("node %d: fault %v", i, err)
		}
	}
	if s := net.Nodes[1].Status(); s.BlockTime.IsZero() || s.Height <= stuck+1 {
		t.Errorf("node 1 status %+v; want it past height %d", s, stuck+1)
	}
}
