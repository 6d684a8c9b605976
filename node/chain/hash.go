package chain

import (
	"crypto/sha256"
	"encoding/binary"
)

// appHash chains the writes of one height onto the previous app hash:
//
//	SHA-256( prev
//	       || for each write in ascending key order:
//	              len(key) (4 bytes, big endian) || key
//	              || 0x00 for a set, 0x01 for a delete
//	              || len(value) (4 bytes, big endian) || value   (empty for a delete)
//	       || height (8 bytes, big endian) )
//
// prev is empty for genesis (InitChain, at the height before the initial height). Since
// every write of every height is hashed, two nodes with the same app hash at a height
// made the same writes at every height up to it, and so hold the same state.
func appHash(prev []byte, writes []write, height int64) []byte {
	h := sha256.New()
	h.Write(prev)
	var n [4]byte
	for _, w := range writes {
		binary.BigEndian.PutUint32(n[:], uint32(len(w.key)))
		h.Write(n[:])
		h.Write([]byte(w.key))
		if w.deleted {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
		binary.BigEndian.PutUint32(n[:], uint32(len(w.value)))
		h.Write(n[:])
		h.Write(w.value)
	}
	var hb [8]byte
	binary.BigEndian.PutUint64(hb[:], uint64(height))
	h.Write(hb[:])
	return h.Sum(nil)
}
