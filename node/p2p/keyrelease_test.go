package p2p_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/p2p"
)

// fakeCustodian releases one DEK for one grant, to one peer, as a real custodian
// would after checking the chain.
type fakeCustodian struct {
	dek     *crypto.DEK
	grant   string
	holder  peer.ID
	wrapTo  crypto.WrapPublicKey
	record  crypto.RecordID
	mu      sync.Mutex
	callers []peer.ID
}

func (f *fakeCustodian) Release(_ context.Context, from peer.ID, req p2p.ReleaseRequest) p2p.ReleaseResponse {
	grant := req.Grant
	f.mu.Lock()
	f.callers = append(f.callers, from)
	f.mu.Unlock()
	if grant != f.grant || from != f.holder {
		return p2p.ReleaseResponse{Code: 14, Reason: "no committed grant for this peer"}
	}
	w, err := crypto.Wrap(f.dek, f.wrapTo, crypto.WrapContext{Chain: chain, Record: f.record, Grant: crypto.GrantID(grant)})
	if err != nil {
		return p2p.ReleaseResponse{Code: 1, Reason: err.Error()}
	}
	return p2p.ReleaseResponse{Record: f.record.String(), Wrapped: w}
}

func TestKeyRelease(t *testing.T) {
	members := p2p.NewAllowlist()
	a := newHospital(t, members)
	b := newHospital(t, members)
	c := newHospital(t, members)
	members.Set([]peer.ID{a.host.ID(), b.host.ID(), c.host.ID()})
	dek, _ := crypto.NewDEK()
	rec, _ := crypto.NewRecordID()
	cust := &fakeCustodian{dek: dek, grant: "g1", holder: b.host.ID(), wrapTo: b.keys.Wrap.Public(), record: rec}
	a.host.ServeKeyRelease(cust)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, h := range []*hospital{b, c} {
		if err := h.host.Connect(ctx, a.host.AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}

	resp, err := b.host.RequestKey(ctx, a.host.ID(), p2p.ReleaseRequest{Grant: "g1"})
	if err != nil || resp.Code != 0 {
		t.Fatalf("holder's request: %+v, %v", resp, err)
	}
	got, err := b.keys.Wrap.Unwrap(resp.Wrapped, crypto.WrapContext{Chain: chain, Record: rec, Grant: "g1"})
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("the record")
	var ct bytes.Buffer
	w, _ := dek.Encrypt(&ct, crypto.Binding{Chain: chain, Record: rec})
	w.Write(plain)
	w.Close()
	r, _ := got.Decrypt(&ct, crypto.Binding{Chain: chain, Record: rec})
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil || !bytes.Equal(out.Bytes(), plain) {
		t.Fatalf("released DEK does not open the record: %v", err)
	}

	// Another member asking for the same grant gets a coded refusal, and no key.
	resp, err = c.host.RequestKey(ctx, a.host.ID(), p2p.ReleaseRequest{Grant: "g1"})
	if err != nil || resp.Code == 0 || resp.Wrapped != nil || resp.Reason == "" {
		t.Fatalf("other member: %+v, %v", resp, err)
	}
	// A forged grant.
	if resp, err := b.host.RequestKey(ctx, a.host.ID(), p2p.ReleaseRequest{Grant: "forged"}); err != nil || resp.Code == 0 || resp.Wrapped != nil {
		t.Fatalf("forged grant: %+v, %v", resp, err)
	}
	// The custodian saw each requester's authenticated peer ID.
	if len(cust.callers) != 3 || cust.callers[0] != b.host.ID() || cust.callers[1] != c.host.ID() {
		t.Fatalf("custodian saw callers %v", cust.callers)
	}

	t.Run("oversized request is reset unanswered", func(t *testing.T) {
		s, err := b.host.OpenStream(ctx, a.host.ID(), p2p.KeyReleaseID)
		if err != nil {
			t.Fatal(err)
		}
		if err := msgio.NewVarintWriter(s).WriteMsg(bytes.Repeat([]byte("x"), 64<<10)); err != nil {
			return // reset while writing: fine
		}
		if _, err := msgio.NewVarintReaderSize(s, 1<<20).ReadMsg(); err == nil {
			t.Fatal("custodian answered an oversized request")
		}
		if len(cust.callers) != 3 {
			t.Fatal("custodian was consulted for an oversized request")
		}
	})

	t.Run("non-member cannot ask", func(t *testing.T) {
		outsider := newHospital(t, p2p.NewAllowlist(a.host.ID()))
		short, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		_ = outsider.host.Connect(short, a.host.AddrInfo())
		if _, err := outsider.host.RequestKey(short, a.host.ID(), p2p.ReleaseRequest{Grant: "g1"}); !errors.Is(err, p2p.ErrReleaseProtocol) {
			t.Fatalf("non-member: got %v, want no answer", err)
		}
	})
}
