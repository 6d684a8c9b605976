package consent_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

// model is the naive implementation the layered overlays must agree with.
type model map[string]string

func (m model) rangeKeys(start, end []byte) []string {
	var ks []string
	for k := range m {
		if k >= string(start) && (end == nil || k < string(end)) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

func (m model) pairs(start, end []byte) []string {
	var out []string
	for _, k := range m.rangeKeys(start, end) {
		out = append(out, k+"="+m[k])
	}
	return out
}

func randKey(r *rand.Rand) []byte {
	const alphabet = "ab\x00\xff"
	k := make([]byte, 1+r.IntN(3))
	for i := range k {
		k[i] = alphabet[r.IntN(len(alphabet))]
	}
	return k
}

func randOps(t *testing.T, r *rand.Rand, w consent.Store, m model, n int) {
	t.Helper()
	for range n {
		k := randKey(r)
		if r.IntN(3) == 0 {
			if err := w.Delete(k); err != nil {
				t.Fatal(err)
			}
			delete(m, string(k))
			continue
		}
		v := fmt.Sprint(r.IntN(100))
		if err := w.Set(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
		m[string(k)] = v
	}
}

func collect(t *testing.T, r consent.Reader, start, end []byte) []string {
	t.Helper()
	var out []string
	err := r.Iterate(start, end, func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkAgainst(t *testing.T, r *rand.Rand, got consent.Reader, want model) {
	t.Helper()
	for range 20 {
		k := randKey(r)
		v, err := got.Get(k)
		wv, ok := want[string(k)]
		if err != nil || (v != nil) != ok || string(v) != wv {
			t.Fatalf("Get(%q) = %q, %v; want %q (present %v)", k, v, err, wv, ok)
		}
	}
	for range 20 {
		start, end := randKey(r), randKey(r)
		switch r.IntN(4) {
		case 0:
			start = nil
		case 1:
			end = nil
		}
		if g, w := collect(t, got, start, end), want.pairs(start, end); !slices.Equal(g, w) {
			t.Fatalf("Iterate(%q, %q) = %q, want %q", start, end, g, w)
		}
	}
}

// TestOverlayAgainstModel stacks a store ← block overlay ← tx overlay, writes at random
// into each, and compares Get and Iterate with a plain map.
func TestOverlayAgainstModel(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		base := consenttest.NewMemStore()
		committed := model{}
		randOps(t, r, base, committed, 10)
		checkAgainst(t, r, base, committed)

		blk := consent.NewOverlay(base)
		inBlock := maps.Clone(committed)
		randOps(t, r, blk, inBlock, 10)
		checkAgainst(t, r, blk, inBlock)

		// Several txs, each scanned and flushed in turn (the block overlay merges
		// each tx's new keys into its sorted ones).
		for range 3 {
			tx := consent.NewOverlay(blk)
			inTx := maps.Clone(inBlock)
			randOps(t, r, tx, inTx, 10)
			checkAgainst(t, r, tx, inTx)
			checkAgainst(t, r, blk, inBlock) // the tx's writes stay in the tx until flushed

			if err := tx.Flush(blk); err != nil {
				t.Fatal(err)
			}
			inBlock = inTx
			checkAgainst(t, r, blk, inBlock)
		}
		// Flushed to a store that is not an overlay, the block's writes make the same
		// state.
		if err := blk.Flush(base); err != nil {
			t.Fatal(err)
		}
		checkAgainst(t, r, base, inBlock)
	}
}

// TestOverlayManyKeys grows a block overlay by a few hundred keys, tx by tx, scanning
// ranges between txs, so that its keys are merged in batches (see rangeWrites).
func TestOverlayManyKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	key := func() []byte { return fmt.Appendf(nil, "k%03d", r.IntN(600)) }
	blk := consent.NewOverlay(consenttest.NewMemStore())
	want := model{}
	for tx := range 200 {
		txw := consent.NewOverlay(blk)
		for range 1 + r.IntN(4) {
			k, v := key(), fmt.Sprint(tx)
			if err := txw.Set(k, []byte(v)); err != nil {
				t.Fatal(err)
			}
			want[string(k)] = v
		}
		if err := txw.Flush(blk); err != nil {
			t.Fatal(err)
		}
		start, end := key(), key()
		if bytes.Compare(start, end) > 0 {
			start, end = end, start
		}
		if g, w := collect(t, blk, start, end), want.pairs(start, end); !slices.Equal(g, w) {
			t.Fatalf("tx %d: Iterate(%s, %s) = %q, want %q", tx, start, end, g, w)
		}
	}
	if g, w := collect(t, blk, nil, nil), want.pairs(nil, nil); !slices.Equal(g, w) {
		t.Fatalf("Iterate(all) = %q, want %q", g, w)
	}
}

func TestIterateStopsAndAllowsWrites(t *testing.T) {
	o := consent.NewOverlay(consenttest.NewMemStore())
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := o.Set([]byte(k), []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	var seen []string
	err := o.Iterate(nil, nil, func(k, _ []byte) error {
		seen = append(seen, string(k))
		if string(k) == "b" {
			return stop
		}
		return nil
	})
	if err != stop || !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("stop at b: saw %q, err %v; want a, b and %v", seen, err, stop)
	}

	// An expiry sweep: delete each key while iterating, add one after the end.
	seen = nil
	err = o.Iterate([]byte("b"), nil, func(k, _ []byte) error {
		seen = append(seen, string(k))
		if err := o.Set([]byte("z"), nil); err != nil {
			return err
		}
		return o.Delete(k)
	})
	if err != nil || !slices.Equal(seen, []string{"b", "c", "d"}) {
		t.Fatalf("sweep: saw %q, err %v", seen, err)
	}
	if got := collect(t, o, nil, nil); !slices.Equal(got, []string{"a=a", "z="}) {
		t.Fatalf("after sweep: %q", got)
	}
}

// TestEmptyKeyIsRefused: a write of an empty key fails, and the overlay remembers it
// (a chain halts on it even if the state machine swallowed the error).
func TestEmptyKeyIsRefused(t *testing.T) {
	o := consent.NewOverlay(consenttest.NewMemStore())
	if err := o.Set(nil, []byte("v")); !errors.Is(err, consent.ErrEmptyKey) || o.Err() == nil {
		t.Fatalf("Set(nil): err %v, sticky %v; want both", err, o.Err())
	}
	o = consent.NewOverlay(consenttest.NewMemStore())
	if err := o.Delete(nil); !errors.Is(err, consent.ErrEmptyKey) || o.Err() == nil {
		t.Fatalf("Delete(nil): err %v, sticky %v; want both", err, o.Err())
	}
}
