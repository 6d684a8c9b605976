package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// server is the API's http.Handler.
type server struct {
	b       Backend
	id      Identity
	log     *slog.Logger
	maxBody int64
	limits  Limits
	rate    *RateLimits
	tokens  []token
	mux     *http.ServeMux
	started time.Time // the CapabilityStatement's date
}

type token struct {
	role Role
	hash []byte // SHA-256 of the token
}

// handler is an endpoint: it writes a success, or returns an error that ServeHTTP
// answers as an OperationOutcome (see problemOf).
type handler func(w http.ResponseWriter, r *http.Request) error

// route registers h at pattern for the given roles (nil: no token needed), under
// the request deadline (Limits.RequestTimeout).
func (s *server) route(pattern string, allowed []Role, h handler) {
	s.routeWithin(pattern, allowed, s.limits.RequestTimeout, h)
}

// routeWithin registers h at pattern for the given roles under deadline d (0: none).
func (s *server) routeWithin(pattern string, allowed []Role, d time.Duration, h handler) {
	s.mux.HandleFunc(pattern, s.within(d, func(w http.ResponseWriter, r *http.Request) {
		watchBody(w, r)
		err := s.authorize(r, allowed)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			s.fail(w, r, timeoutOf(r, err))
		}
	}))
}

// ServeHTTP dispatches to the routes, answers unknown routes (404) and wrong methods
// (405) with an OperationOutcome, turns a panic into a bare 500, and logs one line per
// request: method, route pattern, status, duration — never a body, a token or a
// query string.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	h := sw.Header()
	h.Set("Cache-Control", "no-store") // records are PHI; nothing here is cacheable
	h.Set("X-Content-Type-Options", "nosniff")
	_, pattern := s.mux.Handler(r)
	defer func() {
		if p := recover(); p != nil {
			stack := debug.Stack()
			if hp, ok := p.(*handlerPanic); ok { // from a handler's goroutine (within)
				p, stack = hp.value, hp.stack
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(r.Context(), "api: panic", "route", pattern, "panic", fmt.Sprint(p), "stack", string(stack))
			if !sw.wrote {
				writeProblem(sw, &problem{status: http.StatusInternalServerError, issue: issue("exception", "",
					"internal error; the node's log has the cause")})
			}
		}
		s.logRequest(r, pattern, sw, time.Since(start))
	}()
	if pattern == "" {
		s.unrouted(sw, r)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

func (s *server) logRequest(r *http.Request, pattern string, sw *statusWriter, d time.Duration) {
	level := slog.LevelInfo
	if sw.status >= 500 {
		level = slog.LevelError
	}
	if pattern == "" {
		pattern = "unrouted"
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("route", pattern),
		slog.Int("status", sw.status), slog.Duration("duration", d),
	}
	if sw.problem != "" {
		attrs = append(attrs, slog.String("problem", sw.problem))
	}
	s.log.LogAttrs(r.Context(), level, "api: request", attrs...)
}

// unrouted answers a request no pattern matches: 404, 405 (with Allow), or the mux's
// redirect to a clean path.
func (s *server) unrouted(w *statusWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	c := &captureWriter{header: http.Header{}}
	h.ServeHTTP(c, r)
	switch c.status {
	case http.StatusNotFound:
		writeProblem(w, &problem{status: http.StatusNotFound, issue: issue("not-found", "",
			"no such endpoint: "+r.Method+" "+r.URL.Path+" (GET /fhir/metadata lists them)")})
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", c.header.Get("Allow"))
		writeProblem(w, &problem{status: http.StatusMethodNotAllowed, issue: issue("not-supported", "",
			r.Method+" is not supported here; allowed: "+c.header.Get("Allow"))})
	default:
		for k, v := range c.header {
			w.Header()[k] = v
		}
		w.WriteHeader(c.status)
	}
}

// authorize checks the bearer token against the configured hashes (in constant time)
// and its role against allowed.
func (s *server) authorize(r *http.Request, allowed []Role) error {
	if allowed == nil {
		return nil
	}
	tok, ok := bearer(r)
	if !ok {
		return &problem{status: http.StatusUnauthorized, issue: issue("login", "",
			"this endpoint needs a bearer token: Authorization: Bearer TOKEN"),
			header: http.Header{"Www-Authenticate": {`Bearer realm="medledger"`}}}
	}
	role, ok := s.roleOf(tok)
	if !ok {
		return &problem{status: http.StatusUnauthorized, issue: issue("login", "",
			"the bearer token is not one this node accepts"),
			header: http.Header{"Www-Authenticate": {`Bearer realm="medledger", error="invalid_token"`}}}
	}
	if !slices.Contains(allowed, role) {
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = string(a)
		}
		return &problem{status: http.StatusForbidden, issue: issue("forbidden", "",
			fmt.Sprintf("role %s may not do this; it needs one of: %s", role, strings.Join(names, ", ")))}
	}
	return nil
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// roleOf looks a token up by its hash, comparing with every configured hash in
// constant time.
func (s *server) roleOf(tok string) (Role, bool) {
	sum := sha256.Sum256([]byte(tok))
	var role Role
	found := 0
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.hash) == 1 {
			role, found = t.role, 1
		}
	}
	return role, found == 1
}

// statusWriter remembers the status for the log, and the problem a failure reported.
type statusWriter struct {
	http.ResponseWriter
	status  int
	wrote   bool
	problem string // no PHI: a code, or an internal error's text
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter records what the mux's own 404/405/redirect handlers would answer.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}

func (c *captureWriter) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}

// problemNote records for the log what went wrong, if w is ours (through a gate
// that is still open).
func problemNote(w http.ResponseWriter, note string) {
	if g, ok := w.(*gate); ok {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.closed {
			return
		}
		w = g.w
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.problem = note
	}
}

var _ http.Handler = (*server)(nil)
