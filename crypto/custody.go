package crypto

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
)

// Threshold custody: a record key held as k-of-n verifiable secret shares (Shamir with
// Feldman commitments over Ristretto255), one share per custodian. See doc.go for why
// the secret shared is the scalar a DEK is derived from.

// Errors of threshold custody. Callers branch on these with errors.Is.
var (
	// ErrBadShare means a share does not verify against the record's commitments: it
	// was altered, belongs to another record or index, or its custodian lies.
	ErrBadShare = errors.New("crypto: share does not verify against the record's commitments")
	// ErrTooFewShares means fewer valid shares than the threshold were given: ask more
	// custodians.
	ErrTooFewShares = errors.New("crypto: too few valid shares to rebuild the record key")
	// ErrNotShareable means the DEK was not made by NewDEK (it was read from a wrapped
	// keyset), so it has no secret to split; only a fresh DEK is split, at ingest.
	ErrNotShareable = errors.New("crypto: this DEK has no shareable secret (only a DEK from NewDEK is split)")
	// ErrShareEncoding means bytes are not a share or commitments in this package's form.
	ErrShareEncoding = errors.New("crypto: not a well-formed share or commitments encoding")
)

// MaxShares bounds n, the number of shares (custodians) of one record key.
const MaxShares = 16

// ShareIndex names a share: 1..MaxShares. Share i belongs to the record's i-th
// custodian, in the order the record registers them.
type ShareIndex uint8

// Valid reports whether i is a possible share index.
func (i ShareIndex) Valid() bool { return i >= 1 && i <= MaxShares }

// Share is one custodian's share of a record key. It is secret: it leaves a custodian
// only wrapped (WrapShare), and it never prints its value.
type Share struct {
	Index ShareIndex
	value group.Scalar
}

// String names the share without its value.
func (s Share) String() string { return "share " + strconv.Itoa(int(s.Index)) }

// GoString names the share without its value.
func (s Share) GoString() string { return "crypto.Share{Index: " + strconv.Itoa(int(s.Index)) + "}" }

// Commitments are a record key's public Feldman commitments, one group element per
// coefficient of the sharing polynomial: k of them for a k-of-n sharing. Anyone may
// hold them; with them a custodian checks its share and a requester each share it
// receives.
type Commitments struct{ points []group.Element }

// Threshold is k, the number of shares that rebuild the key (0 for empty commitments).
func (c Commitments) Threshold() int { return len(c.points) }

var custodyGroup = group.Ristretto255

const (
	scalarSize = 32 // a Ristretto255 scalar or element, encoded
	// shareTag and commitTag open the two encodings and differ, so that no prefix of
	// a commitments encoding parses as a share (or the reverse).
	shareTag   = 1
	commitTag  = 2
	shareSize  = 2 + scalarSize // tag, index, value
	shareLabel = "medledger/share-wrap/v1"
)

// Split shares d's secret k-of-n: any k of the n shares rebuild d (Combine), fewer
// reveal nothing of it. Share i (1..n) is for the i-th custodian. It needs 1 ≤ k ≤ n ≤
// MaxShares and a DEK made by NewDEK.
func (d *DEK) Split(k, n int) ([]Share, Commitments, error) {
	if d.secret == nil {
		return nil, Commitments{}, ErrNotShareable
	}
	if k < 1 || k > n || n > MaxShares {
		return nil, Commitments{}, fmt.Errorf("crypto: split %d of %d: want 1 ≤ k ≤ n ≤ %d", k, n, MaxShares)
	}
	ss := secretsharing.New(rand.Reader, uint(k-1), d.secret)
	raw := ss.Share(uint(n))
	shares := make([]Share, n)
	for i, s := range raw {
		shares[i] = Share{Index: ShareIndex(i + 1), value: s.Value}
	}
	return shares, Commitments{points: ss.CommitSecret()}, nil
}

// VerifyShare checks s against the record's commitments; ErrBadShare (naming the
// index) if it does not verify.
func VerifyShare(c Commitments, s Share) error {
	if c.Threshold() == 0 || !s.Index.Valid() || s.value == nil ||
		!secretsharing.Verify(uint(c.Threshold()-1), s.circl(), c.points) {
		return fmt.Errorf("%w: share %d", ErrBadShare, s.Index)
	}
	return nil
}

func (s Share) circl() secretsharing.Share {
	return secretsharing.Share{ID: indexScalar(s.Index), Value: s.value}
}

func indexScalar(i ShareIndex) group.Scalar { return custodyGroup.NewScalar().SetUint64(uint64(i)) }

// Combine rebuilds the record key from shares, checking each against the commitments
// first. It returns the indices of the shares that did not verify (sorted, each once)
// whether or not it succeeds: a custodian that lies is named, and the key is still
// rebuilt from the others when k valid shares remain. Fewer gives ErrTooFewShares.
func Combine(c Commitments, shares []Share) (*DEK, []ShareIndex, error) {
	k := c.Threshold()
	if k == 0 {
		return nil, nil, fmt.Errorf("%w: no commitments", ErrTooFewShares)
	}
	var valid []secretsharing.Share
	var seen [MaxShares + 1]bool
	var bad []ShareIndex
	for _, s := range shares {
		if s.Index.Valid() && seen[s.Index] {
			continue // a verified share's value is fixed by the commitments: a copy adds nothing
		}
		if VerifyShare(c, s) != nil {
			bad = append(bad, s.Index)
			continue
		}
		seen[s.Index] = true
		valid = append(valid, s.circl())
	}
	slices.Sort(bad)
	bad = slices.Compact(bad)
	if len(valid) < k {
		return nil, bad, fmt.Errorf("%w: %d valid of the %d needed%s", ErrTooFewShares, len(valid), k, badList(bad))
	}
	secret, err := secretsharing.Recover(uint(k-1), valid[:k])
	if err != nil {
		return nil, bad, fmt.Errorf("crypto: combine: %w", err)
	}
	if !custodyGroup.NewElement().MulGen(secret).IsEqual(c.points[0]) {
		// Verified shares always interpolate to the committed secret; fail closed anyway.
		return nil, bad, fmt.Errorf("%w: shares do not rebuild the committed key", ErrBadShare)
	}
	dek, err := dekFromSecret(secret)
	return dek, bad, err
}

