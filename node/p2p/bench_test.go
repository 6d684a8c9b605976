package p2p_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/p2p"
)

// BenchmarkFetch compares a bitswap fetch + decrypt of a sealed record with a bitswap
// fetch of the same bytes imported raw, between two hosts on 127.0.0.1 (TCP), each
// with an on-disk block store. Every iteration fetches into a fresh, empty store.
func BenchmarkFetch(b *testing.B) {
	for _, n := range []int{1 << 20, 64 << 20} {
		data := make([]byte, n)
		rand.NewChaCha8([32]byte{9}).Read(data)
		b.Run(fmt.Sprintf("raw/%dMiB", n>>20), func(b *testing.B) {
			benchFetch(b, data, false)
		})
		b.Run(fmt.Sprintf("decrypted/%dMiB", n>>20), func(b *testing.B) {
			benchFetch(b, data, true)
		})
	}
}

func benchFetch(b *testing.B, data []byte, encrypted bool) {
	members := p2p.NewAllowlist()
	src := newHospital(b, members)
	var root cid.Cid
	var dek *crypto.DEK
	var id crypto.RecordID
	if encrypted {
		s := seal(b, src.store, data)
		root, dek, id = s.cid, s.dek, s.id
	} else {
		c, _, err := src.store.Import(b.Context(), bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		root = c
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst := newHospital(b, members)
		members.Set([]peer.ID{src.host.ID(), dst.host.ID()})
		ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
		if err := dst.host.Connect(ctx, only(b, src.host.AddrInfo(), "tcp")); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		r, err := dst.host.Fetch(ctx, root)
		if err != nil {
			b.Fatal(err)
		}
		var out io.Reader = r
		if encrypted {
			if out, err = dek.Decrypt(r, crypto.Binding{Chain: chain, Record: id}); err != nil {
				b.Fatal(err)
			}
		}
		got, err := io.Copy(io.Discard, out)
		if err != nil || got != int64(len(data)) {
			b.Fatalf("read %d bytes, err %v", got, err)
		}
		b.StopTimer()
		cancel()
		dst.host.Close()
		dst.store.Close()
		b.StartTimer()
	}
}
