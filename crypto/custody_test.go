package crypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
	"pgregory.net/rapid"
)

// templateDEK is a DEK as NewDEK made them before threshold custody: a keyset from
// Tink's template, with no secret to share (what Unwrap of an old key file gives).
func templateDEK(t testing.TB) *DEK {
	t.Helper()
	h, err := keyset.NewHandle(streamingaead.AES256GCMHKDF1MBKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	d, err := dekFromHandle(h)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sealed is a record sealed under a fresh DEK, with its k-of-n sharing.
type sealed struct {
	b      Binding
	plain  []byte
	ct     []byte
	shares []Share
	comm   Commitments
}

func sealShared(t testing.TB, k, n int) sealed {
	t.Helper()
	dek, err := NewDEK()
	if err != nil {
		t.Fatal(err)
	}
	s := sealed{b: Binding{Chain: "custody-test", Record: mustRecordID(t)}, plain: []byte("a FHIR bundle, sealed")}
	s.ct = seal(t, dek, s.b, s.plain)
	if s.shares, s.comm, err = dek.Split(k, n); err != nil {
		t.Fatal(err)
	}
	return s
}

// opens reports whether d opens the sealed record (and to its plaintext).
func (s sealed) opens(d *DEK) bool {
	got, err := open(d, s.b, s.ct)
	return err == nil && bytes.Equal(got, s.plain)
}

func pick(shares []Share, idx ...int) []Share {
	out := make([]Share, len(idx))
	for i, j := range idx {
		out[i] = shares[j]
	}
	return out
}

func corrupt(s Share) Share {
	one := custodyGroup.NewScalar().SetUint64(1)
	return Share{Index: s.Index, value: custodyGroup.NewScalar().Add(s.value, one)}
}

// Any k of the n shares rebuild a key that opens the record; the shares and the
// commitments have the sizes the doc promises.
func TestAnyKOfNCombine(t *testing.T) {
	s := sealShared(t, 2, 3)
	if s.comm.Threshold() != 2 || len(s.shares) != 3 {
		t.Fatalf("threshold %d, %d shares; want 2 and 3", s.comm.Threshold(), len(s.shares))
	}
	for _, idx := range [][]int{{0, 1}, {0, 2}, {1, 2}, {2, 0}, {0, 1, 2}} {
		dek, bad, err := Combine(s.comm, pick(s.shares, idx...))
		if err != nil || len(bad) != 0 || !s.opens(dek) {
			t.Errorf("shares %v: err=%v bad=%v, want a key that opens the record", idx, err, bad)
		}
	}
	if got := len(s.shares[0].Bytes()); got != 34 {
		t.Errorf("a share is %d bytes, want 34", got)
	}
	if got := len(s.comm.Bytes()); got != 2+2*32 {
		t.Errorf("2 commitments are %d bytes, want 66", got)
	}
}

// k−1 shares give nothing usable: Combine refuses them, and interpolating them as if
// the threshold were k−1 gives a key that does not open the record.
func TestFewerThanKSharesGiveNothingUsable(t *testing.T) {
	for _, kn := range [][2]int{{2, 3}, {3, 5}, {4, 4}} {
		k, n := kn[0], kn[1]
		s := sealShared(t, k, n)
		few := s.shares[:k-1]
		if _, _, err := Combine(s.comm, few); !errors.Is(err, ErrTooFewShares) {
			t.Errorf("%d of %d: Combine of %d shares: %v, want ErrTooFewShares", k, n, k-1, err)
		}
		raw := make([]secretsharing.Share, len(few))
		for i, sh := range few {
			raw[i] = sh.circl()
		}
		guess, err := secretsharing.Recover(uint(k-2), raw)
		if err != nil {
			t.Fatal(err)
		}
		wrong, err := dekFromSecret(guess)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := open(wrong, s.b, s.ct); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%d of %d: a key from %d shares: %v, want ErrDecrypt", k, n, k-1, err)
		}
	}
}

// A corrupted share is detected and named; the key is still rebuilt from the others
// while k valid shares remain, and refused (naming the liar) when they do not.
func TestCorruptedShareIsNamed(t *testing.T) {
	s := sealShared(t, 2, 3)
	liar := corrupt(s.shares[1])
	if err := VerifyShare(s.comm, liar); !errors.Is(err, ErrBadShare) || !strings.Contains(err.Error(), "share 2") {
		t.Errorf("VerifyShare of a corrupted share 2: %v, want ErrBadShare naming share 2", err)
	}
	for _, sh := range s.shares {
		if err := VerifyShare(s.comm, sh); err != nil {
			t.Errorf("VerifyShare(%v): %v", sh, err)
		}
	}
	dek, bad, err := Combine(s.comm, []Share{s.shares[0], liar, s.shares[2]})
	if err != nil || !slices.Equal(bad, []ShareIndex{2}) || !s.opens(dek) {
		t.Errorf("with one liar of three: err=%v bad=%v, want the key and bad=[2]", err, bad)
	}
	_, bad, err = Combine(s.comm, []Share{liar, s.shares[2], liar})
	if !errors.Is(err, ErrTooFewShares) || !slices.Equal(bad, []ShareIndex{2}) || !strings.Contains(err.Error(), "invalid shares: 2") {
		t.Errorf("one valid share and a liar: err=%v bad=%v, want ErrTooFewShares naming share 2", err, bad)
	}
	// A share of another record, and a share moved to another index, do not verify.
	other := sealShared(t, 2, 3)
	moved := Share{Index: 3, value: s.shares[0].value}
	_, bad, err = Combine(s.comm, []Share{other.shares[0], moved, s.shares[1]})
	if !errors.Is(err, ErrTooFewShares) || !slices.Equal(bad, []ShareIndex{1, 3}) {
		t.Errorf("foreign and moved shares: err=%v bad=%v, want ErrTooFewShares and bad=[1 3]", err, bad)
	}
	// The same valid share twice counts once.
	if _, _, err := Combine(s.comm, []Share{s.shares[0], s.shares[0]}); !errors.Is(err, ErrTooFewShares) {
		t.Errorf("one share twice: %v, want ErrTooFewShares", err)
	}
	// The zero Share is not a share.
	if _, bad, err := Combine(s.comm, []Share{{}, s.shares[0], s.shares[1]}); err != nil || !slices.Equal(bad, []ShareIndex{0}) {
		t.Errorf("with a zero Share: err=%v bad=%v, want the key and bad=[0]", err, bad)
	}
}

func TestSplitRefuses(t *testing.T) {
	if _, _, err := templateDEK(t).Split(2, 3); !errors.Is(err, ErrNotShareable) {
		t.Errorf("split of a template DEK: %v, want ErrNotShareable", err)
	}
	dek, err := NewDEK()
	if err != nil {
		t.Fatal(err)
	}
	for _, kn := range [][2]int{{0, 3}, {4, 3}, {2, 17}, {-1, 2}} {
		if _, _, err := dek.Split(kn[0], kn[1]); err == nil {
			t.Errorf("split %d of %d: no error", kn[0], kn[1])
		}
	}
	// A DEK that went through Wrap and Unwrap keeps its key but not its secret.
	w, _ := NewWrapKey()
	c := WrapContext{Chain: "custody-test", Record: mustRecordID(t)}
	wrapped, err := Wrap(dek, w.Public(), c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := w.Unwrap(wrapped, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := back.Split(2, 3); !errors.Is(err, ErrNotShareable) {
		t.Errorf("split of an unwrapped DEK: %v, want ErrNotShareable", err)
	}
}

// A combined key serialises like any DEK: it wraps, unwraps and still opens the record.
func TestCombinedKeyWrapsLikeAnyDEK(t *testing.T) {
	s := sealShared(t, 1, 2)
	dek, _, err := Combine(s.comm, s.shares[1:])
	if err != nil {
		t.Fatal(err)
	}
	w, _ := NewWrapKey()
	c := WrapContext{Chain: s.b.Chain, Record: s.b.Record, Grant: "g"}
	wrapped, err := Wrap(dek, w.Public(), c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := w.Unwrap(wrapped, c)
	if err != nil || !s.opens(back) {
		t.Errorf("unwrapped combined key: err=%v, want one that opens the record", err)
	}
}

func TestWrapShareBindsContext(t *testing.T) {
	s := sealShared(t, 2, 3)
	ada, _ := NewWrapKey()
	bay, _ := NewWrapKey()
	c := WrapContext{Chain: s.b.Chain, Record: s.b.Record, Grant: "grant-1"}
	wrapped, err := WrapShare(s.shares[1], ada.Public(), c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ada.UnwrapShare(wrapped, c, 2)
	if err != nil || got.Index != 2 || VerifyShare(s.comm, got) != nil {
		t.Fatalf("unwrap: %v, %v; want share 2, verified", got, err)
	}
	cases := map[string]struct {
		key *WrapKey
		c   WrapContext
		i   ShareIndex
	}{
		"other recipient": {bay, c, 2},
		"other chain":     {ada, WrapContext{Chain: "other", Record: c.Record, Grant: c.Grant}, 2},
		"other record":    {ada, WrapContext{Chain: c.Chain, Record: mustRecordID(t), Grant: c.Grant}, 2},
		"other grant":     {ada, WrapContext{Chain: c.Chain, Record: c.Record, Grant: "grant-2"}, 2},
		"custody copy":    {ada, WrapContext{Chain: c.Chain, Record: c.Record}, 2},
		"other index":     {ada, c, 3},
	}
	for name, tc := range cases {
		if _, err := tc.key.UnwrapShare(wrapped, tc.c, tc.i); !errors.Is(err, ErrUnwrap) {
			t.Errorf("%s: %v, want ErrUnwrap", name, err)
		}
	}
	flipped := bytes.Clone(wrapped)
	flipped[len(flipped)-1] ^= 1
	if _, err := ada.UnwrapShare(flipped, c, 2); !errors.Is(err, ErrUnwrap) {
		t.Errorf("altered: %v, want ErrUnwrap", err)
	}
	// A wrapped share never opens as a wrapped DEK, nor a wrapped DEK as a share.
	if _, err := ada.Unwrap(wrapped, c); !errors.Is(err, ErrUnwrap) {
		t.Errorf("share unwrapped as a DEK: %v, want ErrUnwrap", err)
	}
	dek, _ := NewDEK()
	wd, _ := Wrap(dek, ada.Public(), c)
	if _, err := ada.UnwrapShare(wd, c, 2); !errors.Is(err, ErrUnwrap) {
		t.Errorf("DEK unwrapped as a share: %v, want ErrUnwrap", err)
	}
	if _, err := WrapShare(Share{}, ada.Public(), c); err == nil {
		t.Error("wrapping the zero Share: no error")
	}
}

// A share never prints its value, whatever the verb.
func TestShareDoesNotPrintItsValue(t *testing.T) {
	s := sealShared(t, 2, 2).shares[0]
	v, _ := s.value.MarshalBinary()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, s); strings.Contains(out, hex.EncodeToString(v)) || strings.Contains(out, hex.EncodeToString(v[:8])) {
			t.Errorf("%s prints the share's value: %s", verb, out)
		}
	}
}

func TestShareEncoding(t *testing.T) {
	s := sealShared(t, 3, 4)
	for _, sh := range s.shares {
		b := sh.Bytes()
		back, err := ParseShare(b)
		if err != nil || back.Index != sh.Index || !back.value.IsEqual(sh.value) {
			t.Errorf("share %d round trip: %v", sh.Index, err)
		}
	}
	c, err := ParseCommitments(s.comm.Bytes())
	if err != nil || !bytes.Equal(c.Bytes(), s.comm.Bytes()) || VerifyShare(c, s.shares[3]) != nil {
		t.Errorf("commitments round trip: %v", err)
	}
	good := s.shares[0].Bytes()
	badShares := map[string][]byte{
		"empty":          nil,
		"short":          good[:33],
		"long":           append(bytes.Clone(good), 0),
		"commitment tag": append([]byte{2}, good[1:]...),
		"tag 3":          append([]byte{3}, good[1:]...),
		"index 0":        append([]byte{1, 0}, good[2:]...),
		"index 17":       append([]byte{1, 17}, good[2:]...),
		"unreduced":      append([]byte{1, 1}, bytes.Repeat([]byte{0xff}, 32)...),
		"commitments in": s.comm.Bytes()[:34],
		// a commitments prefix whose element happens to be a reduced scalar (about 1 in
		// 16 random ones): it must still not parse as a share
		"commitments tag, reduced": append([]byte{2, 1}, make([]byte, 32)...),
	}
	for name, b := range badShares {
		if _, err := ParseShare(b); !errors.Is(err, ErrShareEncoding) {
			t.Errorf("share %s: %v, want ErrShareEncoding", name, err)
		}
	}
	gc := s.comm.Bytes()
	identity := make([]byte, 32) // Ristretto255's identity encodes as zeros
	badComms := map[string][]byte{
		"empty":     nil,
		"k 0":       {2, 0},
		"k 17":      append([]byte{2, 17}, bytes.Repeat(gc[2:34], 17)...),
		"short":     gc[:len(gc)-1],
		"k too big": append([]byte{2, 4}, gc[2:]...),
		"share tag": append([]byte{1}, gc[1:]...),
		"tag 3":     append([]byte{3}, gc[1:]...),
		"identity":  append(append([]byte{2, 3}, identity...), gc[34:]...),
		"not point": append(append([]byte{2, 3}, bytes.Repeat([]byte{0xff}, 32)...), gc[34:]...),
	}
	for name, b := range badComms {
		if _, err := ParseCommitments(b); !errors.Is(err, ErrShareEncoding) {
			t.Errorf("commitments %s: %v, want ErrShareEncoding", name, err)
		}
	}
}

// For small k and n: any k or more of the shares, some of them corrupted, rebuild the
// key exactly when k valid ones remain, and the corrupted ones are named.
func TestCustodyProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 7).Draw(rt, "n")
		k := rapid.IntRange(1, n).Draw(rt, "k")
		s := sealShared(t, k, n)
		order := rapid.Permutation(s.shares).Draw(rt, "order")
		given := order[:rapid.IntRange(0, n).Draw(rt, "given")]
		liars := rapid.IntRange(0, len(given)).Draw(rt, "liars")
		var wantBad []ShareIndex
		for i := range given[:liars] {
			given[i] = corrupt(given[i])
			wantBad = append(wantBad, given[i].Index)
		}
		slices.Sort(wantBad)
		dek, bad, err := Combine(s.comm, given)
		if !slices.Equal(bad, wantBad) {
			rt.Fatalf("bad = %v, want %v", bad, wantBad)
		}
		if len(given)-liars >= k {
			if err != nil || !dek.secret.IsEqual(sharedSecret(rt, s, k)) || !s.opens(dek) {
				rt.Fatalf("%d valid of %d needed: err=%v, want the key", len(given)-liars, k, err)
			}
		} else if !errors.Is(err, ErrTooFewShares) || dek != nil {
			rt.Fatalf("%d valid of %d needed: err=%v, want ErrTooFewShares", len(given)-liars, k, err)
		}
	})
}

