package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits bound what clients can take of a node: time, connections (so file
// descriptors, which consensus needs too), and the rate of anonymous consent
// operations. The zero value means the defaults.
type Limits struct {
	// RequestTimeout is the server-side deadline of a request, from routing to its
	// answer; the Backend's calls get it through their context. When it passes the
	// client gets 503 (issue "timeout") with Retry-After, never a hang. Default 30 s.
	RequestTimeout time.Duration
	// IngestTimeout replaces RequestTimeout for POST /fhir/Bundle, its body's upload
	// included. Default 5 min. GET /audit/stream has no deadline: it lasts until the
	// client or the node goes.
	IngestTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request line and headers. Default 5 s (at
	// most ReadTimeout).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included; an ingest, once its
	// token is checked, gets until its IngestTimeout. Default 15 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end of its
	// answer, so it must exceed RequestTimeout (a timed-out request still hears its
	// 503). A record's answer gets more by its size (writeTime); the audit stream has
	// none. Default RequestTimeout + 15 s.
	WriteTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection between requests. Default 60 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header. Default 64 KiB.
	MaxHeaderBytes int
	// MaxConns bounds the API's open connections. Default 1024; never more than half
	// of the process's open-file limit (ConnLimit).
	MaxConns int
	// ClientRate and ClientBurst limit the anonymous consent operations ($prepare,
	// POST /fhir/Consent, $revoke-prepare, $revoke) per client address (an IPv6
	// client per /64): ClientRate a minute, ClientBurst at once. Defaults 60, 30.
	ClientRate, ClientBurst int
	// PatientRate and PatientBurst limit consent writes (POST /fhir/Consent,
	// $revoke) per patient key, charged once the patient's signature is checked, so
	// no one else can spend a patient's allowance. Defaults 10 a minute, 10 at once.
	PatientRate, PatientBurst int
}

// Defaults of Limits.
const (
	DefaultRequestTimeout    = 30 * time.Second
	DefaultIngestTimeout     = 5 * time.Minute
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteMargin       = 15 * time.Second // WriteTimeout's default beyond RequestTimeout
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxConns          = 1024
	DefaultClientRate        = 60
	DefaultClientBurst       = 30
	DefaultPatientRate       = 10
	DefaultPatientBurst      = 10
)

// ErrLimits is a Limits setting that makes no sense.
var ErrLimits = errors.New("api: limits")

// Validate fills defaults and rejects negative values, a WriteTimeout that does not
// exceed RequestTimeout and a ReadHeaderTimeout beyond ReadTimeout.
func (l *Limits) Validate() error {
	for name, v := range map[string]int64{
		"request timeout": int64(l.RequestTimeout), "ingest timeout": int64(l.IngestTimeout),
		"read header timeout": int64(l.ReadHeaderTimeout), "read timeout": int64(l.ReadTimeout),
		"write timeout": int64(l.WriteTimeout), "idle timeout": int64(l.IdleTimeout),
		"max header bytes": int64(l.MaxHeaderBytes), "max conns": int64(l.MaxConns),
		"client rate": int64(l.ClientRate), "client burst": int64(l.ClientBurst),
		"patient rate": int64(l.PatientRate), "patient burst": int64(l.PatientBurst),
	} {
		if v < 0 {
			return fmt.Errorf("%w: %s is negative (0 means the default)", ErrLimits, name)
		}
	}
	orDefault(&l.RequestTimeout, DefaultRequestTimeout)
	orDefault(&l.IngestTimeout, DefaultIngestTimeout)
	orDefault(&l.ReadTimeout, DefaultReadTimeout)
	orDefault(&l.ReadHeaderTimeout, min(DefaultReadHeaderTimeout, l.ReadTimeout))
	orDefault(&l.WriteTimeout, l.RequestTimeout+DefaultWriteMargin)
	orDefault(&l.IdleTimeout, DefaultIdleTimeout)
	orDefault(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	orDefault(&l.MaxConns, DefaultMaxConns)
	orDefault(&l.ClientRate, DefaultClientRate)
	orDefault(&l.ClientBurst, DefaultClientBurst)
	orDefault(&l.PatientRate, DefaultPatientRate)
	orDefault(&l.PatientBurst, DefaultPatientBurst)
	switch {
	case l.WriteTimeout <= l.RequestTimeout:
		return fmt.Errorf("%w: the write timeout (%s) must exceed the request timeout (%s), or a timed-out request could not be answered", ErrLimits, l.WriteTimeout, l.RequestTimeout)
	case l.ReadHeaderTimeout > l.ReadTimeout:
		return fmt.Errorf("%w: the read header timeout (%s) exceeds the read timeout (%s), which includes the header", ErrLimits, l.ReadHeaderTimeout, l.ReadTimeout)
	}
	return nil
}

func orDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// ConnLimit is the number of connections the API may hold open: want, and at most
// half of the process's open-file limit, so that CometBFT (its database, WAL and
// peers), libp2p and LevelDB keep the other half. (Go raises the soft limit to the
// hard limit at start, so the budget is the hard limit; see NOTES.md.)
func ConnLimit(want int) int {
	if n := openFileLimit(); n > 0 {
		return max(1, min(want, int(n/2)))
	}
	return want
}

// NewServer returns an http.Server for h with lim's timeouts (lim validated), and l
// limited to ConnLimit(lim.MaxConns) open connections: serve with srv.Serve(limited).
// When every connection slot is taken, idle keep-alive connections are closed to make
// room, and new connections wait in the kernel's accept queue (they hold no file
// descriptor of ours) until a timeout or an answer frees a slot.
func NewServer(h http.Handler, l net.Listener, lim Limits) (srv *http.Server, limited net.Listener, err error) {
	if err := lim.Validate(); err != nil {
		return nil, nil, err
	}
	cl := limitConns(l, ConnLimit(lim.MaxConns))
	srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ConnState:         cl.connState,
	}
	return srv, cl, nil
}

// connLimiter is a listener that holds at most cap(slots) connections open. Accept
// waits for a free slot (closing idle keep-alive connections to make one); a
// connection's Close frees its slot.
type connLimiter struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	idle map[net.Conn]struct{} // keep-alive connections between requests (http.StateIdle)
}

func limitConns(l net.Listener, n int) *connLimiter {
	return &connLimiter{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{}), idle: map[net.Conn]struct{}{}}
}

// Accept waits for a slot, then for a connection.
func (l *connLimiter) Accept() (net.Conn, error) {
	if !l.acquire() {
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedConn{Conn: c, release: l.release}, nil
}

// acquire takes a slot, closing idle connections if none is free; false once the
// listener is closed.
func (l *connLimiter) acquire() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	case <-l.done:
		return false
	default:
	}
	l.closeIdle()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-l.done:
		return false
	}
}

func (l *connLimiter) release() { <-l.slots }

func (l *connLimiter) full() bool { return len(l.slots) == cap(l.slots) }

// closeIdle closes every idle keep-alive connection. As with any server's idle
// close, a request sent on one just as it closes fails: HTTP clients retry an
// idempotent request on a new connection; a POST fails and may be sent again (a
// consent write that did not arrive changed nothing).
func (l *connLimiter) closeIdle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.idle {
		c.Close()
		delete(l.idle, c)
	}
}

// connState is the http.Server's ConnState hook: it tracks idle connections, and
// closes one that goes idle while every slot is taken.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s != http.StateIdle {
		delete(l.idle, c)
		return
	}
	if l.full() {
		c.Close()
		return
	}
	l.idle[c] = struct{}{}
}

// Close closes the listener and ends a waiting Accept.
func (l *connLimiter) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn frees its slot when closed (once).
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
