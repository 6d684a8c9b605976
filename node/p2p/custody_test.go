package p2p_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/p2p"
)

// fakeKeeper takes a share offered by one peer, opening it with its wrap key, as a
// custodian would after checking the chain.
type fakeKeeper struct {
	key    *crypto.WrapKey
	record crypto.RecordID
	from   peer.ID
	mu     sync.Mutex
	offers int
	got    crypto.Share
}

func (f *fakeKeeper) AcceptShare(_ context.Context, from peer.ID, o p2p.ShareOffer) p2p.ShareAnswer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offers++
	if from != f.from || o.Record != f.record.String() {
		return p2p.ShareAnswer{Code: 3, Reason: "not a custodian of that record"}
	}
	s, err := f.key.UnwrapShare(o.Wrapped, crypto.WrapContext{Chain: chain, Record: f.record}, crypto.ShareIndex(o.Share))
	if err != nil {
		return p2p.ShareAnswer{Code: 1, Reason: "the share does not open"}
	}
	f.got = s
	return p2p.ShareAnswer{}
}

// TestShareDelivery: a share offered over the custody protocol reaches the keeper
// wrapped, with the offerer's authenticated peer ID; a refusal is an answer, and an
// oversized offer is reset unanswered.
func TestShareDelivery(t *testing.T) {
	members := p2p.NewAllowlist()
	a, b, c := newHospital(t, members), newHospital(t, members), newHospital(t, members)
	members.Set([]peer.ID{a.host.ID(), b.host.ID(), c.host.ID()})
	rec, _ := crypto.NewRecordID()
	keeper := &fakeKeeper{key: b.keys.Wrap, record: rec, from: a.host.ID()}
	b.host.ServeCustody(keeper)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, h := range []*hospital{a, c} {
		if err := h.host.Connect(ctx, b.host.AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}
	dek, _ := crypto.NewDEK()
	shares, comm, err := dek.Split(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	w, err := crypto.WrapShare(shares[1], b.keys.Wrap.Public(), crypto.WrapContext{Chain: chain, Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	offer := p2p.ShareOffer{Record: rec.String(), Height: 5, Share: 2, Wrapped: w}
	if ans, err := a.host.OfferShare(ctx, b.host.ID(), offer); err != nil || ans.Code != 0 {
		t.Fatalf("offer: %+v, %v", ans, err)
	}
	keeper.mu.Lock()
	got := keeper.got
	keeper.mu.Unlock()
	if err := crypto.VerifyShare(comm, got); err != nil || got.Index != 2 {
		t.Fatalf("the keeper holds %v (%v), want share 2, verified", got, err)
	}
	if ans, err := c.host.OfferShare(ctx, b.host.ID(), offer); err != nil || ans.Code == 0 || ans.Reason == "" {
		t.Fatalf("offer from a non-custodian: %+v, %v; want a coded refusal", ans, err)
	}

	s, err := a.host.OpenStream(ctx, b.host.ID(), p2p.CustodyID)
	if err != nil {
		t.Fatal(err)
	}
	if err := msgio.NewVarintWriter(s).WriteMsg(bytes.Repeat([]byte("x"), 64<<10)); err == nil {
		if _, err := msgio.NewVarintReaderSize(s, 1<<20).ReadMsg(); err == nil {
			t.Fatal("the keeper answered an oversized offer")
		}
	}
	keeper.mu.Lock()
	defer keeper.mu.Unlock()
	if keeper.offers != 2 {
		t.Fatalf("the keeper was consulted %d times, want 2 (not for the oversized offer)", keeper.offers)
	}
}

// blockingKeeper holds every offer until its context ends, and reports why it ended.
type blockingKeeper struct {
	entered chan struct{}
	ended   chan error
}

func (k *blockingKeeper) AcceptShare(ctx context.Context, _ peer.ID, _ p2p.ShareOffer) p2p.ShareAnswer {
	k.entered <- struct{}{}
	select {
	case <-ctx.Done():
		k.ended <- context.Cause(ctx)
	case <-time.After(30 * time.Second):
		k.ended <- errors.New("the keeper's context did not end within 30 s")
	}
	return p2p.ShareAnswer{}
}

// TestOfferResetEndsKeeper: an offerer that resets its stream while the custodian
// works on the offer ends the custodian's Keeper context at once (not at the
// protocol's two-minute deadline); so does an offerer whose own context ends.
func TestOfferResetEndsKeeper(t *testing.T) {
	members := p2p.NewAllowlist()
	a, b := newHospital(t, members), newHospital(t, members)
	members.Set([]peer.ID{a.host.ID(), b.host.ID()})
	keeper := &blockingKeeper{entered: make(chan struct{}, 1), ended: make(chan error, 1)}
	b.host.ServeCustody(keeper)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := a.host.Connect(ctx, b.host.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	rec, _ := crypto.NewRecordID()
	offer, _ := json.Marshal(p2p.ShareOffer{Record: rec.String(), Height: 1, Share: 2, Wrapped: []byte("wrapped")})
	waitFor := func(what string, c <-chan struct{}) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not within 10 s", what)
		}
	}
	ended := func() error {
		t.Helper()
		select {
		case err := <-keeper.ended:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("the keeper's context did not end within 10 s of the offerer's reset")
			return nil
		}
	}

	s, err := a.host.OpenStream(ctx, b.host.ID(), p2p.CustodyID)
	if err != nil {
		t.Fatal(err)
	}
	if err := msgio.NewVarintWriter(s).WriteMsg(offer); err != nil {
		t.Fatal(err)
	}
	waitFor("the keeper was not consulted", keeper.entered)
	s.Reset()
	if err := ended(); err == nil || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "30 s") {
		t.Fatalf("the keeper's context ended with %v, want the stream's end", err)
	}

	offerCtx, stop := context.WithCancel(ctx)
	answered := make(chan error, 1)
	go func() {
		_, err := a.host.OfferShare(offerCtx, b.host.ID(), p2p.ShareOffer{Record: rec.String(), Height: 1, Share: 2})
		answered <- err
	}()
	waitFor("the keeper was not consulted", keeper.entered)
	stop()
	if err := ended(); err == nil || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "30 s") {
		t.Fatalf("the keeper's context ended with %v, want the stream's end", err)
	}
	select {
	case err := <-answered:
		if err == nil {
			t.Fatal("an offer whose context ended has an answer")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OfferShare did not return within 10 s of its context's end")
	}
}
