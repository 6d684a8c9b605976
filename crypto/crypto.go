package crypto

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Errors. Callers branch on these with errors.Is.
var (
	// ErrDecrypt means a record's ciphertext did not authenticate: the key, the record ID
	// or the chain ID is not the one it was sealed with, or the ciphertext was altered.
	ErrDecrypt = errors.New("crypto: record does not decrypt (wrong key, record ID or chain ID, or damaged ciphertext)")
	// ErrUnwrap means a wrapped DEK did not open: it was wrapped for another hospital, or
	// for another chain, record or grant, or it was altered.
	ErrUnwrap = errors.New("crypto: wrapped key does not open (not for this hospital, or for another chain, record or grant)")
	// ErrBadSignature means an Ed25519 signature does not verify over the given bytes.
	ErrBadSignature = errors.New("crypto: signature does not verify")
	// ErrKeyFile means a key file is missing, unreadable, or not encrypted under this KEK.
	ErrKeyFile = errors.New("crypto: key file")
)

// ChainID names the consent chain a ciphertext or wrapped key belongs to.
type ChainID string

// RecordID is a record's identity: 128 random bits chosen before encryption. It is not
// the CID, which hashes the ciphertext and so exists only after encryption.
type RecordID [16]byte

// NewRecordID returns a fresh random record ID.
func NewRecordID() (RecordID, error) {
	var id RecordID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("crypto: record ID: %w", err)
	}
	return id, nil
}

// String is the lowercase hex form used everywhere outside this package.
func (id RecordID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is unset.
func (id RecordID) IsZero() bool { return id == RecordID{} }

// ParseRecordID parses the 32-hex-digit form returned by String.
func ParseRecordID(s string) (RecordID, error) {
	var id RecordID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("crypto: record ID %q: want 32 hex digits", truncate(s, 40))
	}
	copy(id[:], b)
	return id, nil
}

// GrantID names the access grant a DEK is released for. It is opaque here; the consent
// chain defines its form. The empty GrantID means custody: a custodian's own copy.
type GrantID string

// Binding is what a record's ciphertext is bound to (its associated data).
type Binding struct {
	Chain  ChainID
	Record RecordID
}

// WrapContext is what a wrapped DEK is bound to (its HPKE context info), besides the
// recipient's public key, which Wrap and Unwrap add themselves.
type WrapContext struct {
	Chain  ChainID
	Record RecordID
	Grant  GrantID
}

// The encodings below are length-prefixed so that no two distinct values share bytes.
const (
	adLabel   = "medledger/record-ad/v1"
	wrapLabel = "medledger/dek-wrap/v1"
)

func (b Binding) associatedData() []byte {
	return appendFields(nil, []byte(adLabel), []byte(b.Chain), b.Record[:])
}

func (c WrapContext) info(recipient WrapPublicKey) []byte {
	return appendFields(nil, []byte(wrapLabel), []byte(c.Chain), c.Record[:], []byte(c.Grant), recipient)
}

func appendFields(dst []byte, fields ...[]byte) []byte {
	for _, f := range fields {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
