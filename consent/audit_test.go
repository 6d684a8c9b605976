package consent_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

// tb is what the helpers need of a *testing.T, *testing.B or *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// auditChain is a machine on a MemStore driven by generated txs, remembering what the
// chain committed to: the log root after each height, and after each tx that appended.
type auditChain struct {
	m        *consent.Machine
	st       *consenttest.MemStore
	height   consent.Height
	roots    []consent.LogRoot // at the end of each height, from /audit/root/<height>
	accepted []consent.TxID    // the accepted txs, in order
}

func newAuditChain(t tb) *auditChain {
	c := &auditChain{m: consent.NewMachine(), st: consenttest.NewMemStore()}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := c.m.InitChain(c.st, "prop", consenttest.WorldGenesis(), consent.Block{Time: start}); err != nil {
		t.Fatal(err)
	}
	c.roots = append(c.roots, c.rootAt(t, 0))
	return c
}

func (c *auditChain) blockTime(h consent.Height) time.Time {
	return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h) * 7 * time.Second)
}

// block applies txs in the next block and checks each result's log root.
func (c *auditChain) block(t tb, txs [][]byte) {
	c.height++
	b := consent.Block{Height: c.height, Time: c.blockTime(c.height)}
	for _, tx := range txs {
		res, err := c.m.DeliverTx(c.st, tx, b)
		if err != nil {
			t.Fatal(err)
		}
		if res.Code != consent.OK {
			continue
		}
		c.accepted = append(c.accepted, consent.IDOf(tx))
		// Every accepted tx of the world's kinds appends exactly one event, and its
		// result carries the log's size and root after it.
		got, err := consent.DecodeLogRoot(res.Value)
		if err != nil {
			t.Fatalf("tx result value: %v", err)
		}
		if got.Size != uint64(len(c.accepted)) || got.Height != c.height {
			t.Fatalf("tx result: log of %d at height %d, want %d at %d", got.Size, got.Height, len(c.accepted), c.height)
		}
	}
	if err := c.m.EndBlock(c.st, b); err != nil {
		t.Fatal(err)
	}
	c.roots = append(c.roots, c.rootAt(t, c.height))
}

func (c *auditChain) rootAt(t tb, h consent.Height) consent.LogRoot {
	var r consent.LogRoot
	c.query(t, fmt.Sprintf("/audit/root/%d", h), nil, &r)
	return r
}

