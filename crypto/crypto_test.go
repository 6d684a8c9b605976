package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustRecordID(t testing.TB) RecordID {
	t.Helper()
	id, err := NewRecordID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func seal(t testing.TB, d *DEK, b Binding, plain []byte) []byte {
	t.Helper()
	var ct bytes.Buffer
	w, err := d.Encrypt(&ct, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return ct.Bytes()
}

func open(d *DEK, b Binding, ct []byte) ([]byte, error) {
	r, err := d.Decrypt(bytes.NewReader(ct), b)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestRecordRoundTripAndTamper(t *testing.T) {
	dek, err := NewDEK()
	if err != nil {
		t.Fatal(err)
	}
	b := Binding{Chain: "medledger-test", Record: mustRecordID(t)}
	plain := make([]byte, 3<<20+17) // several 1 MiB segments and a partial one
	rand.NewChaCha8([32]byte{1}).Read(plain)
	ct := seal(t, dek, b, plain)
	if bytes.Contains(ct, plain[:64]) {
		t.Fatal("ciphertext contains plaintext")
	}
	got, err := open(dek, b, ct)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip: err=%v equal=%v", err, bytes.Equal(got, plain))
	}

	other, _ := NewDEK()
	flipped := bytes.Clone(ct)
	flipped[100] ^= 1 // inside the first segment: not one byte may come out
	cases := map[string]struct {
		dek *DEK
		b   Binding
		ct  []byte
	}{
		"flipped byte":    {dek, b, flipped},
		"truncated":       {dek, b, ct[:len(ct)-1<<20]},
		"other record ID": {dek, Binding{Chain: b.Chain, Record: mustRecordID(t)}, ct},
		"other chain":     {dek, Binding{Chain: "other-chain", Record: b.Record}, ct},
		"other key":       {other, b, ct},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := open(c.dek, c.b, c.ct)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("got err %v, want ErrDecrypt", err)
			}
			if len(got) > 0 && name != "truncated" {
				t.Fatalf("returned %d plaintext bytes along with the error", len(got))
			}
		})
	}
}

func TestWrapUnwrap(t *testing.T) {
	alice, err := NewWrapKey()
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := NewWrapKey()
	dek, _ := NewDEK()
	rec := mustRecordID(t)
	c := WrapContext{Chain: "medledger-test", Record: rec, Grant: "grant-1"}
	wrapped, err := Wrap(dek, alice.Public(), c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := alice.Unwrap(wrapped, c)
	if err != nil {
		t.Fatal(err)
	}
	// The unwrapped DEK opens what the original sealed.
	b := Binding{Chain: c.Chain, Record: rec}
	plain := []byte(`{"resourceType":"Bundle"}`)
	if out, err := open(got, b, seal(t, dek, b, plain)); err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("unwrapped DEK does not decrypt: %v", err)
	}

	flipped := bytes.Clone(wrapped)
	flipped[len(flipped)-1] ^= 1
	cases := map[string]struct {
		key     *WrapKey
		c       WrapContext
		wrapped []byte
	}{
		"wrong recipient": {bob, c, wrapped},
		"other grant":     {alice, WrapContext{c.Chain, c.Record, "grant-2"}, wrapped},
		"custody grant":   {alice, WrapContext{c.Chain, c.Record, ""}, wrapped},
		"other record":    {alice, WrapContext{c.Chain, mustRecordID(t), c.Grant}, wrapped},
		"other chain":     {alice, WrapContext{"other", c.Record, c.Grant}, wrapped},
		"flipped byte":    {alice, c, flipped},
		"empty":           {alice, c, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.key.Unwrap(tc.wrapped, tc.c); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("got err %v, want ErrUnwrap", err)
			}
		})
	}
	if _, err := Wrap(dek, WrapPublicKey{1, 2, 3}, c); err == nil {
		t.Fatal("wrap to a 3-byte key: no error")
	}
}

func TestSignaturesAreStandardEd25519(t *testing.T) {
	k, err := NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("exact body bytes")
	sig, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(ed25519.PublicKey(k.Public()), msg, sig) {
		t.Fatal("Tink signature is not a standard Ed25519 signature")
	}
	if err := Verify(k.Public(), msg, sig); err != nil {
		t.Fatal(err)
	}
	priv, err := k.Ed25519PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ed25519.Sign(priv, msg), sig) { // Ed25519 is deterministic
		t.Fatal("exported private key signs differently")
	}
	other, _ := NewSigningKey()
	for name, err := range map[string]error{
		"other message": Verify(k.Public(), []byte("exact body bytez"), sig),
		"other key":     Verify(other.Public(), msg, sig),
		"short key":     Verify(k.Public()[:31], msg, sig),
		"short sig":     Verify(k.Public(), msg, sig[:63]),
	} {
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: got %v, want ErrBadSignature", name, err)
		}
	}
}

