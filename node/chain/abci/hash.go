package abci

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/medledger/medledger/consent"
)

// The app hash chains each height's writes, and the state machine's commitment (see
// Committer), onto the previous app hash:
//
//	digest   = SHA-256( for each write in ascending key order:
//	                        len(key) (4 bytes, big endian) || key
//	                        || 0x00 for a set, 0x01 for a delete
//	                        || len(value) (4 bytes, big endian) || value  (empty for a delete) )
//	app hash = SHA-256( prev || digest || height (8 bytes, big endian)
//	                    || len(commitment) (4 bytes, big endian) || commitment )
//
// prev is empty for genesis (InitChain, at the height before the initial height). Since
// every write of every height is hashed, two nodes with the same app hash at a height
// made the same writes at every height up to it, and so hold the same state. Since the
// commitment is hashed on its own, a light client holding two signed headers (the app
// hashes after heights h-1 and h) checks a commitment of height h with the 32-byte
// digest alone, without the block's writes: see AppHashOf.
func appHash(prev []byte, writes []consent.Write, height int64, commitment []byte) []byte {
	return AppHashOf(prev, writesDigest(writes), height, commitment)
}

// AppHashOf is the app hash from its parts (see appHash), for verifiers.
func AppHashOf(prev, digest []byte, height int64, commitment []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(digest)
	var hb [8]byte
	binary.BigEndian.PutUint64(hb[:], uint64(height))
	h.Write(hb[:])
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(commitment)))
	h.Write(n[:])
	h.Write(commitment)
	return h.Sum(nil)
}

func writesDigest(writes []consent.Write) []byte {
	h := sha256.New()
	var n [4]byte
	for _, w := range writes {
		binary.BigEndian.PutUint32(n[:], uint32(len(w.Key)))
		h.Write(n[:])
		h.Write([]byte(w.Key))
		if w.Deleted {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
		binary.BigEndian.PutUint32(n[:], uint32(len(w.Value)))
		h.Write(n[:])
		h.Write(w.Value)
	}
	return h.Sum(nil)
}

// HashParts are what an app hash is made of at one height, for a light client that
// checks a commitment against signed headers.
type HashParts struct {
	Height     int64  `json:"height"`
	Prev       []byte `json:"prev"`       // the app hash after the previous height
	Digest     []byte `json:"digest"`     // of the height's writes
	Commitment []byte `json:"commitment"` // the state machine's (Committer), or empty
	AppHash    []byte `json:"app_hash"`   // AppHashOf(Prev, Digest, Height, Commitment)
}
