package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"time"
)

// Role is what a bearer token may do.
type Role string

// Roles.
const (
	RoleClinician      Role = "clinician"       // ingests and reads records, breaks the glass
	RolePrivacyOfficer Role = "privacy-officer" // reads record metadata, consents and the access log; reviews emergencies
	RoleAdmin          Role = "admin"           // ingests records, reads metadata, consents and the access log
)

// Token is a bearer token a node accepts, by the hex SHA-256 of the token: config
// holds hashes, never tokens.
type Token struct {
	Role   Role
	SHA256 string // HashToken(token)
}

// Config configures the API.
type Config struct {
	Tokens  []Token
	Logger  *slog.Logger // default: discard
	MaxBody int64        // bytes of an ingested Bundle; default 64 MiB
	// Heartbeat is how often GET /audit/stream sends a comment to keep an idle
	// connection (and proxies on the way) open; default 15 s.
	Heartbeat time.Duration
	// Limits bound time, connections and anonymous consent operations (zero: the
	// defaults). The handler applies the deadlines and rates; serve it with
	// NewServer for the connection limit and the http.Server's timeouts.
	Limits Limits
	// Now is the rate limiters' clock (default time.Now; tests inject one).
	Now func() time.Time
	// Rate, if set, are the rate limits to charge instead of ones of the API's own
	// from Limits and Now: the node shares one RateLimits with its web pages.
	Rate *RateLimits
}

// Defaults of Config.
const (
	DefaultMaxBody   = 64 << 20 // fhir.Limits' own default
	DefaultHeartbeat = 15 * time.Second
)

// Validate fills defaults and rejects an unknown role, a malformed hash or a hash
// given twice.
func (c *Config) Validate() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, t := range c.Tokens {
		if !slices.Contains(roles, t.Role) {
			return fmt.Errorf("api: token %d: role %q is not one of clinician, privacy-officer, admin", i, t.Role)
		}
		if !sha256Pattern.MatchString(t.SHA256) {
			return fmt.Errorf("api: token %d: SHA256 must be 64 lowercase hex digits (api.HashToken of the token)", i)
		}
		if seen[t.SHA256] {
			return fmt.Errorf("api: token %d: the same token is configured twice", i)
		}
		seen[t.SHA256] = true
	}
	return nil
}

var roles = []Role{RoleClinician, RolePrivacyOfficer, RoleAdmin}

var (
	sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// HashToken is the hex SHA-256 of a bearer token, as Token.SHA256 holds it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a fresh bearer token: 32 random bytes, base64url without padding.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("api: token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// New returns the node's HTTP API over b. Serve it with the http.Server and listener
// of NewServer (timeouts, connection limit); the handler answers every error with a
// FHIR OperationOutcome, and every request that runs out of time with 503.
func New(b Backend, cfg Config) (http.Handler, error) {
	if b == nil {
		return nil, errors.New("api: nil Backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &server{
		b:       b,
		id:      b.Identity(),
		log:     cfg.Logger,
		maxBody: cfg.MaxBody,
		limits:  cfg.Limits,
		rate:    cfg.Rate,
		mux:     http.NewServeMux(),
		started: time.Now().UTC().Truncate(time.Second),
	}
	if s.rate == nil {
		s.rate = newRateLimits(cfg.Limits, cfg.Now)
	}
	for _, t := range cfg.Tokens {
		h, _ := hex.DecodeString(t.SHA256) // checked by Validate
		s.tokens = append(s.tokens, token{role: t.Role, hash: h})
	}
	s.routes(cfg)
	return s, nil
}

// routes is the API: pattern, who may call it, handler. A nil role list needs no
// token (the metadata, health, and the consent operations, which the patient's
// signature authorises).
func (s *server) routes(cfg Config) {
	anyStaff := []Role{RoleClinician, RolePrivacyOfficer, RoleAdmin}
	auditors := []Role{RolePrivacyOfficer, RoleAdmin}
	s.route("GET /fhir/metadata", nil, s.metadata)
	s.route("GET /healthz", nil, s.healthz)
	s.routeWithin("POST /fhir/Bundle", []Role{RoleClinician, RoleAdmin}, cfg.Limits.IngestTimeout, s.ingest)
	s.route("GET /fhir/DocumentReference", anyStaff, s.searchRecords)
	s.route("GET /fhir/DocumentReference/{id}", anyStaff, s.getRecord)
	s.route("GET /records/{id}", []Role{RoleClinician}, s.read)
	s.route("POST /records/{id}/$emergency-access", []Role{RoleClinician}, s.emergency)
	s.route("GET /records/{id}/custody", anyStaff, s.custody) // custody.go
	s.route("GET /fhir/Consent", anyStaff, s.searchConsents)
	s.route("GET /fhir/Consent/{id}", anyStaff, s.getConsent)
	s.route("POST /fhir/Consent/$prepare", nil, s.prepareGrant)
	s.route("POST /fhir/Consent", nil, s.grant)
	s.route("POST /fhir/Consent/{id}/$revoke-prepare", nil, s.prepareRevoke)
	s.route("POST /fhir/Consent/{id}/$revoke", nil, s.revoke)
	s.route("GET /tx/{hash}", nil, s.txStatus)
	s.route("GET /fhir/AuditEvent", auditors, s.searchAuditEvents)
	s.route("GET /fhir/AuditEvent/{id}", auditors, s.getAuditEvent)
	s.route("GET /audit/events", auditors, s.auditEvents)
	s.route("GET /audit/accounting", auditors, s.accounting)
	// The live stream is for any staff role: a patient portal proxies it for the
	// patient, filtered to their own ID.
	s.routeWithin("GET /audit/stream", anyStaff, 0, s.stream(cfg.Heartbeat)) // no deadline: a stream lasts
	s.route("GET /audit/emergencies", auditors, s.emergencies)
	s.route("GET /consents", anyStaff, s.consentList)       // chainreads.go
	s.route("GET /audit/log/{index}", auditors, s.logEntry) // chainreads.go
	s.route("POST /audit/emergencies/{grant}/$review", []Role{RolePrivacyOfficer}, s.reviewEmergency)
}
