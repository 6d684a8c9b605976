package web

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/medledger/medledger/node/api"
)

// Config configures the pages.
type Config struct {
	// API is the node's API handler: the officer's page calls it with the officer's
	// token (required).
	API http.Handler
	// Tokens are the API's tokens (by hash); an officer signs in with one whose role
	// is privacy-officer.
	Tokens []api.Token
	Logger *slog.Logger // default: discard
	// Rate are the limits a patient's consent changes through the page count against,
	// per client address and per patient, as the API's anonymous consent operations
	// do (beside the page's own per-session limit); the node passes the API's own, so
	// both spend the same allowances. Default: limits of the pages' own, with the
	// API's default rates.
	Rate *api.RateLimits
	// RPC is the node's CometBFT RPC address (tcp://host:port) and GenesisFile its
	// genesis.json: with both, an event the officer opens has its inclusion proof
	// checked against headers the genesis validators signed; without, the page says
	// it could not be checked.
	RPC, GenesisFile string
	// IdleTimeout ends a session unused for this long (default 30 min); MaxLife ends
	// any session this long after sign-in (default 12 h).
	IdleTimeout, MaxLife time.Duration
	// MaxSessions bounds the patients' sessions, the officers' sessions and the
	// sign-in challenges held at once, each apart (default 10,000): past it a sign-in
	// is refused (503) until some expire.
	MaxSessions int
	// RequestTimeout bounds a request other than the live event stream (default 30 s).
	RequestTimeout time.Duration
	// Heartbeat is how often the patient's live event stream sends a comment, and
	// how often a live stream looks whether its session has ended (default 15 s).
	Heartbeat time.Duration
	// Now is the sessions' clock (default time.Now).
	Now func() time.Time
	// PublicOrigin is scheme://host[:port] of the pages as browsers reach them, for a
	// node behind a reverse proxy (which terminates TLS): when set, a POST's Origin
	// must be it, the patient signs in over it (SignInMessage), and cookies are Secure
	// if it is https. Unset: the origin is the request's own (scheme from r.TLS, host
	// from r.Host). Validate puts it in the browser's form (ParseOrigin).
	PublicOrigin string
}

// Defaults of Config.
const (
	DefaultIdleTimeout    = 30 * time.Minute
	DefaultMaxLife        = 12 * time.Hour
	DefaultMaxSessions    = 10000
	DefaultRequestTimeout = 30 * time.Second
	DefaultHeartbeat      = 15 * time.Second
)

// Validate fills defaults and rejects a missing API handler, a malformed public
// origin or a malformed token hash.
func (c *Config) Validate() error {
	if c.API == nil {
		return errors.New("web: the API handler is required (the officer's page calls it)")
	}
	if c.PublicOrigin != "" {
		o, err := ParseOrigin(c.PublicOrigin)
		if err != nil {
			return fmt.Errorf("web: public origin %q: %w", c.PublicOrigin, err)
		}
		c.PublicOrigin = o
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	fill(&c.IdleTimeout, DefaultIdleTimeout)
	fill(&c.MaxLife, DefaultMaxLife)
	fill(&c.RequestTimeout, DefaultRequestTimeout)
	fill(&c.Heartbeat, DefaultHeartbeat)
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rate == nil {
		rate, err := api.NewRateLimits(api.Limits{}, c.Now)
		if err != nil {
			return err
		}
		c.Rate = rate
	}
	for i, t := range c.Tokens {
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
			return fmt.Errorf("web: token %d: SHA256 must be 64 hex digits (api.HashToken of the token)", i)
		}
	}
	return nil
}