func TestKeysAtRest(t *testing.T) {
	dir := t.TempDir()
	kek, err := CreateKEK(filepath.Join(dir, KEKFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateKEK(filepath.Join(dir, KEKFile)); err == nil {
		t.Fatal("CreateKEK overwrote an existing KEK")
	}
	h, err := GenerateHospital()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(dir, kek); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Fatalf("got %d key files, want 4", len(entries))
	}
	for _, e := range entries {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
		if e.Name() == KEKFile {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if !bytes.Contains(b, []byte("encryptedKeyset")) {
			t.Errorf("%s is not an encrypted keyset", e.Name())
		}
	}

	kek2, err := LoadKEK(filepath.Join(dir, KEKFile))
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadHospital(dir, kek2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.Operator.Public(), h.Operator.Public()) ||
		!bytes.Equal(loaded.Node.Public(), h.Node.Public()) ||
		!bytes.Equal(loaded.Wrap.Public(), h.Wrap.Public()) {
		t.Fatal("loaded keys differ from saved keys")
	}

	otherKEK, _ := NewKEK()
	if _, err := LoadHospital(dir, otherKEK); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("load under another KEK: got %v, want ErrKeyFile", err)
	}
	// A key file renamed into another role does not load (purpose is bound in).
	if _, err := LoadSigningKey(filepath.Join(dir, operatorFile), kek, "node"); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("operator key loaded as node key: got %v", err)
	}
	if _, err := LoadHospital(t.TempDir(), kek); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("empty dir: got %v, want ErrKeyFile", err)
	}
	if _, err := LoadKEK(filepath.Join(dir, operatorFile)); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("keyset loaded as KEK: got %v", err)
	}
}

func TestHospitalPublicFile(t *testing.T) {
	h, _ := GenerateHospital()
	pub := h.Public("St. Example")
	path := filepath.Join(t.TempDir(), "pub.json")
	b, _ := json.Marshal(pub)
	os.WriteFile(path, b, 0o644)
	got, err := ReadHospitalPublic(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Wrap, pub.Wrap) || got.Name != pub.Name {
		t.Fatalf("got %+v, want %+v", got, pub)
	}
	os.WriteFile(path, []byte(`{"name":"x","operator_key":"AAAA","node_key":"AAAA","wrap_key":"AAAA"}`), 0o644)
	if _, err := ReadHospitalPublic(path); err == nil {
		t.Fatal("short keys accepted")
	}
}

func TestRecordIDText(t *testing.T) {
	id := mustRecordID(t)
	got, err := ParseRecordID(id.String())
	if err != nil || got != id {
		t.Fatalf("parse(%s) = %v, %v", id, got, err)
	}
	for _, bad := range []string{"", "zz", id.String()[:30], id.String() + "00"} {
		if _, err := ParseRecordID(bad); err == nil {
			t.Errorf("ParseRecordID(%q): no error", bad)
		}
	}
}

// TestLargeRecordStreamsInFlatMemory seals and opens 256 MiB through a pipe and checks
// that the heap never grows anywhere near the payload size.
func TestLargeRecordStreamsInFlatMemory(t *testing.T) {
	const size = 256 << 20
	const limit = 100 << 20
	dek, _ := NewDEK()
	b := Binding{Chain: "medledger-test", Record: mustRecordID(t)}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()

	src := io.LimitReader(rand.NewChaCha8([32]byte{7}), size)
	want := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		w, err := dek.Encrypt(pw, b)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		if _, err := io.Copy(w, io.TeeReader(src, want)); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(w.Close())
	}()
	r, err := dek.Decrypt(pr, b)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, r)
	close(stop)
	wg.Wait()
	if err != nil || n != size {
		t.Fatalf("decrypted %d bytes, err %v; want %d", n, err, size)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("256 MiB round trip differs")
	}
	grown := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("peak heap growth while streaming 256 MiB: %.1f MiB", float64(grown)/(1<<20))
	if grown > limit {
		t.Fatalf("peak heap grew by %d MiB, want < %d MiB", grown>>20, limit>>20)
	}
}

func TestPatientKey(t *testing.T) {
	dir := t.TempDir()
	k, err := CreatePatientKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreatePatientKey(dir); err == nil {
		t.Fatal("CreatePatientKey overwrote a key")
	}
	got, err := LoadPatientKey(dir)
	if err != nil || !bytes.Equal(got.Public(), k.Public()) {
		t.Fatalf("load: %v", err)
	}
	if _, err := LoadPatientKey(t.TempDir()); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("missing key: got %v, want ErrKeyFile", err)
	}
}
