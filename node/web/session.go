package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/medledger/medledger/consent"
)

// role is who a session is for.
type role int

const (
	rolePatient role = iota + 1
	roleOfficer
)

// session is a signed-in patient or privacy officer.
type session struct {
	role    role
	patient consent.PatientID // a patient's session: whose data it may see
	token   string            // an officer's session: the bearer token they signed in with
	csrf    string            // sent back on every POST (X-CSRF-Token)
	created time.Time
	seen    time.Time
	id      [32]byte // SHA-256 of the cookie's value

	mu     sync.Mutex
	writes []time.Time // consent changes submitted in the last minute
}

// maxWrites bounds the consent changes one session submits a minute.
const maxWrites = 10

// allowWrite counts a consent change against the session's allowance: false when it
// has made maxWrites in the last minute.
func (se *session) allowWrite(now time.Time) bool {
	se.mu.Lock()
	defer se.mu.Unlock()
	se.writes = slices.DeleteFunc(se.writes, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
	if len(se.writes) >= maxWrites {
		return false
	}
	se.writes = append(se.writes, now)
	return true
}

// cookie names and paths: a patient's and an officer's sessions are apart, each sent
// only to its own page.
var cookies = map[role]struct{ name, path string }{
	rolePatient: {"medledger_patient", PatientPath},
	roleOfficer: {"medledger_officer", OfficerPath},
}

// sessions holds the live sessions by the SHA-256 of their cookie's value (so the
// map holds no usable secret of the cookie), at most max of them.
type sessions struct {
	mu         sync.Mutex
	m          map[[32]byte]*session
	max        int
	idle, life time.Duration
	now        func() time.Time
}

func newSessions(cfg Config) *sessions {
	return &sessions{m: map[[32]byte]*session{}, max: cfg.MaxSessions, idle: cfg.IdleTimeout, life: cfg.MaxLife, now: cfg.Now}
}

// errBusy: the node holds as many sessions (or sign-ins) as it may.
var errBusy = &problem{status: http.StatusServiceUnavailable, code: "transient",
	msg: "This node has too many people signed in right now. Try again in a few minutes."}

// start creates a session for se.role and sets its cookie on w.
func (s *sessions) start(w http.ResponseWriter, r *http.Request, se *session) error {
	value, err := randomText(32)
	if err != nil {
		return err
	}
	if se.csrf, err = randomText(32); err != nil {
		return err
	}
	now := s.now()
	se.created, se.seen, se.id = now, now, sha256.Sum256([]byte(value))
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		s.sweep(now)
		if len(s.m) >= s.max {
			return errBusy
		}
	}
	s.m[se.id] = se
	c := cookies[se.role]
	http.SetCookie(w, &http.Cookie{Name: c.name, Value: value, Path: c.path, MaxAge: int(s.life / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return nil
}

// get returns the live session of role r's cookie in req, or nil.
func (s *sessions) get(req *http.Request, r role) *session {
	c, err := req.Cookie(cookies[r].name)
	if err != nil || c.Value == "" {
		return nil
	}
	id := sha256.Sum256([]byte(c.Value))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.m[id]
	if se == nil || se.role != r {
		return nil
	}
	if s.expired(se, now) {
		delete(s.m, id)
		return nil
	}
	se.seen = now
	return se
}

// end forgets se and clears its cookie.
func (s *sessions) end(w http.ResponseWriter, r *http.Request, se *session) {
	s.mu.Lock()
	delete(s.m, se.id)
	s.mu.Unlock()
	c := cookies[se.role]
	http.SetCookie(w, &http.Cookie{Name: c.name, Value: "", Path: c.path, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func (s *sessions) expired(se *session, now time.Time) bool {
	return now.Sub(se.seen) > s.idle || now.Sub(se.created) > s.life
}

// sweep drops expired sessions (s.mu held).
func (s *sessions) sweep(now time.Time) {
	for id, se := range s.m {
		if s.expired(se, now) {
			delete(s.m, id)
		}
	}
}

// randomText is n random bytes, base64url without padding.
func randomText(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// alive reports whether se is still a live session (not ended, not expired).
func (s *sessions) alive(se *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[se.id] == se && !s.expired(se, s.now())
}
