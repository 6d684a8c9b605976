package api

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestBuckets: a key gets burst requests at once, then one per interval; refusals say
// how long to wait and spend nothing.
func TestBuckets(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newBuckets(6, 3, 100, func() time.Time { return now }) // one per 10 s
	for i := range 3 {
		if ok, _ := b.take("k"); !ok {
			t.Fatalf("request %d of a burst of 3 refused", i+1)
		}
	}
	for range 2 {
		if ok, wait := b.take("k"); ok || wait != 10*time.Second {
			t.Fatalf("over the burst: ok %v, wait %v; want a refusal for 10s", ok, wait)
		}
	}
	now = now.Add(9 * time.Second)
	if ok, wait := b.take("k"); ok || wait != time.Second {
		t.Fatalf("9 s later: ok %v, wait %v", ok, wait)
	}
	now = now.Add(time.Second)
	if ok, _ := b.take("k"); !ok {
		t.Fatal("a token after its interval was refused")
	}
	if ok, _ := b.take("other"); !ok {
		t.Fatal("another key was limited by k")
	}
}

// TestBucketsBounded: the table never holds more than its maximum; the least recently
// seen key goes first.
func TestBucketsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newBuckets(1, 1, 3, func() time.Time { return now })
	for i := range 1000 {
		b.take(fmt.Sprint(i))
		if b.len() > 3 {
			t.Fatalf("%d keys remembered, max 3", b.len())
		}
	}
	// 997, 998, 999 are remembered; 999 is limited, 0 was forgotten.
	if ok, _ := b.take("999"); ok {
		t.Error("a remembered key's limit was lost")
	}
	if ok, _ := b.take("0"); !ok {
		t.Error("a forgotten key is still limited")
	}
}

func TestClientKey(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"127.0.0.1:5555", "127.0.0.1"},
		{"[::ffff:10.0.0.1]:80", "10.0.0.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"@", "@"},
	} {
		if got := clientKey(tt.addr); got != tt.want {
			t.Errorf("clientKey(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

// TestConnLimitHalfBudget: ConnLimit leaves at least half the open-file limit to the
// rest of the process.
func TestConnLimitHalfBudget(t *testing.T) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Skip(err)
	}
	if got := ConnLimit(1 << 40); uint64(got) > r.Cur/2 {
		t.Errorf("ConnLimit %d, open-file limit %d", got, r.Cur)
	}
}