// sharedSecret rebuilds the secret from the first k (untouched) shares, naively.
func sharedSecret(t *rapid.T, s sealed, k int) group.Scalar {
	raw := make([]secretsharing.Share, k)
	for i := range raw {
		raw[i] = s.shares[i].circl()
	}
	secret, err := secretsharing.Recover(uint(k-1), raw)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func FuzzParseShare(f *testing.F) {
	s := sealShared(f, 2, 3)
	f.Add(s.shares[0].Bytes())
	f.Add(s.comm.Bytes())
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		sh, err := ParseShare(b)
		if err != nil {
			if !errors.Is(err, ErrShareEncoding) {
				t.Fatalf("error %v is not ErrShareEncoding", err)
			}
			return
		}
		if !bytes.Equal(sh.Bytes(), b) {
			t.Fatalf("accepted %x, which encodes back as %x", b, sh.Bytes())
		}
		_ = VerifyShare(s.comm, sh) // must not panic
	})
}

func FuzzParseCommitments(f *testing.F) {
	s := sealShared(f, 2, 3)
	f.Add(s.comm.Bytes())
	f.Add(s.shares[0].Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommitments(b)
		if err != nil {
			if !errors.Is(err, ErrShareEncoding) {
				t.Fatalf("error %v is not ErrShareEncoding", err)
			}
			return
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Fatalf("accepted %x, which encodes back as %x", b, c.Bytes())
		}
		_, _, _ = Combine(c, s.shares) // must not panic
	})
}
