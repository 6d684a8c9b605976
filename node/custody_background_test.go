package node_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/nodetest"
	"github.com/medledger/medledger/node/p2p"
)

// stallingKeeper takes share offers and never answers: it holds each until its
// context ends, and reports that end.
type stallingKeeper struct {
	entered chan struct{}
	ended   chan error
}

func (k *stallingKeeper) AcceptShare(ctx context.Context, _ peer.ID, _ p2p.ShareOffer) p2p.ShareAnswer {
	k.entered <- struct{}{}
	<-ctx.Done()
	k.ended <- ctx.Err()
	return p2p.ShareAnswer{Code: uint32(consent.CodeNotCurrent), Reason: "stalled"}
}

// TestIngestReturnsAtThreshold: a record in 2-of-3 custody is available, and the
// ingest returns, once ada (the ingesting hospital) and bayside accepted, while
// city sits on its offer; the offer goes on in the background, stays pending at ada,
// and ends when ada closes (city's handler sees its context end), without holding
// up ada's Close for the protocol's two-minute deadline.
func TestIngestReturnsAtThreshold(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	var lie atomic.Bool
	net := startCustody(t, &lie)
	ada, city, dunmore := net.Nodes[0], net.Nodes[2], net.Nodes[3]
	keeper := &stallingKeeper{entered: make(chan struct{}, 32), ended: make(chan error, 32)}
	city.Host().ServeCustody(keeper) // city takes offers and does not answer

	patient, pid := nodetest.NewPatient(t)
	ctx, cancel := context.WithTimeout(nodetest.Ctx(t), 60*time.Second)
	defer cancel()
	start := time.Now()
	rec, err := ada.Ingest(ctx, pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatalf("ingest with a custodian that does not answer: %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("the ingest took %v: it waited for city's answer, or its own deadline", took)
	}
	select {
	case <-keeper.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("city was not offered its share")
	}
	select {
	case err := <-keeper.ended:
		t.Fatalf("city's offer ended (%v) before ada closed: the ingest waited for it", err)
	default:
	}
	st, err := ada.Custody(ctx, rec.ID)
	if err != nil || !st.Available || len(st.Accepted) != 2 {
		t.Fatalf("custody at ada when the ingest returned: %+v %v; want available, 2 accepted", st, err)
	}
	nodetest.AsPatient(t, dunmore, patient, nodetest.Permit(pid, "dunmore"))
	if _, err := dunmore.Read(ctx, rec.ID, "TREAT"); err != nil {
		t.Fatalf("read with city's offer still out: %v", err)
	}
	home := ada.Home()

	stopped := make(chan struct{})
	go func() { net.StopNode(0); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("ada did not close within 30 s with an offer out")
	}
	select {
	case err := <-keeper.ended:
		if err == nil {
			t.Fatal("city's offer ended without a cause")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("city's handling of the offer did not end when ada closed")
	}
	left, _ := filepath.Glob(filepath.Join(node.PendingSharesDir(home), string(rec.ID)+".*.json"))
	if len(left) != 1 || filepath.Base(left[0]) != string(rec.ID)+".city.json" {
		t.Fatalf("pending offers after ada closed: %q, want city's alone (for repair)", left)
	}
}