func (c *auditChain) query(t tb, path string, data []byte, v any) {
	t.Helper()
	res, err := c.m.Query(c.st, path, data)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != consent.OK {
		t.Fatalf("%s: %s: %s", path, res.Code, res.Log)
	}
	if err := json.Unmarshal(res.Value, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func (c *auditChain) entries(t tb, n uint64) []consent.LogEntry {
	out := make([]consent.LogEntry, n)
	for i := range out {
		c.query(t, fmt.Sprintf("/audit/event/%d", i), nil, &out[i])
	}
	return out
}

// drawChain applies a generated tx stream in blocks of 1-4 txs.
func drawChain(t *rapid.T) *auditChain {
	txs := consenttest.Stream(rapid.Uint64().Draw(t, "seed"), rapid.IntRange(1, 60).Draw(t, "n"), "prop", 1000)
	c := newAuditChain(t)
	for len(txs) > 0 {
		n := min(len(txs), rapid.IntRange(1, 4).Draw(t, "block"))
		c.block(t, txs[:n])
		txs = txs[n:]
	}
	return c
}

// mth is RFC 6962's Merkle Tree Hash, computed naively from all the leaves.
func mth(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		s := sha256.Sum256(nil)
		return s[:]
	case 1:
		s := sha256.Sum256(append([]byte{0}, leaves[0]...))
		return s[:]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	s := sha256.Sum256(slices.Concat([]byte{1}, mth(leaves[:k]), mth(leaves[k:])))
	return s[:]
}

// The log holds one event per accepted tx, in order; every root the chain committed
// is the RFC 6962 hash of the leaves so far; every event's inclusion proof verifies
// against every committed root that covers it, and every two committed roots are
// consistent. A changed leaf, proof, index or root does not verify.
func TestAuditLogProofs(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := drawChain(rt)
		var head consent.LogRoot
		c.query(rt, "/audit/head", nil, &head)
		if head.Size != uint64(len(c.accepted)) {
			rt.Fatalf("log holds %d events, %d txs were accepted", head.Size, len(c.accepted))
		}
		entries := c.entries(rt, head.Size)
		var leaves [][]byte
		for i, e := range entries {
			if e.Event.Index != uint64(i) || e.Event.Tx != c.accepted[i] {
				rt.Fatalf("event %d is #%d of tx %s, want tx %s", i, e.Event.Index, e.Event.Tx, c.accepted[i])
			}
			if !bytes.Equal(e.LeafHash, consent.LeafHash(e.Leaf)) {
				rt.Fatalf("event %d: leaf hash is not the leaf's", i)
			}
			leaves = append(leaves, e.Leaf)
		}
		for _, r := range c.roots {
			if want := mth(leaves[:r.Size]); !bytes.Equal(r.Root, want) {
				rt.Fatalf("root at height %d (size %d) is %x, want %x", r.Height, r.Size, r.Root, want)
			}
		}
		for i, e := range entries {
			for _, r := range c.roots {
				if r.Size <= uint64(i) {
					continue
				}
				var p consent.InclusionProof
				c.query(rt, fmt.Sprintf("/audit/inclusion/%d/%d", i, r.Size), nil, &p)
				if err := consent.VerifyInclusion(e.Leaf, uint64(i), r.Size, p.Hashes(), r.Root); err != nil {
					rt.Fatalf("event %d at height %d: %v", i, r.Height, err)
				}
				mustFail(rt, "a changed leaf", consent.VerifyInclusion(flip(e.Leaf, i), uint64(i), r.Size, p.Hashes(), r.Root))
				mustFail(rt, "a changed root", consent.VerifyInclusion(e.Leaf, uint64(i), r.Size, p.Hashes(), flip(r.Root, i)))
				if len(p.Proof) > 0 {
					bad := p.Hashes()
					bad[i%len(bad)] = flip(bad[i%len(bad)], i)
					mustFail(rt, "a changed proof", consent.VerifyInclusion(e.Leaf, uint64(i), r.Size, bad, r.Root))
				}
				if r.Size > 1 {
					other := (uint64(i) + 1) % r.Size
					mustFail(rt, "another index", consent.VerifyInclusion(e.Leaf, other, r.Size, p.Hashes(), r.Root))
				}
			}
		}
		for i, a := range c.roots {
			for _, b := range c.roots[i:] {
				var p consent.ConsistencyProof
				c.query(rt, fmt.Sprintf("/audit/consistency/%d/%d", a.Size, b.Size), nil, &p)
				if err := consent.VerifyConsistency(a.Size, b.Size, a.Root, b.Root, p.Hashes()); err != nil {
					rt.Fatalf("heights %d to %d: %v", a.Height, b.Height, err)
				}
				mustFail(rt, "a changed old root", consent.VerifyConsistency(a.Size, b.Size, flip(a.Root, i), b.Root, p.Hashes()))
				if a.Size > 0 { // any log extends the empty one
					mustFail(rt, "a changed new root", consent.VerifyConsistency(a.Size, b.Size, a.Root, flip(b.Root, i), p.Hashes()))
				}
			}
		}
	})
}

// A node that rewrites a stored event serves a leaf whose proof does not verify
// against the committed root.
func TestAuditTamperedLeaf(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := drawChain(rt)
		head := c.roots[len(c.roots)-1]
		if head.Size == 0 {
			return
		}
		i := rapid.Uint64Range(0, head.Size-1).Draw(rt, "event")
		entry := c.entries(rt, head.Size)[i]
		e := entry.Event
		e.Purpose = "HRESCH"
		e.Reason = "tampered"
		leaf, err := e.Leaf()
		if err != nil {
			rt.Fatal(err)
		}
		if err := c.st.Set(fmt.Appendf(nil, "al/l/%016x", i), leaf); err != nil {
			rt.Fatal(err)
		}
		var served consent.LogEntry
		c.query(rt, fmt.Sprintf("/audit/event/%d", i), nil, &served)
		var p consent.InclusionProof
		c.query(rt, fmt.Sprintf("/audit/inclusion/%d", i), nil, &p)
		mustFail(rt, "a rewritten event", consent.VerifyInclusion(served.Leaf, i, head.Size, p.Hashes(), head.Root))
	})
}

func mustFail(t *rapid.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, consent.ErrAuditProof) {
		t.Fatalf("%s: got %v, want ErrAuditProof", what, err)
	}
}

// flip returns b with one bit changed.
func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i%len(out)] ^= 1 << (i % 8)
	return out
}

