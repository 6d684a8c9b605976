package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// Server-side deadlines. Every route but the audit stream runs under a deadline on
// its request's context, which the Backend's calls receive. The handler runs in its
// own goroutine behind a gate: if the deadline passes before it has begun to answer,
// the client gets 503 at once and whatever the handler writes later is dropped; if it
// has begun (a large record on its way), it finishes under the write deadline.

// retryAfterTimeout is the Retry-After of a request that ran out of time.
const retryAfterTimeout = 5 * time.Second

// minWriteRate is the slowest transfer of a large answer (a record) the API waits
// for: its write deadline grows by a second per minWriteRate bytes.
const minWriteRate = 1 << 20

// errSlowBody is a request body that did not arrive before the read deadline.
var errSlowBody = errors.New("api: the request body did not arrive in time")

// within runs h with its request's context ending after d (none if d is 0).
func (s *server) within(d time.Duration, h http.HandlerFunc) http.HandlerFunc {
	if d <= 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		g := &gate{w: w, header: http.Header{}}
		done := make(chan *handlerPanic, 1)
		go func() {
			p := catch(func() { h(g, r.WithContext(ctx)) })
			if p != nil && g.isShut() && p.value != http.ErrAbortHandler {
				s.log.Error("api: panic after the deadline", "panic", fmt.Sprint(p.value), "stack", string(p.stack))
			}
			done <- p
		}()
		// The deadline is a timer of its own, not ctx.Done: a context cancelled
		// early (the client gone, a body read that timed out) reaches the handler,
		// which answers for itself (408 for a slow body).
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case p := <-done:
			repanic(p)
		case <-timer.C:
			if !g.shut() { // the answer is on its way: let it finish
				repanic(<-done)
				return
			}
			problemNote(w, "timeout: the request's deadline passed")
			writeProblem(w, deadlineProblem(context.DeadlineExceeded))
		}
	}
}

// handlerPanic is a panic in a handler's goroutine, carried to the request's.
type handlerPanic struct {
	value any
	stack []byte
}

func catch(f func()) (p *handlerPanic) {
	defer func() {
		if v := recover(); v != nil {
			p = &handlerPanic{value: v, stack: debug.Stack()}
		}
	}()
	f()
	return nil
}

func repanic(p *handlerPanic) {
	if p != nil {
		panic(p)
	}
}

// deadlineProblem answers a request whose context ended (err: ctx.Err()).
func deadlineProblem(err error) *problem {
	h := http.Header{"Retry-After": {strconv.Itoa(int(retryAfterTimeout / time.Second))}}
	if errors.Is(err, context.Canceled) {
		return &problem{status: http.StatusServiceUnavailable, header: h, issue: issue("transient", "",
			"the request was cancelled before the node finished it; try again")}
	}
	return &problem{status: http.StatusServiceUnavailable, header: h, issue: issue("timeout", "",
		"the node did not finish in time (is the chain making progress?); a change you submitted may still take effect: check before you repeat it")}
}

// gate is the ResponseWriter a handler under a deadline writes to: the handler's
// header is its own until it answers, and once the deadline has answered for it (shut)
// its writes go nowhere.
type gate struct {
	w      http.ResponseWriter
	header http.Header // the handler's; copied out when it answers

	mu     sync.Mutex
	wrote  bool // the handler has begun its answer
	closed bool // the deadline answered instead
}

// shut closes the gate unless the handler has begun to answer: true if it closed.
func (g *gate) shut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.wrote {
		g.closed = true
	}
	return g.closed
}

func (g *gate) isShut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

func (g *gate) Header() http.Header { return g.header }

// begin copies the handler's header out, once; it reports whether the gate is open.
// The caller holds mu.
func (g *gate) begin() bool {
	if g.closed {
		return false
	}
	if !g.wrote {
		dst := g.w.Header()
		for k, v := range g.header {
			dst[k] = v
		}
		g.wrote = true
	}
	return true
}

func (g *gate) WriteHeader(code int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.begin() {
		g.w.WriteHeader(code)
	}
}

func (g *gate) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.begin() {
		return 0, http.ErrHandlerTimeout
	}
	return g.w.Write(b)
}

// FlushError, SetReadDeadline and SetWriteDeadline serve http.ResponseController,
// through the gate (there is deliberately no Unwrap: after the deadline answered,
// the connection may be serving another request).
func (g *gate) FlushError() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return http.ErrHandlerTimeout
	}
	if !g.wrote {
		g.begin()
		g.w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(g.w).Flush()
}

func (g *gate) SetReadDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return http.ErrHandlerTimeout
	}
	return http.NewResponseController(g.w).SetReadDeadline(t)
}

func (g *gate) SetWriteDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return http.ErrHandlerTimeout
	}
	return http.NewResponseController(g.w).SetWriteDeadline(t)
}

// allowWrite gives the answer of n bytes about to be written time to reach a slow
// client: the write timeout plus a second per minWriteRate bytes.
func (s *server) allowWrite(w http.ResponseWriter, n int) {
	d := s.limits.WriteTimeout + time.Duration(n/minWriteRate)*time.Second
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d)) // not every writer has deadlines
}

// allowUpload lets a request's body arrive until its context's deadline (an ingest's,
// once its token is checked), and its answer go out a write timeout after that.
func (s *server) allowUpload(w http.ResponseWriter, r *http.Request) {
	end, ok := r.Context().Deadline()
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(end)
	_ = rc.SetWriteDeadline(end.Add(s.limits.WriteTimeout))
}

// watchBody makes r's body answer errSlowBody when it does not arrive before the
// read deadline (ReadTimeout, or an ingest's), and lifts that deadline once the body
// has arrived (at once if there is none): the server's wait for the client to hang up
// reads under it, and would otherwise cancel the request's context when it passes.
// The handler stays bounded by its own deadline (within).
func watchBody(w http.ResponseWriter, r *http.Request) {
	arrived := func() { _ = http.NewResponseController(w).SetReadDeadline(time.Time{}) }
	if r.Body == nil || r.Body == http.NoBody {
		arrived()
		return
	}
	r.Body = &watchedBody{ReadCloser: r.Body, arrived: arrived}
}

type watchedBody struct {
	io.ReadCloser
	arrived func()
	once    sync.Once
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.once.Do(b.arrived)
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w (%v)", errSlowBody, err)
	}
	return n, err
}

// timeoutOf is err, or the answer to a request that ran out of time: a body that did
// not arrive (408), a context that ended, or any failure once the request's deadline
// has passed (503 with Retry-After, never 500).
func timeoutOf(r *http.Request, err error) error {
	ctxErr := r.Context().Err()
	switch {
	case errors.Is(err, errSlowBody):
		return &problem{status: http.StatusRequestTimeout, issue: issue("timeout", "",
			"the request body did not arrive within the node's read timeout; send it again"),
			header: http.Header{"Connection": {"close"}}}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		if ctxErr == nil {
			ctxErr = context.DeadlineExceeded // a deadline of the Backend's own
		}
		return deadlineProblem(ctxErr)
	case ctxErr != nil && problemOf(err).status >= http.StatusInternalServerError:
		return deadlineProblem(ctxErr)
	}
	return err
}
