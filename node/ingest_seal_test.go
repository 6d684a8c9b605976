package node

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/storage"
)

func TestSealOpen(t *testing.T) {
	s := openTestStore(t)
	plain := benchPayload(3*storage.ChunkSize + 123)
	sealed, dek, err := seal(t.Context(), s, "chain-a", bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	if sealed.ID.IsZero() || !sealed.CID.Defined() || sealed.Size <= int64(len(plain)) {
		t.Fatalf("sealed = %+v", sealed)
	}
	if pinned, _ := s.IsPinned(t.Context(), sealed.CID); !pinned {
		t.Fatal("sealed record is not pinned")
	}
	got, err := readRecord(t, s, sealed, dek, "chain-a", sealed.ID)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip: %d bytes, err %v", len(got), err)
	}
	// The ciphertext is bound to its chain and record ID.
	if _, err := readRecord(t, s, sealed, dek, "chain-b", sealed.ID); !errors.Is(err, crypto.ErrDecrypt) {
		t.Fatalf("other chain: got %v, want ErrDecrypt", err)
	}
	other, _ := crypto.NewRecordID()
	if _, err := readRecord(t, s, sealed, dek, "chain-a", other); !errors.Is(err, crypto.ErrDecrypt) {
		t.Fatalf("other record ID: got %v, want ErrDecrypt", err)
	}
	// Two seals of the same bytes share nothing: fresh key, fresh record ID, new CID.
	again, _, err := seal(t.Context(), s, "chain-a", bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	if again.CID.Equals(sealed.CID) || again.ID == sealed.ID {
		t.Fatal("sealing the same plaintext twice gave the same CID or record ID")
	}
}

func readRecord(t *testing.T, s *storage.Store, sealed Sealed, dek *crypto.DEK, chain crypto.ChainID, id crypto.RecordID) ([]byte, error) {
	t.Helper()
	r, err := s.Open(t.Context(), sealed.CID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := decrypt(r, dek, chain, id)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(p)
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

// A plaintext that fails mid-stream leaves nothing pinned: GC returns the store to
// where it was.
func TestSealFailureLeavesNothingPinned(t *testing.T) {
	s := openTestStore(t)
	if _, _, err := seal(t.Context(), s, "c", &failingReader{n: 2*storage.ChunkSize + 5}); err == nil {
		t.Fatal("Seal of a failing reader: no error")
	}
	if _, err := s.GC(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys, _ := s.Blockstore().AllKeysChan(t.Context())
	for k := range keys {
		t.Fatalf("block %s survived GC after a failed seal", k)
	}
}

func TestKeyFile(t *testing.T) {
	s := openTestStore(t)
	sealed, dek, err := seal(t.Context(), s, "chain-a", bytes.NewReader([]byte(`{"resourceType":"Bundle"}`)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := crypto.NewWrapKey()
	kf, err := NewKeyFile(sealed, dek, "chain-a", "grant-7", b.Public())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k.json")
	if err := kf.Write(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if err := kf.Write(path); err == nil {
		t.Fatal("Write overwrote an existing key file")
	}
	read, err := ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, id, err := read.Unwrap(b)
	if err != nil || id != sealed.ID {
		t.Fatalf("unwrap: id %s err %v", id, err)
	}
	if p, err := readRecord(t, s, sealed, got, "chain-a", id); err != nil || string(p) != `{"resourceType":"Bundle"}` {
		t.Fatalf("record through key file: %q, %v", p, err)
	}

	for name, mutate := range map[string]func(*KeyFile){
		"grant changed":  func(k *KeyFile) { k.Grant = "grant-8" },
		"chain changed":  func(k *KeyFile) { k.Chain = "chain-b" },
		"record changed": func(k *KeyFile) { other, _ := crypto.NewRecordID(); k.Record = other.String() },
		"bytes flipped":  func(k *KeyFile) { k.Wrapped = bytes.Clone(k.Wrapped); k.Wrapped[5] ^= 1 },
	} {
		k := *read
		mutate(&k)
		if _, _, err := k.Unwrap(b); !errors.Is(err, crypto.ErrUnwrap) {
			t.Errorf("%s: got %v, want ErrUnwrap", name, err)
		}
	}
	for name, content := range map[string]string{
		"not JSON":  "hello",
		"empty":     "{}",
		"no record": `{"cid":"bafy","wrapped_dek":"AAAA"}`,
	} {
		p := filepath.Join(t.TempDir(), "bad.json")
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := ReadKeyFile(p); err == nil {
			t.Errorf("%s: ReadKeyFile accepted it", name)
		}
	}
}

func openTestStore(t testing.TB) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), filepath.Join(t.TempDir(), "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