// Paging through /audit/events lists exactly the events a naive filter over the whole
// log finds, newest first.
func TestAuditEventsMatchNaiveFilter(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := drawChain(rt)
		head := c.roots[len(c.roots)-1]
		entries := c.entries(rt, head.Size)
		f := consent.AuditFilter{Limit: rapid.IntRange(0, 7).Draw(rt, "limit")}
		if rapid.Bool().Draw(rt, "by patient") {
			f.Patient = consenttest.NewKey(rapid.SampledFrom(consenttest.WorldPatients).Draw(rt, "patient")).Patient()
		}
		if rapid.Bool().Draw(rt, "by hospital") {
			f.Hospital = consent.HospitalID(rapid.SampledFrom(consenttest.WorldHospitals).Draw(rt, "hospital"))
		}
		if rapid.Bool().Draw(rt, "by kind") {
			f.Kind = rapid.SampledFrom(consent.AuditKinds()).Draw(rt, "kind")
		}
		if rapid.Bool().Draw(rt, "by time") && c.height > 0 {
			a := c.blockTime(consent.Height(rapid.Int64Range(1, int64(c.height)).Draw(rt, "from"))).Unix() + rapid.Int64Range(-3, 3).Draw(rt, "from jitter")
			b := c.blockTime(consent.Height(rapid.Int64Range(1, int64(c.height)).Draw(rt, "to"))).Unix() + rapid.Int64Range(-3, 3).Draw(rt, "to jitter")
			f.From, f.To = min(a, b), max(a, b)
		}
		var want []uint64
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i].Event
			if (f.Patient == "" || e.Patient == f.Patient) && (f.Kind == "" || e.Kind == f.Kind) &&
				(f.Hospital == "" || e.Hospital == f.Hospital || e.Recipient == f.Hospital || slices.Contains(e.Custodians, f.Hospital)) &&
				(f.From == 0 || e.Time >= f.From) && (f.To == 0 || e.Time <= f.To) {
				want = append(want, e.Index)
			}
		}
		var got []uint64
		for pages := 0; ; pages++ {
			if pages > len(entries)+1 {
				rt.Fatal("paging does not end")
			}
			data, _ := json.Marshal(f)
			var page consent.AuditPage
			c.query(rt, "/audit/events", data, &page)
			limit := f.Limit
			if limit == 0 {
				limit = consent.DefaultAuditLimit
			}
			if len(page.Events) > limit {
				rt.Fatalf("page of %d events, limit %d", len(page.Events), limit)
			}
			for _, e := range page.Events {
				if e.Index >= f.Before && f.Before != 0 {
					rt.Fatalf("event %d is not before %d", e.Index, f.Before)
				}
				got = append(got, e.Index)
			}
			if page.Next == 0 {
				break
			}
			f.Before = page.Next
		}
		if !slices.Equal(got, want) {
			rt.Fatalf("got %v, want %v", got, want)
		}
	})
}

// A query reads at most MaxAuditScan index entries: a sparse match deep in a long
// index comes on a later page, the cursor carrying the scan on.
func TestAuditEventsScanBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 10,000 events")
	}
	c := newAuditChain(t)
	alice := consenttest.NewKey("alice").Patient()
	b := consenttest.Builder{ChainID: "prop"}
	rec := consenttest.WorldRecords[0]
	c.block(t, [][]byte{b.Tx(consent.Body{Expiry: 5, Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: rec, CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm", Patient: alice,
		Classes: []consent.DataClass{"Observation"}, Custodians: []consent.HospitalID{"ada"}}}, consenttest.NewKey("ada"))})
	const requests = consent.MaxAuditScan + 50
	for n := 0; n < requests; {
		var txs [][]byte
		for ; len(txs) < 500 && n < requests; n++ {
			txs = append(txs, b.Tx(consent.Body{Expiry: c.height + 5, Kind: consent.KindRequest, Request: &consent.Request{
				Requester: "bayside", Record: rec, Purpose: "TREAT"}}, consenttest.NewKey("bayside")))
		}
		c.block(t, txs)
	}
	f := consent.AuditFilter{Patient: alice, Kind: consent.AuditRecordRegistered}
	data, _ := json.Marshal(f)
	var page consent.AuditPage
	c.query(t, "/audit/events", data, &page)
	if len(page.Events) != 0 || page.Next != requests+1-consent.MaxAuditScan {
		t.Fatalf("first page: %d events, next %d; want none, next %d", len(page.Events), page.Next, requests+1-consent.MaxAuditScan)
	}
	f.Before = page.Next
	data, _ = json.Marshal(f)
	page = consent.AuditPage{}
	c.query(t, "/audit/events", data, &page)
	if len(page.Events) != 1 || page.Events[0].Index != 0 || page.Next != 0 {
		t.Fatalf("second page: %+v, want the registration alone", page)
	}
}

func FuzzDecodeAuditEvent(f *testing.F) {
	leaf, _ := consent.AuditEvent{Index: 3, Height: 4, Time: 1767225640, Kind: consent.AuditAccessDenied,
		Patient: consenttest.NewKey("alice").Patient(), Record: consenttest.WorldRecords[0], Hospital: "ada",
		Custodians: []consent.HospitalID{"bayside"}, Purpose: "TREAT", Reason: "no-consent"}.Leaf()
	f.Add(leaf)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := consent.DecodeAuditEvent(data)
		if err != nil {
			return
		}
		// Canonical: an accepted leaf is exactly the encoding of what it decodes to.
		again, err := e.Leaf()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("leaf %x decodes to %+v, which encodes to %x", data, e, again)
		}
	})
}
