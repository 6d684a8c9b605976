package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/storage"
)

func memStore(t *testing.T) *leveldb.DB {
	t.Helper()
	db, err := leveldb.Open(storage.NewMemStorage(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// model is the naive implementation the layered overlays must agree with.
type model map[string]string

func (m model) clone() model {
	c := model{}
	for k, v := range m {
		c[k] = v
	}
	return c
}

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

func randKey(r *rand.Rand) []byte {
	const alphabet = "ab\x00\xff"
	k := make([]byte, 1+r.IntN(3))
	for i := range k {
		k[i] = alphabet[r.IntN(len(alphabet))]
	}
	return k
}

func randOps(t *testing.T, r *rand.Rand, w KVWriter, m model, n int) {
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

func collect(t *testing.T, r KVReader, start, end []byte) []string {
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

func (m model) pairs(start, end []byte) []string {
	var out []string
	for _, k := range m.rangeKeys(start, end) {
		out = append(out, k+"="+m[k])
	}
	return out
}

func checkAgainst(t *testing.T, r *rand.Rand, got KVReader, want model) {
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

// TestOverlayAgainstModel stacks committed store ← block overlay ← tx overlay, writes at
// random into each, and compares Get and Iterate with a plain map.
func TestOverlayAgainstModel(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		db := memStore(t)
		committed := model{}
		batch := new(leveldb.Batch)
		for range 10 {
			k, v := randKey(r), fmt.Sprint(r.IntN(100))
			batch.Put(stateKey(k), []byte(v))
			committed[string(k)] = v
		}
		if err := db.Write(batch, nil); err != nil {
			t.Fatal(err)
		}
		base := &dbView{db: db}
		checkAgainst(t, r, base, committed)

		blk := newOverlay(base)
		inBlock := committed.clone()
		randOps(t, r, blk, inBlock, 10)
		checkAgainst(t, r, blk, inBlock)

		// Several txs, each scanned and absorbed in turn (the block overlay merges
		// each tx's new keys into its sorted ones).
		for range 3 {
			tx := newOverlay(blk)
			inTx := inBlock.clone()
			randOps(t, r, tx, inTx, 10)
			checkAgainst(t, r, tx, inTx)
			checkAgainst(t, r, blk, inBlock) // the tx's writes stay in the tx until absorbed

			blk.absorb(tx)
			inBlock = inTx
			checkAgainst(t, r, blk, inBlock)
		}
	}
}

// TestOverlayManyKeys grows a block overlay by a few hundred keys, tx by tx, scanning
// ranges between txs, so that its keys are merged in batches (see rangeWrites).
func TestOverlayManyKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	key := func() []byte { return fmt.Appendf(nil, "k%03d", r.IntN(600)) }
	blk := newOverlay(&dbView{db: memStore(t)})
	want := model{}
	for tx := range 200 {
		txw := newOverlay(blk)
		for range 1 + r.IntN(4) {
			k, v := key(), fmt.Sprint(tx)
			if err := txw.Set(k, []byte(v)); err != nil {
				t.Fatal(err)
			}
			want[string(k)] = v
		}
		blk.absorb(txw)
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
	o := newOverlay(&dbView{db: memStore(t)})
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := o.Set([]byte(k), []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	err := o.Iterate(nil, nil, func(k, _ []byte) error {
		seen = append(seen, string(k))
		if string(k) == "b" {
			return ErrStop
		}
		return nil
	})
	if err != nil || !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("stop at b: saw %q, err %v", seen, err)
	}

	boom := errors.New("boom")
	if err := o.Iterate(nil, nil, func(k, _ []byte) error { return boom }); err != boom {
		t.Fatalf("fn error: got %v, want %v", err, boom)
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

func TestEmptyKeyHalts(t *testing.T) {
	o := newOverlay(&dbView{db: memStore(t)})
	if err := o.Set(nil, []byte("v")); err == nil || o.err == nil {
		t.Fatalf("Set(nil): err %v, sticky %v; want both", err, o.err)
	}
}

// TestAppHashEncoding recomputes the app hash from its documented definition.
func TestAppHashEncoding(t *testing.T) {
	prev, _ := hex.DecodeString("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	writes := []write{
		{key: "a", entry: entry{value: []byte("1")}},
		{key: "b", entry: entry{deleted: true}},
		{key: "c", entry: entry{value: []byte{}}},
	}
	var enc []byte
	enc = append(enc, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 1, '1')
	enc = append(enc, 0, 0, 0, 1, 'b', 1, 0, 0, 0, 0)
	enc = append(enc, 0, 0, 0, 1, 'c', 0, 0, 0, 0, 0)
	digest := sha256.Sum256(enc)
	outer := append(slices.Clone(prev), digest[:]...)
	outer = binary.BigEndian.AppendUint64(outer, 7)
	outer = append(outer, 0, 0, 0, 3, 'r', 'o', 't')
	want := sha256.Sum256(outer)
	if got := appHash(prev, writes, 7, []byte("rot")); !bytes.Equal(got, want[:]) {
		t.Fatalf("appHash = %x, want %x", got, want)
	}
	// A set of an empty value and a delete differ; so do two commitments.
	asDelete := slices.Clone(writes)
	asDelete[2] = write{key: "c", entry: entry{deleted: true}}
	if bytes.Equal(appHash(prev, writes, 7, nil), appHash(prev, asDelete, 7, nil)) {
		t.Fatal("an empty value and a tombstone hash the same")
	}
	if bytes.Equal(appHash(prev, writes, 7, []byte("a")), appHash(prev, writes, 7, []byte("b"))) {
		t.Fatal("two commitments hash the same")
	}
}
