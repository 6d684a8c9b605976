package abci

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/storage"

	"github.com/medledger/medledger/consent"
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

// TestStoreView reads the committed store as a consent.View, alone and under an
// overlay: only the state's keys (never the adapter's meta keys), in byte order, within
// the range asked. (consent's overlay tests compare overlays with a model.)
func TestStoreView(t *testing.T) {
	db := memStore(t)
	batch := new(leveldb.Batch)
	for _, k := range []string{"a", "b\x00", "b\xff", "c"} {
		batch.Put(stateKey([]byte(k)), []byte("v"+k))
	}
	batch.Put([]byte(metaLast), []byte("not state"))
	if err := db.Write(batch, nil); err != nil {
		t.Fatal(err)
	}
	v := &dbView{db: db}
	if got := scanned(t, v, nil, nil); !slices.Equal(got, []string{"a", "b\x00", "b\xff", "c"}) {
		t.Fatalf("Iterate(all) = %q", got)
	}
	if got := scanned(t, v, []byte("b"), []byte("c")); !slices.Equal(got, []string{"b\x00", "b\xff"}) {
		t.Fatalf("Iterate(b, c) = %q", got)
	}
	if val, found, err := v.Lookup([]byte("c")); err != nil || !found || string(val) != "vc" {
		t.Fatalf("Lookup(c) = %q, %v, %v", val, found, err)
	}
	if val, found, err := v.Lookup([]byte("mlast")); err != nil || found || val != nil {
		t.Fatalf("Lookup(mlast) = %q, %v, %v; want absent", val, found, err)
	}
	o := consent.NewOverlay(v)
	if err := firstErr(o.Delete([]byte("b\x00")), o.Set([]byte("bb"), []byte("new"))); err != nil {
		t.Fatal(err)
	}
	if got := scanned(t, o, []byte("b"), nil); !slices.Equal(got, []string{"bb", "b\xff", "c"}) {
		t.Fatalf("overlay Iterate(b, nil) = %q", got)
	}
	if got, err := o.Get([]byte("b\x00")); err != nil || got != nil {
		t.Fatalf("overlay Get(deleted) = %q, %v", got, err)
	}
}

func scanned(t *testing.T, r consent.Reader, start, end []byte) []string {
	t.Helper()
	var keys []string
	if err := r.Iterate(start, end, func(k, _ []byte) error {
		keys = append(keys, string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestAppHashEncoding recomputes the app hash from its documented definition.
func TestAppHashEncoding(t *testing.T) {
	prev, _ := hex.DecodeString("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	writes := []consent.Write{
		{Key: "a", Value: []byte("1")},
		{Key: "b", Deleted: true},
		{Key: "c", Value: []byte{}},
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
	asDelete[2] = consent.Write{Key: "c", Deleted: true}
	if bytes.Equal(appHash(prev, writes, 7, nil), appHash(prev, asDelete, 7, nil)) {
		t.Fatal("an empty value and a tombstone hash the same")
	}
	if bytes.Equal(appHash(prev, writes, 7, []byte("a")), appHash(prev, writes, 7, []byte("b"))) {
		t.Fatal("two commitments hash the same")
	}
}
