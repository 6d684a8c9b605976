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
	addr    string   // the client address (api.ClientKey) that signed in
	done    chan struct{}
	once    sync.Once

	mu      sync.Mutex
	writes  []time.Time // consent changes submitted in the last minute
	streams int         // live event streams open on this session
}

// maxStreams bounds the live event streams one session holds open at once.
const maxStreams = 2

// errTooManyStreams: the session already has maxStreams streams open.
var errTooManyStreams = &problem{status: http.StatusTooManyRequests, code: "throttled",
	msg: "This session already has as many live streams open as it may. Close another tab of this page and try again."}

// openStream counts a live stream against the session's allowance; the caller calls
// closeStream when the stream ends.
func (se *session) openStream() error {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.streams >= maxStreams {
		return errTooManyStreams
	}
	se.streams++
	return nil
}

func (se *session) closeStream() {
	se.mu.Lock()
	defer se.mu.Unlock()
	se.streams--
}

// ended is closed once the session is ended, replaced or found expired.
func (se *session) ended() <-chan struct{} { return se.done }

func (se *session) finish() { se.once.Do(func() { close(se.done) }) }

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
// map holds no usable secret of the cookie). Patients and officers have pools of
// their own, each of at most max sessions, so anonymous patient sign-ins can never
// lock officers out; one client address holds at most maxPerAddress patient
// sessions, and one patient key one session (a new sign-in replaces the last).
type sessions struct {
	mu         sync.Mutex
	m          map[[32]byte]*session
	count      map[role]int
	byAddr     map[string]int                 // patient sessions by client address
	byPatient  map[consent.PatientID]*session // each patient's one session
	max        int
	idle, life time.Duration
	now        func() time.Time
	secure     bool // cookies are Secure whatever the request (an https public origin)
}

// maxPerAddress bounds the live patient sessions signed in from one client address.
const maxPerAddress = 32

func newSessions(cfg Config) *sessions {
	return &sessions{m: map[[32]byte]*session{}, count: map[role]int{}, byAddr: map[string]int{},
		byPatient: map[consent.PatientID]*session{},
		max:       cfg.MaxSessions, idle: cfg.IdleTimeout, life: cfg.MaxLife, now: cfg.Now,
		secure: secureOrigin(cfg.PublicOrigin)}
}

// errAddressBusy: this client address holds as many patient sessions as it may.
var errAddressBusy = &problem{status: http.StatusTooManyRequests, code: "throttled",
	msg: "Too many people are signed in from this address right now. Sign out elsewhere, or try again later."}

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
	se.done = make(chan struct{})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.room(se, now); err != nil {
		return err
	}
	s.add(se)
	c := cookies[se.role]
	http.SetCookie(w, &http.Cookie{Name: c.name, Value: value, Path: c.path, MaxAge: int(s.life / time.Second),
		HttpOnly: true, Secure: s.secure || r.TLS != nil, SameSite: http.SameSiteStrictMode})
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
		s.remove(se)
		return nil
	}
	se.seen = now
	return se
}

// end forgets se and clears its cookie.
func (s *sessions) end(w http.ResponseWriter, r *http.Request, se *session) {
	s.mu.Lock()
	s.remove(se)
	s.mu.Unlock()
	c := cookies[se.role]
	http.SetCookie(w, &http.Cookie{Name: c.name, Value: "", Path: c.path, MaxAge: -1,
		HttpOnly: true, Secure: s.secure || r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func (s *sessions) expired(se *session, now time.Time) bool {
	return now.Sub(se.seen) > s.idle || now.Sub(se.created) > s.life
}

// sweep drops expired sessions (s.mu held).
func (s *sessions) sweep(now time.Time) {
	for _, se := range s.m {
		if s.expired(se, now) {
			s.remove(se)
		}
	}
}

// room makes room for se (s.mu held): a patient's earlier session ends; then se's
// pool and, for a patient, its address must be under their limits (after expired
// sessions are swept).
func (s *sessions) room(se *session, now time.Time) error {
	if old := s.byPatient[se.patient]; se.role == rolePatient && old != nil {
		s.remove(old)
	}
	full := func() bool {
		return s.count[se.role] >= s.max || (se.role == rolePatient && s.byAddr[se.addr] >= maxPerAddress)
	}
	if full() {
		s.sweep(now)
	}
	switch {
	case s.count[se.role] >= s.max:
		return errBusy
	case se.role == rolePatient && s.byAddr[se.addr] >= maxPerAddress:
		return errAddressBusy
	}
	return nil
}

// add holds se (s.mu held).
func (s *sessions) add(se *session) {
	s.m[se.id] = se
	s.count[se.role]++
	if se.role == rolePatient {
		s.byAddr[se.addr]++
		s.byPatient[se.patient] = se
	}
}

// remove forgets se and ends its streams (s.mu held); a session not held is left.
func (s *sessions) remove(se *session) {
	if s.m[se.id] != se {
		return
	}
	delete(s.m, se.id)
	s.count[se.role]--
	if se.role == rolePatient {
		if s.byAddr[se.addr]--; s.byAddr[se.addr] <= 0 {
			delete(s.byAddr, se.addr)
		}
		if s.byPatient[se.patient] == se {
			delete(s.byPatient, se.patient)
		}
	}
	se.finish()
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
