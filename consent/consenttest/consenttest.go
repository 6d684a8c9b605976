// Package consenttest has in-memory fakes for testing the consent state machine and
// what drives it: a sorted in-memory Store, deterministic keys, and a tx builder.
package consenttest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/medledger/medledger/consent"
)

// MemStore is an in-memory consent.Store with sorted iteration.
type MemStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{m: map[string][]byte{}} }

var _ consent.Store = (*MemStore)(nil)

// Get returns the value of key, or nil.
func (s *MemStore) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return bytes.Clone(s.m[string(key)]), nil
}

// Set sets key to value.
func (s *MemStore) Set(key, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[string(key)] = bytes.Clone(value)
	return nil
}

// Delete removes key.
func (s *MemStore) Delete(key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, string(key))
	return nil
}

// Iterate visits [start, end) in key order.
func (s *MemStore) Iterate(start, end []byte, fn func(key, value []byte) error) error {
	s.mu.RLock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		if k >= string(start) && (end == nil || k < string(end)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = s.m[k]
	}
	s.mu.RUnlock()
	for i, k := range keys {
		if err := fn([]byte(k), vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// Hash returns a digest of the whole store, for comparing states.
func (s *MemStore) Hash() [32]byte {
	h := sha256.New()
	s.Iterate(nil, nil, func(k, v []byte) error {
		binary.Write(h, binary.BigEndian, uint32(len(k)))
		h.Write(k)
		binary.Write(h, binary.BigEndian, uint32(len(v)))
		h.Write(v)
		return nil
	})
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// Key is a deterministic Ed25519 key derived from a name, for stable test IDs.
type Key struct{ priv ed25519.PrivateKey }

// NewKey derives a key from name.
func NewKey(name string) *Key {
	seed := sha256.Sum256([]byte("consenttest key " + name))
	return &Key{priv: ed25519.NewKeyFromSeed(seed[:])}
}

// Sign signs msg.
func (k *Key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// Public returns the public key.
func (k *Key) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// Patient returns the PatientID of the key.
func (k *Key) Patient() consent.PatientID { return consent.PatientIDOf(k.Public()) }

// Hospital returns a hospital record with keys derived from id.
func Hospital(id string, power int64) consent.Hospital {
	return consent.Hospital{
		ID: consent.HospitalID(id), Name: "Hospital " + id, Power: power,
		Operator: NewKey(id).Public(), Node: NewKey(id + "/node").Public(), Wrap: NewKey(id + "/wrap").Public(),
	}
}

// Builder signs txs with deterministic nonces (a counter), so tx IDs are stable.
type Builder struct {
	ChainID string
	n       uint64
}

// Tx builds and signs a tx of body (its ChainID, Nonce and Expiry are filled in when
// zero) with signer.
func (b *Builder) Tx(body consent.Body, signer consent.Signer) []byte {
	if body.ChainID == "" {
		body.ChainID = b.ChainID
	}
	if body.Nonce == nil {
		b.n++
		body.Nonce = make([]byte, 16)
		binary.BigEndian.PutUint64(body.Nonce[8:], b.n)
	}
	tx, err := consent.Sign(body, signer)
	if err != nil {
		panic(err) // test helper: encoding a well-formed body cannot fail
	}
	return tx
}
