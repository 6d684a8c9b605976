package crypto

import (
	"io"
	"testing"
)

func BenchmarkNewDEK(b *testing.B) {
	for b.Loop() {
		if _, err := NewDEK(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal1MiB(b *testing.B) {
	dek, _ := NewDEK()
	plain := make([]byte, 1<<20)
	bind := Binding{Chain: "bench"}
	b.SetBytes(1 << 20)
	for b.Loop() {
		w, _ := dek.Encrypt(io.Discard, bind)
		w.Write(plain)
		w.Close()
	}
}

func BenchmarkWrapUnwrap(b *testing.B) {
	k, _ := NewWrapKey()
	dek, _ := NewDEK()
	c := WrapContext{Chain: "bench", Grant: "g"}
	for b.Loop() {
		w, err := Wrap(dek, k.Public(), c)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.Unwrap(w, c); err != nil {
			b.Fatal(err)
		}
	}
}
