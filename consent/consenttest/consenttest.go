// Package consenttest has in-memory fakes for testing the consent state machine and
// what drives it: a sorted in-memory Store, deterministic keys, a tx builder, and
// Chain, the real consent.Machine over that store with one tx per block at a block
// time the test sets (the chain behind the HTTP API's fake node).
package consenttest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/google/btree"

	"github.com/medledger/medledger/consent"
)

// MemStore is an in-memory consent.Store with sorted iteration, on a B-tree so that a
// store of millions of keys (the audit-log benchmark) reads and iterates in O(log n).
type MemStore struct {
	mu sync.RWMutex
	t  *btree.BTreeG[kv]
}

type kv struct {
	k string
	v []byte
}

func lessKV(a, b kv) bool { return a.k < b.k }

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{t: btree.NewG(32, lessKV)} }

var _ consent.Store = (*MemStore)(nil)

// Get returns the value of key, or nil.
func (s *MemStore) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, _ := s.t.Get(kv{k: string(key)})
	return bytes.Clone(e.v), nil
}

// Set sets key to value.
func (s *MemStore) Set(key, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	s.t.ReplaceOrInsert(kv{k: string(key), v: v})
	return nil
}

// Delete removes key.
func (s *MemStore) Delete(key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.Delete(kv{k: string(key)})
	return nil
}

// iterateChunk is how many entries Iterate reads under the lock at a time.
const iterateChunk = 256

// Iterate visits [start, end) in key order. It reads the tree in chunks and calls fn
// outside the lock, so fn may write to the store: writes to keys it has not reached yet
// may or may not be visited (the consent package never relies on either).
func (s *MemStore) Iterate(start, end []byte, fn func(key, value []byte) error) error {
	from, inclusive := string(start), true
	for {
		chunk := make([]kv, 0, iterateChunk)
		s.mu.RLock()
		s.t.AscendGreaterOrEqual(kv{k: from}, func(e kv) bool {
			if !inclusive && e.k == from {
				return true
			}
			if end != nil && e.k >= string(end) {
				return false
			}
			chunk = append(chunk, e)
			return len(chunk) < iterateChunk
		})
		s.mu.RUnlock()
		for _, e := range chunk {
			if err := fn([]byte(e.k), e.v); err != nil {
				return err
			}
		}
		if len(chunk) < iterateChunk {
			return nil
		}
		from, inclusive = chunk[len(chunk)-1].k, false
	}
}

// Len returns the number of keys in the store.
func (s *MemStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.t.Len()
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
