package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
)

// backends runs a test against every block store backend.
func backends(t *testing.T, test func(t *testing.T, open func() *Store)) {
	t.Run("leveldb", func(t *testing.T) {
		dir := t.TempDir()
		test(t, func() *Store {
			s, err := Open(t.Context(), dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("memory", func(t *testing.T) {
		s, err := OpenMemory(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		test(t, func() *Store { return s })
	})
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func importBytes(t *testing.T, s *Store, b []byte) cid.Cid {
	t.Helper()
	c, n, err := s.Import(t.Context(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(b)) {
		t.Fatalf("imported %d bytes, want %d", n, len(b))
	}
	return c
}

func readAll(ctx context.Context, s *Store, c cid.Cid) ([]byte, error) {
	r, err := s.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func TestImportRead(t *testing.T) {
	backends(t, func(t *testing.T, open func() *Store) {
		s := open()
		for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, 5*ChunkSize + 3} {
			want := payload(n, byte(n))
			c := importBytes(t, s, want)
			if c.Version() != 1 {
				t.Errorf("size %d: CID %s is v%d, want v1", n, c, c.Version())
			}
			got, err := readAll(t.Context(), s, c)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("size %d: read back %d bytes, err %v", n, len(got), err)
			}
			if pinned, err := s.IsPinned(t.Context(), c); err != nil || !pinned {
				t.Errorf("size %d: imported file not pinned (err %v)", n, err)
			}
		}
		// Same bytes, same CID: content addressing.
		a := importBytes(t, s, payload(1000, 9))
		b := importBytes(t, s, payload(1000, 9))
		if !a.Equals(b) {
			t.Errorf("same bytes gave CIDs %s and %s", a, b)
		}
	})
}

func TestBlocksAreChunked(t *testing.T) {
	s, _ := OpenMemory(t.Context())
	importBytes(t, s, payload(3*ChunkSize+10, 1))
	keys, _ := s.Blockstore().AllKeysChan(t.Context())
	var full, total int
	for k := range keys {
		total++
		blk, err := s.Blockstore().Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		if len(blk.RawData()) > ChunkSize {
			t.Errorf("block %s is %d bytes, want ≤ %d", k, len(blk.RawData()), ChunkSize)
		}
		if len(blk.RawData()) == ChunkSize {
			full++
		}
	}
	if full != 3 || total != 5 {
		t.Fatalf("got %d full chunks of %d blocks, want 3 full + 1 partial leaf + 1 root", full, total)
	}
}

func TestUnknownCID(t *testing.T) {
	backends(t, func(t *testing.T, open func() *Store) {
		s := open()
		other, _ := OpenMemory(t.Context())
		c := importBytes(t, other, []byte("elsewhere"))
		if _, err := readAll(t.Context(), s, c); !errors.Is(err, ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
}

func TestCorruptBlockIsNotServed(t *testing.T) {
	backends(t, func(t *testing.T, open func() *Store) {
		s := open()
		c := importBytes(t, s, payload(2*ChunkSize, 3))
		// Flip one byte of one leaf directly in the datastore.
		keys, _ := s.Blockstore().AllKeysChan(t.Context())
		var leaf cid.Cid
		for k := range keys {
			if sz, _ := s.Blockstore().GetSize(t.Context(), k); sz == ChunkSize {
				leaf = k
			}
		}
		dsKey := blockstore.BlockPrefix.Child(dshelp.MultihashToDsKey(leaf.Hash()))
		raw, err := s.ds.Get(t.Context(), dsKey)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)/2] ^= 0x01
		if err := s.ds.Put(t.Context(), dsKey, raw); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Blockstore().Get(t.Context(), leaf); !errors.Is(err, blockstore.ErrHashMismatch) {
			t.Fatalf("block store served a corrupt block: err %v", err)
		}
		if _, err := readAll(t.Context(), s, c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("reading a file with a corrupt block: got %v, want ErrCorrupt", err)
		}
	})
}

func TestPinUnpinGC(t *testing.T) {
	backends(t, func(t *testing.T, open func() *Store) {
		s := open()
		keep := importBytes(t, s, payload(2*ChunkSize+1, 4))
		drop := importBytes(t, s, payload(3*ChunkSize, 5))
		if n, err := s.GC(t.Context()); err != nil || n != 0 {
			t.Fatalf("GC with everything pinned removed %d blocks (err %v), want 0", n, err)
		}
		if err := s.Unpin(t.Context(), drop); err != nil {
			t.Fatal(err)
		}
		if err := s.Unpin(t.Context(), drop); err == nil {
			t.Fatal("unpinning twice: no error")
		}
		n, err := s.GC(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n != 4 { // 3 leaves + root
			t.Fatalf("GC removed %d blocks, want 4", n)
		}
		if _, err := readAll(t.Context(), s, drop); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unpinned file after GC: got %v, want ErrNotFound", err)
		}
		if _, err := readAll(t.Context(), s, keep); err != nil {
			t.Fatalf("pinned file after GC: %v", err)
		}
		// Pin requires the whole DAG locally.
		if err := s.Pin(t.Context(), drop); !errors.Is(err, ErrNotFound) {
			t.Fatalf("pinning a collected file: got %v, want ErrNotFound", err)
		}
		if err := s.Pin(t.Context(), keep); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := payload(ChunkSize+5, 6)
	c := importBytes(t, s, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := readAll(t.Context(), s, c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after reopen: %d bytes, err %v", len(got), err)
	}
	if pinned, _ := s.IsPinned(t.Context(), c); !pinned {
		t.Fatal("pin lost across reopen")
	}
	if n, err := s.GC(t.Context()); err != nil || n != 0 {
		t.Fatalf("GC after reopen removed %d (err %v), want 0", n, err)
	}
}
