package abci

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/medledger/medledger/consent"
)

// The read cache stays within its bound, accounts its bytes exactly, and never keeps
// a stale value: a committed write too large to cache drops what was cached for its
// key, and a delete caches the key as absent.
func TestReadCache(t *testing.T) {
	c := newReadCache(64 << 10)
	check := func() {
		t.Helper()
		n, all := 0, 0
		for k, e := range c.cur {
			n += entrySize(k, e)
		}
		all = n
		for k, e := range c.prev {
			if _, ok := c.cur[k]; ok {
				t.Fatalf("%s in both generations", k)
			}
			all += entrySize(k, e)
		}
		if n != c.bytes || all > c.maxBytes {
			t.Fatalf("accounted %d bytes, current generation holds %d, both %d, bound %d", c.bytes, n, all, c.maxBytes)
		}
	}
	for i := range 5000 {
		c.put(fmt.Sprintf("k%d", i%700), cached{value: bytes.Repeat([]byte{byte(i)}, i%300), found: true})
		check()
	}
	// A key that aged into the previous generation is still kept current by commits,
	// and a hit brings it back to the current one.
	c.put("aged", cached{value: []byte("v1"), found: true})
	for i := 0; c.prev["aged"].value == nil; i++ {
		c.put(fmt.Sprintf("filler%d", i), cached{value: make([]byte, 100), found: true})
	}
	c.committed([]consent.Write{{Key: "aged", Value: []byte("v2")}})
	if e, ok := c.get([]byte("aged")); !ok || string(e.value) != "v2" {
		t.Fatalf("aged key after a commit: %v %q, want v2", ok, e.value)
	}
	if _, ok := c.cur["aged"]; !ok {
		t.Fatal("a hit in the previous generation was not brought back")
	}
	check()
	c.put("hot", cached{value: []byte("v1"), found: true})
	c.committed([]consent.Write{{Key: "hot", Value: make([]byte, c.maxBytes/32)}})
	if _, ok := c.get([]byte("hot")); ok {
		t.Fatal("a stale value survived a write too large to cache")
	}
	check()
	c.put("gone", cached{value: []byte("v"), found: true})
	c.committed([]consent.Write{{Key: "gone", Deleted: true}, {Key: "never-read", Value: []byte("x")}})
	if e, ok := c.get([]byte("gone")); !ok || e.found {
		t.Fatalf("deleted key: cached %v %+v, want cached as absent", ok, e)
	}
	if _, ok := c.get([]byte("never-read")); ok {
		t.Fatal("a key nobody read was cached by its write")
	}
	check()
}
