package node

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/storage"
)

var benchSizes = []int{1 << 20, 64 << 20}

func benchPayload(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{42}).Read(b)
	return b
}

// BenchmarkImport compares sealing a record into an on-disk block store (encrypt +
// UnixFS import + pin) with importing the same plaintext bytes raw.
func BenchmarkImport(b *testing.B) {
	for _, n := range benchSizes {
		data := benchPayload(n)
		b.Run(fmt.Sprintf("raw/%dMiB", n>>20), func(b *testing.B) {
			s := openTestStore(b)
			b.SetBytes(int64(n))
			for b.Loop() {
				for i := 0; i < n; i += storage.ChunkSize {
					data[i]++ // new bytes in every chunk: nothing deduplicates
				}
				if _, _, err := s.Import(b.Context(), bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("encrypted/%dMiB", n>>20), func(b *testing.B) {
			s := openTestStore(b)
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, _, err := seal(b.Context(), s, "bench", bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen measures reading + decrypting a sealed record from a local store.
func BenchmarkOpen(b *testing.B) {
	data := benchPayload(64 << 20)
	s := openTestStore(b)
	sealed, dek, err := seal(b.Context(), s, "bench", bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := s.Open(b.Context(), sealed.CID)
		if err != nil {
			b.Fatal(err)
		}
		p, err := decrypt(r, dek, crypto.ChainID("bench"), sealed.ID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
