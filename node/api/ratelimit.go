package api

import (
	"container/list"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/medledger/medledger/consent"
)

// maxBuckets bounds each rate limiter's table (about 100 bytes an entry): past it,
// the least recently seen key is forgotten, so the limiter cannot grow without bound.
// Forgetting a key gives it a fresh burst; only more distinct keys than this within
// a burst's refill time can do that.
const maxBuckets = 10_000

// buckets is a token bucket per key, kept as the time at which the key's bucket is
// full again (GCRA): a request is allowed while that time, pushed on by one interval,
// is at most a burst of intervals away. A key whose bucket is full is the same as a
// key never seen.
type buckets struct {
	interval time.Duration // between tokens: a minute over the rate
	burst    int
	max      int
	now      func() time.Time

	mu   sync.Mutex
	keys map[string]*list.Element // of *bucket
	lru  *list.List               // front: the most recently seen
}

type bucket struct {
	key  string
	full time.Time // when the bucket is full again
}

func newBuckets(perMinute, burst, max int, now func() time.Time) *buckets {
	return &buckets{interval: time.Minute / time.Duration(perMinute), burst: burst, max: max, now: now,
		keys: map[string]*list.Element{}, lru: list.New()}
}

// take spends a token of key's bucket; if it has none, it spends nothing and says
// how long until it has one.
func (b *buckets) take(key string) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	e := b.entry(key, now)
	bk := e.Value.(*bucket)
	next := bk.full
	if next.Before(now) {
		next = now
	}
	next = next.Add(b.interval)
	if over := next.Sub(now) - time.Duration(b.burst)*b.interval; over > 0 {
		return false, over
	}
	bk.full = next
	return true, 0
}

// entry is key's bucket, made the most recent; a new key takes the least recently
// seen key's place once the table is full.
func (b *buckets) entry(key string, now time.Time) *list.Element {
	if e, ok := b.keys[key]; ok {
		b.lru.MoveToFront(e)
		return e
	}
	if b.lru.Len() >= b.max {
		old := b.lru.Back()
		delete(b.keys, old.Value.(*bucket).key)
		b.lru.Remove(old)
	}
	e := b.lru.PushFront(&bucket{key: key, full: now})
	b.keys[key] = e
	return e
}

// len is the number of keys remembered.
func (b *buckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len()
}

// RateLimits are the limits on anonymous consent operations (Limits' ClientRate and
// ClientBurst, PatientRate and PatientBurst). One value may serve several handlers
// (Config.Rate): the API and the node's web pages then spend the same allowances, so
// a patient or an address gains nothing by using both.
type RateLimits struct {
	clients  *buckets // by client address: every anonymous consent operation
	patients *buckets // by patient key: consent writes whose signature verified
}

// NewRateLimits returns the limits l sets (its zero fields the defaults), on the
// clock now (nil: time.Now).
func NewRateLimits(l Limits, now func() time.Time) (*RateLimits, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return newRateLimits(l, now), nil
}

func newRateLimits(l Limits, now func() time.Time) *RateLimits {
	return &RateLimits{
		clients:  newBuckets(l.ClientRate, l.ClientBurst, maxBuckets, now),
		patients: newBuckets(l.PatientRate, l.PatientBurst, maxBuckets, now),
	}
}

// Client charges r's client for an anonymous consent operation: a 429 problem when
// it is over its rate.
func (rl *RateLimits) Client(r *http.Request) error {
	if ok, wait := rl.clients.take(clientKey(r.RemoteAddr)); !ok {
		return throttled(wait, "too many consent requests from this address; try again in "+retryAfter(wait)+" s")
	}
	return nil
}

// Patient charges a patient's key for a consent write: a 429 problem when it is
// over its rate (nothing is submitted then).
func (rl *RateLimits) Patient(p consent.PatientID) error {
	if ok, wait := rl.patients.take(string(p)); !ok {
		return throttled(wait, "too many consent changes for this patient; try again in "+retryAfter(wait)+" s")
	}
	return nil
}

func throttled(wait time.Duration, msg string) *problem {
	return &problem{status: http.StatusTooManyRequests, issue: issue("throttled", "", msg),
		header: http.Header{"Retry-After": {retryAfter(wait)}}}
}

// retryAfter is wait in whole seconds, rounded up, at least 1.
func retryAfter(wait time.Duration) string {
	return strconv.FormatInt(max(1, int64((wait+time.Second-1)/time.Second)), 10)
}

// ClientKey names r's client as the rate limits do (see clientKey): handlers that
// keep per-client state of their own key it the same way.
func ClientKey(r *http.Request) string { return clientKey(r.RemoteAddr) }

// clientKey names a client by its address: an IPv4 address, or an IPv6 address's /64
// (one subscriber's usual allocation, so rotating within it gains nothing). The
// address is the connection's peer: headers such as X-Forwarded-For are not trusted.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return host
	case ip.To4() != nil:
		return ip.To4().String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