func fill(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Server is the pages' http.Handler: /app/ and /audit-app/.
type Server struct {
	b        api.Backend
	cfg      Config
	log      *slog.Logger
	mux      *http.ServeMux
	sessions *sessions
	signins  *challenges
	// signInRate is the per-address allowance of sign-in challenges.
	signInRate *api.RateLimits
	proofs     *verifier
}

// New returns the pages over b, the node the API serves.
func New(b api.Backend, cfg Config) (*Server, error) {
	if b == nil {
		return nil, errors.New("web: nil Backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	signInRate, err := api.NewRateLimits(api.Limits{ClientRate: signInRate, ClientBurst: signInBurst}, cfg.Now)
	if err != nil {
		return nil, err
	}
	s := &Server{b: b, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(),
		sessions: newSessions(cfg), signins: newChallenges(cfg), signInRate: signInRate,
		proofs: &verifier{rpc: cfg.RPC, genesis: cfg.GenesisFile}}
	s.routes()
	return s, nil
}

// Mount serves the pages on mux under /app/ and /audit-app/.
func Mount(mux *http.ServeMux, b api.Backend, cfg Config) error {
	s, err := New(b, cfg)
	if err != nil {
		return err
	}
	mux.Handle("/app/", s)
	mux.Handle("/audit-app/", s)
	return nil
}

// The URL paths of the two pages.
const (
	PatientPath = "/app/"
	OfficerPath = "/audit-app/"
)

// routes: the pages' assets, sign-in and session endpoints, and their data.
func (s *Server) routes() {
	s.assets()
	// The patient's page (patient.go, signin.go).
	s.handle("GET /app/api/info", anyone, s.info)
	s.handle("POST /app/session/challenge", anyone, s.challenge)
	s.handle("POST /app/session", anyone, s.patientSignIn)
	s.handle("GET /app/session", anyone, s.patientSession)
	s.handle("POST /app/session/end", patientOnly, s.signOut)
	s.handle("GET /app/api/records", patientOnly, s.records)
	s.handle("GET /app/api/consents", patientOnly, s.consents)
	s.handle("GET /app/api/vocabulary", patientOnly, s.vocabulary)
	s.handle("GET /app/api/activity", patientOnly, s.activity)
	s.handle("POST /app/api/grant/prepare", patientOnly, s.prepareGrant)
	s.handle("POST /app/api/revoke/prepare", patientOnly, s.prepareRevoke)
	s.handle("POST /app/api/submit", patientOnly, s.submit)
	s.handle("GET /app/api/accounting", patientOnly, s.accounting)
	s.handleStream("GET /app/api/events", patientOnly, s.events)
	// The privacy officer's page (officer.go).
	s.handle("POST /audit-app/session", anyone, s.officerSignIn)
	s.handle("GET /audit-app/session", anyone, s.officerSession)
	s.handle("POST /audit-app/session/end", officerOnly, s.signOut)
	s.handle("POST /audit-app/api/events", officerOnly, s.officerEvents)
	s.handle("GET /audit-app/api/hospitals", officerOnly, s.hospitals)
	s.handle("GET /audit-app/api/emergencies", officerOnly, s.officerEmergencies)
	s.handle("POST /audit-app/api/review", officerOnly, s.officerReview)
	s.handle("POST /audit-app/api/export", officerOnly, s.officerExport)
	s.handle("POST /audit-app/api/accounting", officerOnly, s.officerAccounting)
	s.handle("POST /audit-app/api/entry", officerOnly, s.officerEntry)
	s.handleStream("GET /audit-app/api/stream", officerOnly, s.officerStream)
}

// ServeHTTP adds the security headers to every answer, answers an unknown path with
// an OperationOutcome, and logs one line per request: method, route pattern, status,
// duration — never a query, a body, a cookie or a token.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	securityHeaders(sw.Header())
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		s.fail(sw, r, &problem{status: http.StatusNotFound, code: "not-found", msg: "There is no such page or endpoint here."})
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	level := slog.LevelInfo
	if sw.status >= 500 {
		level = slog.LevelError
	}
	if pattern == "" {
		pattern = "unrouted"
	}
	s.log.LogAttrs(r.Context(), level, "web: request", slog.String("method", r.Method), slog.String("route", pattern),
		slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)))
}

// securityHeaders: a strict Content-Security-Policy (this origin only, no inline
// script or style, no framing), no caching, no sniffing, no referrer.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// statusWriter remembers the status for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ http.Handler = (*Server)(nil)
