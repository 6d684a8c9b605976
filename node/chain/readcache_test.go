package chain

import (
	"bytes"
	"fmt"
	"testing"
)

// The read cache stays within its bound, accounts its bytes exactly, and never keeps
// a stale value: a committed write too large to cache drops what was cached for its
// key, and a delete caches the key as absent.
func TestReadCache(t *testing.T) {
	c := newReadCache(64 << 10)
	check := func() {
		t.Helper()
		n := 0
		for k, e := range c.entries {
			n += len(k) + len(e.value)
		}
		if n != c.bytes || c.bytes > c.maxBytes {
			t.Fatalf("accounted %d bytes, holds %d, bound %d", c.bytes, n, c.maxBytes)
		}
	}
	for i := range 5000 {
		c.put(fmt.Sprintf("k%d", i%700), cached{value: bytes.Repeat([]byte{byte(i)}, i%300), found: true})
		check()
	}
	c.put("hot", cached{value: []byte("v1"), found: true})
	c.committed([]write{{key: "hot", entry: entry{value: make([]byte, c.maxBytes/32)}}})
	if _, ok := c.get([]byte("hot")); ok {
		t.Fatal("a stale value survived a write too large to cache")
	}
	check()
	c.put("gone", cached{value: []byte("v"), found: true})
	c.committed([]write{{key: "gone", entry: entry{deleted: true}}, {key: "never-read", entry: entry{value: []byte("x")}}})
	if e, ok := c.get([]byte("gone")); !ok || e.found {
		t.Fatalf("deleted key: cached %v %+v, want cached as absent", ok, e)
	}
	if _, ok := c.get([]byte("never-read")); ok {
		t.Fatal("a key nobody read was cached by its write")
	}
	check()
}
