package p2p_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/p2p"
	"github.com/medledger/medledger/storage"
)

const chain crypto.ChainID = "medledger-p2p-test"

// hospital is one member's node for these tests: real keys, a real leveldb block store
// on disk, a real libp2p host on 127.0.0.1.
type hospital struct {
	keys  *crypto.Hospital
	store *storage.Store
	host  *p2p.Host
	wire  *wireTap
}

func newHospital(t testing.TB, members *p2p.Allowlist, bootstrap ...peer.ID) *hospital {
	t.Helper()
	keys, err := crypto.GenerateHospital()
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(t.Context(), filepath.Join(t.TempDir(), "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	nodeKey, err := keys.Node.Ed25519PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	tap := &wireTap{}
	h, err := p2p.New(t.Context(), p2p.Config{NodeKey: nodeKey, Members: members, Bootstrap: bootstrap, Store: store, Tracer: tap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &hospital{keys: keys, store: store, host: h, wire: tap}
}

func peerID(t testing.TB, h *crypto.Hospital) peer.ID {
	t.Helper()
	id, err := p2p.PeerID(h.Node.Public())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// wireTap records every block bitswap sends.
type wireTap struct {
	mu     sync.Mutex
	blocks [][]byte
}

func (w *wireTap) MessageReceived(peer.ID, bsmsg.BitSwapMessage) {}
func (w *wireTap) MessageSent(_ peer.ID, m bsmsg.BitSwapMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range m.Blocks() {
		w.blocks = append(w.blocks, bytes.Clone(b.RawData()))
	}
}

func TestPeerIDIsNodeKey(t *testing.T) {
	members := p2p.NewAllowlist()
	a := newHospital(t, members)
	if got, want := a.host.ID(), peerID(t, a.keys); got != want {
		t.Fatalf("host peer ID %s, want the node key's %s", got, want)
	}
	for _, addr := range a.host.AddrInfo().Addrs {
		if s := addr.String(); !bytes.HasPrefix([]byte(s), []byte("/ip4/127.0.0.1/")) {
			t.Errorf("listening on %s, want loopback only", s)
		}
	}
}

func TestMembersFetchAndDecryptNonMembersGetNothing(t *testing.T) {
	members := p2p.NewAllowlist()
	a := newHospital(t, members)
	b := newHospital(t, members)
	d := newHospital(t, members)
	members.Set([]peer.ID{a.host.ID(), b.host.ID(), d.host.ID()})

	bundlePath := "../../testdata/fhir/synthea/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
	plain, err := os.ReadFile(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	sealed := seal(t, a.store, plain)
	// A hands B the DEK wrapped for B (on the chain's say-so, in later issues).
	wctx := crypto.WrapContext{Chain: chain, Record: sealed.id, Grant: "grant-for-b"}
	wrapped, err := crypto.Wrap(sealed.dek, b.keys.Wrap.Public(), wctx)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := b.host.Connect(ctx, only(t, a.host.AddrInfo(), "quic-v1")); err != nil {
		t.Fatal(err)
	}
	r, err := b.host.Fetch(ctx, sealed.cid)
	if err != nil {
		t.Fatal(err)
	}
	bDEK, err := b.keys.Wrap.Unwrap(wrapped, wctx)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := bDEK.Decrypt(r, crypto.Binding{Chain: chain, Record: sealed.id})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("B decrypted %d bytes that differ from the %d-byte bundle", len(got), len(plain))
	}
	// The wrapped key is useless to anyone else.
	if _, err := a.keys.Wrap.Unwrap(wrapped, wctx); !errors.Is(err, crypto.ErrUnwrap) {
		t.Fatalf("A unwrapped B's key: %v", err)
	}

	t.Run("over TCP", func(t *testing.T) {
		if err := d.host.Connect(ctx, only(t, a.host.AddrInfo(), "tcp")); err != nil {
			t.Fatal(err)
		}
		r, err := d.host.Fetch(ctx, sealed.cid)
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := io.ReadAll(r)
		if int64(len(ct)) != sealed.size {
			t.Fatalf("fetched %d ciphertext bytes, want %d", len(ct), sealed.size)
		}
	})

	t.Run("no plaintext at rest or on the wire", func(t *testing.T) {
		secrets, err := fhir.PHITerms(plain)
		if err != nil {
			t.Fatal(err)
		}
		for name, s := range map[string]*storage.Store{"A's store": a.store, "B's store": b.store} {
			for _, blk := range allBlocks(t, s) {
				for _, sec := range secrets {
					if bytes.Contains(blk, []byte(sec)) {
						t.Fatalf("%s holds a block containing %q", name, sec)
					}
				}
			}
		}
		sent := a.wire.blocks
		if len(sent) == 0 {
			t.Fatal("tap saw no blocks sent by A")
		}
		for _, blk := range sent {
			for _, sec := range secrets {
				if bytes.Contains(blk, []byte(sec)) {
					t.Fatalf("A sent a block containing %q", sec)
				}
			}
		}
	})

	t.Run("non-member cannot connect", func(t *testing.T) {
		outsider := newHospital(t, p2p.NewAllowlist(a.host.ID()))
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		// The dialer may finish its half of the handshake before A, having seen the
		// peer's key, drops the connection: judge by what A keeps and what is served.
		_ = outsider.host.Connect(ctx, a.host.AddrInfo())
		deadline := time.Now().Add(2 * time.Second)
		for a.host.ConnectedTo(outsider.host.ID()) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if a.host.ConnectedTo(outsider.host.ID()) {
			t.Fatal("A keeps a connection with a peer not on its allowlist")
		}
		short, cancel2 := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel2()
		if _, err := outsider.host.Fetch(short, sealed.cid); err == nil {
			t.Fatal("a non-member fetched the record")
		}
	})

	t.Run("connected non-member is served no block", func(t *testing.T) {
		// Restart nothing: C is admitted by A's gater only as a bootstrap peer, so build
		// an A-side host that knows C as bootstrap and holds the same record.
		cMembers := p2p.NewAllowlist()
		c := newHospital(t, cMembers)
		a2 := newHospital(t, members, c.host.ID())
		cMembers.Set([]peer.ID{a2.host.ID()})
		s2 := seal(t, a2.store, plain)
		if err := c.host.Connect(ctx, a2.host.AddrInfo()); err != nil {
			t.Fatalf("bootstrap peer could not connect: %v", err)
		}
		short, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		if _, err := c.host.Fetch(short, s2.cid); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("non-member fetch: got %v, want a deadline with nothing served", err)
		}
		if n := len(allBlocks(t, c.store)); n != 0 {
			t.Fatalf("non-member received %d blocks", n)
		}
		if n := len(a2.wire.blocks); n != 0 {
			t.Fatalf("A sent %d blocks to a non-member", n)
		}
	})
}

// only keeps the addresses of one transport ("tcp" or "quic-v1").
// sealed is a record encrypted under a fresh DEK into a store, as a custodian's
// ingest seals it (crypto and storage only, below the node).
type sealed struct {
	id   crypto.RecordID
	cid  cid.Cid
	dek  *crypto.DEK
	size int64 // ciphertext bytes
}

func seal(tb testing.TB, s *storage.Store, plain []byte) sealed {
	tb.Helper()
	id, err := crypto.NewRecordID()
	if err != nil {
		tb.Fatal(err)
	}
	dek, err := crypto.NewDEK()
	if err != nil {
		tb.Fatal(err)
	}
	var ct bytes.Buffer
	w, err := dek.Encrypt(&ct, crypto.Binding{Chain: chain, Record: id})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	c, n, err := s.Import(tb.Context(), &ct)
	if err != nil {
		tb.Fatal(err)
	}
	return sealed{id: id, cid: c, dek: dek, size: n}
}

func only(t testing.TB, pi peer.AddrInfo, transport string) peer.AddrInfo {
	t.Helper()
	var out peer.AddrInfo
	out.ID = pi.ID
	for _, a := range pi.Addrs {
		last := a[len(a)-1]
		if last.Protocol().Name == transport {
			out.Addrs = append(out.Addrs, a)
		}
	}
	if len(out.Addrs) == 0 {
		t.Fatalf("no %s address in %v", transport, pi.Addrs)
	}
	return out
}

func allBlocks(t *testing.T, s *storage.Store) [][]byte {
	t.Helper()
	keys, err := s.Blockstore().AllKeysChan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for k := range keys {
		blk, err := s.Blockstore().Get(t.Context(), cid.NewCidV1(cid.Raw, k.Hash()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, blk.RawData())
	}
	return out
}
