package p2p_test

import (
	"bytes"
	"context"
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