func badList(bad []ShareIndex) string {
	if len(bad) == 0 {
		return ""
	}
	s := make([]string, len(bad))
	for i, b := range bad {
		s[i] = strconv.Itoa(int(b))
	}
	return "; invalid shares: " + strings.Join(s, ", ")
}

// Bytes is the share's stable encoding: tag 1, index, 32-byte scalar (34 bytes).
// It is secret: zero it after use.
func (s Share) Bytes() []byte {
	b := make([]byte, 2, shareSize)
	b[0], b[1] = shareTag, byte(s.Index)
	v, err := s.value.MarshalBinary()
	if err != nil || len(v) != scalarSize {
		panic("crypto: a Ristretto255 scalar encodes in 32 bytes") // unreachable: value is always set by this package
	}
	defer zero(v)
	return append(b, v...)
}

// ParseShare decodes Bytes' output, accepting only the canonical form.
func ParseShare(b []byte) (Share, error) {
	if len(b) != shareSize || b[0] != shareTag || !ShareIndex(b[1]).Valid() {
		return Share{}, fmt.Errorf("%w: a share is %d bytes: tag %d, index 1-%d, scalar", ErrShareEncoding, shareSize, shareTag, MaxShares)
	}
	v := custodyGroup.NewScalar()
	if err := v.UnmarshalBinary(b[2:]); err != nil {
		return Share{}, fmt.Errorf("%w: share value is not a reduced scalar", ErrShareEncoding)
	}
	return Share{Index: ShareIndex(b[1]), value: v}, nil
}

// Bytes is the commitments' stable encoding: tag 2, k, then k 32-byte Ristretto255
// elements. It is public.
func (c Commitments) Bytes() []byte {
	b := make([]byte, 2, 2+scalarSize*len(c.points))
	b[0], b[1] = commitTag, byte(len(c.points))
	for _, p := range c.points {
		e, err := p.MarshalBinaryCompress()
		if err != nil || len(e) != scalarSize {
			panic("crypto: a Ristretto255 element encodes in 32 bytes") // unreachable
		}
		b = append(b, e...)
	}
	return b
}

// ParseCommitments decodes Bytes' output, accepting only the canonical form with
// 1 ≤ k ≤ MaxShares and no identity element (which would weaken the threshold or
// commit to a zero key).
func ParseCommitments(b []byte) (Commitments, error) {
	if len(b) < 2 || b[0] != commitTag || b[1] < 1 || b[1] > MaxShares || len(b) != 2+scalarSize*int(b[1]) {
		return Commitments{}, fmt.Errorf("%w: commitments are tag %d, k (1-%d), then k elements of %d bytes",
			ErrShareEncoding, commitTag, MaxShares, scalarSize)
	}
	pts := make([]group.Element, b[1])
	for i := range pts {
		pts[i] = custodyGroup.NewElement()
		if err := pts[i].UnmarshalBinary(b[2+scalarSize*i : 2+scalarSize*(i+1)]); err != nil || pts[i].IsIdentity() {
			return Commitments{}, fmt.Errorf("%w: commitment %d is not a canonical non-identity element", ErrShareEncoding, i)
		}
	}
	return Commitments{points: pts}, nil
}

// shareInfo is what a wrapped share is bound to (its HPKE context info): the
// WrapContext (chain, record, grant; the empty grant is a custodian's own copy), the
// share's index and the recipient key, under a label of its own so that a wrapped
// share never opens as a wrapped DEK.
func (c WrapContext) shareInfo(i ShareIndex, recipient WrapPublicKey) []byte {
	return appendFields(nil, []byte(shareLabel), []byte(c.Chain), c.Record[:], []byte(c.Grant), []byte{byte(i)}, recipient)
}

// WrapShare seals s for the holder of to, bound to c, to s's index and to the
// recipient key itself, with the HPKE that Wrap uses.
func WrapShare(s Share, to WrapPublicKey, c WrapContext) ([]byte, error) {
	if !s.Index.Valid() || s.value == nil {
		return nil, fmt.Errorf("crypto: wrap share: share %d is not a share", s.Index)
	}
	enc, err := hybridEncrypt(to)
	if err != nil {
		return nil, err
	}
	raw := s.Bytes()
	defer zero(raw)
	ct, err := enc.Encrypt(raw, c.shareInfo(s.Index, to))
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap share: %w", err)
	}
	return ct, nil
}

// UnwrapShare opens share i wrapped for this key under c. Any mismatch — another
// recipient, chain, record, grant or index, or altered bytes — gives ErrUnwrap.
func (k *WrapKey) UnwrapShare(wrapped []byte, c WrapContext, i ShareIndex) (Share, error) {
	raw, err := k.dec.Decrypt(wrapped, c.shareInfo(i, k.pub))
	if err != nil {
		return Share{}, ErrUnwrap
	}
	defer zero(raw)
	s, err := ParseShare(raw)
	if err != nil || s.Index != i {
		return Share{}, ErrUnwrap
	}
	return s, nil
}
