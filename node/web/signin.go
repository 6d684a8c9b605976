package web

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
)

// A patient signs in by signing a one-time challenge with their key:
//
//	POST /app/session/challenge            → {challenge}
//	POST /app/session {patient, challenge, signature}
//
// where the signature is Ed25519 over SignInMessage(chain ID, origin, challenge). The
// message is text that names what it is for, so a signature over it can never pass
// for a tx (whose body is canonical CBOR) or a sign-in elsewhere.

// SignInMessage is the exact text a patient signs to sign in at origin (scheme://host
// of the pages as the browser reached them: Config.PublicOrigin when set) on chain:
// the page builds it the same way, from location.origin.
func SignInMessage(chainID, origin, challenge string) []byte {
	return []byte("medledger patient sign-in\nchain: " + chainID + "\norigin: " + origin + "\nchallenge: " + challenge + "\n")
}

// challengeTTL is how long a challenge may be answered.
const challengeTTL = 2 * time.Minute

// maxChallengesPerAddress bounds the unanswered challenges one client address holds,
// so one address cannot fill the table.
const maxChallengesPerAddress = 4

// Sign-in challenges one client address may ask for: signInRate a minute, in bursts
// of signInBurst (a limiter of the pages' own, apart from the consent operations').
const (
	signInRate  = 10
	signInBurst = 20
)

// challenges are the sign-in challenges handed out and not yet answered, each usable
// once, at most max at a time and maxChallengesPerAddress per client address.
type challenges struct {
	mu     sync.Mutex
	m      map[string]issued // by hex challenge
	byAddr map[string]int
	max    int
	now    func() time.Time
}

// issued is a challenge's expiry and the client address it was issued to.
type issued struct {
	exp  time.Time
	addr string
}

func newChallenges(cfg Config) *challenges {
	return &challenges{m: map[string]issued{}, byAddr: map[string]int{}, max: cfg.MaxSessions, now: cfg.Now}
}

// errChallengesBusy: the address holds as many unanswered challenges as it may.
var errChallengesBusy = &problem{status: http.StatusTooManyRequests, code: "throttled",
	msg: "Too many sign-ins are under way from this address. Finish one, or try again in two minutes."}

// issue returns a fresh challenge for the client at addr.
func (c *challenges) issue(addr string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	ch := hex.EncodeToString(b)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max || c.byAddr[addr] >= maxChallengesPerAddress {
		c.sweep(now)
	}
	switch {
	case c.byAddr[addr] >= maxChallengesPerAddress:
		return "", errChallengesBusy
	case len(c.m) >= c.max:
		return "", errBusy
	}
	c.m[ch] = issued{exp: now.Add(challengeTTL), addr: addr}
	c.byAddr[addr]++
	return ch, nil
}

// sweep drops expired challenges (c.mu held).
func (c *challenges) sweep(now time.Time) {
	for k, is := range c.m {
		if now.After(is.exp) {
			c.drop(k, is)
		}
	}
}

// drop forgets challenge k (c.mu held).
func (c *challenges) drop(k string, is issued) {
	delete(c.m, k)
	if c.byAddr[is.addr]--; c.byAddr[is.addr] <= 0 {
		delete(c.byAddr, is.addr)
	}
}

// take uses up ch: true if it was issued here and has not expired or been used.
func (c *challenges) take(ch string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	is, ok := c.m[ch]
	if ok {
		c.drop(ch, is)
	}
	return ok && !c.now().After(is.exp)
}

// info is GET /app/api/info: this node's hospital and chain (what the sign-in
// message names).
func (s *Server) info(w http.ResponseWriter, r *http.Request, _ *session) error {
	return writeJSON(w, http.StatusOK, s.b.Identity())
}

// challenge is POST /app/session/challenge: charged against the address's sign-in
// allowance, and refused while the address holds maxChallengesPerAddress unanswered.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, _ *session) error {
	if err := s.signInRate.Client(r); err != nil {
		return err
	}
	ch, err := s.signins.issue(api.ClientKey(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"challenge": ch})
}

type signIn struct {
	Patient   consent.PatientID `json:"patient"`
	Challenge string            `json:"challenge"`
	Signature string            `json:"signature"` // base64
}

var (
	patientPattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	challengePattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	idPattern        = regexp.MustCompile(`^[0-9a-f]{32}$`) // consent.ConsentID, GrantID
)

var errBadSignIn = &problem{status: http.StatusUnauthorized, code: "security",
	msg: "The sign-in was not accepted: the key did not sign this node's challenge. Try again; if it keeps failing, restore your key from its backup."}

// patientSignIn is POST /app/session: the challenge signed with the patient's key
// starts a patient session.
func (s *Server) patientSignIn(w http.ResponseWriter, r *http.Request, _ *session) error {
	var in signIn
	if err := readJSON(w, r, &in); err != nil {
		return err
	}
	if !patientPattern.MatchString(string(in.Patient)) || !challengePattern.MatchString(in.Challenge) {
		return badInput("The sign-in names no valid patient key or challenge.")
	}
	sig, err := base64.StdEncoding.DecodeString(in.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errBadSignIn
	}
	if !s.signins.take(in.Challenge) {
		return &problem{status: http.StatusUnauthorized, code: "security",
			msg: "The sign-in challenge has expired or was already used. Try again."}
	}
	pub, _ := hex.DecodeString(string(in.Patient)) // checked above
	if !ed25519.Verify(pub, SignInMessage(s.b.Identity().ChainID, s.origin(r), in.Challenge), sig) {
		return errBadSignIn
	}
	se := &session{role: rolePatient, patient: in.Patient, addr: api.ClientKey(r)}
	if err := s.sessions.start(w, r, se); err != nil {
		return err
	}
	return s.whoami(w, r, se)
}

type officerIn struct {
	Token string `json:"token"`
}

// officerSignIn is POST /audit-app/session {token}: a privacy officer's bearer token
// starts an officer session, which holds the token for the API calls the page makes.
func (s *Server) officerSignIn(w http.ResponseWriter, r *http.Request, _ *session) error {
	var in officerIn
	if err := readJSON(w, r, &in); err != nil {
		return err
	}
	if !s.isOfficer(in.Token) {
		return &problem{status: http.StatusUnauthorized, code: "login",
			msg: "This token is not a privacy officer's token on this node."}
	}
	se := &session{role: roleOfficer, token: in.Token}
	if err := s.sessions.start(w, r, se); err != nil {
		return err
	}
	return s.whoami(w, r, se)
}

// isOfficer reports whether tok is one of the configured privacy-officer tokens,
// comparing its hash with every configured hash in constant time.
func (s *Server) isOfficer(tok string) bool {
	if tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	want := hex.EncodeToString(sum[:])
	found := 0
	for _, t := range s.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(want), []byte(t.SHA256)) == 1 && t.Role == api.RolePrivacyOfficer {
			found = 1
		}
	}
	return found == 1
}

// whoAmI is what a page learns of its session.
type whoAmI struct {
	Patient  consent.PatientID `json:"patient,omitempty"`
	CSRF     string            `json:"csrf,omitempty"` // "" when not signed in
	Identity api.Identity      `json:"node"`
}

// whoami answers what a page learns of its session: its patient (if a patient's),
// its CSRF token and this node.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request, se *session) error {
	return writeJSON(w, http.StatusOK, whoAmI{Patient: se.patient, CSRF: se.csrf, Identity: s.b.Identity()})
}

// patientSession is GET /app/session: whoami for a patient's session, else an empty
// answer (no session is not an error: the page then offers to sign in).
func (s *Server) patientSession(w http.ResponseWriter, r *http.Request, _ *session) error {
	return s.sessionOf(w, r, rolePatient)
}

// officerSession is GET /audit-app/session, as patientSession for an officer.
func (s *Server) officerSession(w http.ResponseWriter, r *http.Request, _ *session) error {
	return s.sessionOf(w, r, roleOfficer)
}

func (s *Server) sessionOf(w http.ResponseWriter, r *http.Request, ro role) error {
	se := s.sessions.get(r, ro)
	if se == nil {
		return writeJSON(w, http.StatusOK, whoAmI{Identity: s.b.Identity()})
	}
	return s.whoami(w, r, se)
}

// signOut is POST /app/session/end and /audit-app/session/end.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request, se *session) error {
	s.sessions.end(w, r, se)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
