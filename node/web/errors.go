package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/api"
)

// problem is a refusal of the pages' own (sign-in, session, CSRF, bad input): a
// status and one OperationOutcome issue whose text the page shows as it is, so it is
// a plain sentence. Errors from the node go through api.WriteError instead.
type problem struct {
	status int
	code   string // FHIR issue type
	msg    string
}

func (p *problem) Error() string { return fmt.Sprintf("%d %s: %s", p.status, p.code, p.msg) }

func badInput(format string, args ...any) *problem {
	return &problem{status: http.StatusBadRequest, code: "value", msg: fmt.Sprintf(format, args...)}
}

// Refusals every page shares.
var (
	errSignedOut = &problem{status: http.StatusUnauthorized, code: "login",
		msg: "You are not signed in, or your session has ended. Sign in again."}
	errCrossSite = &problem{status: http.StatusForbidden, code: "security",
		msg: "This request did not come from this node's own page, so it was refused. Reload the page and try again."}
	errCSRF = &problem{status: http.StatusForbidden, code: "security",
		msg: "This request lacks the page's security token, so it was refused. Reload the page and try again."}
)

// access is who may call an endpoint.
type access int

const (
	anyone      access = iota // no session (the sign-in steps, the node's identity)
	patientOnly               // a patient's session
	officerOnly               // a privacy officer's session
)

// handler is an endpoint: it writes its answer or returns an error that fail answers.
// se is the caller's session (nil for anyone).
type handler func(w http.ResponseWriter, r *http.Request, se *session) error

// handle registers h at pattern for callers with access a, under the request deadline.
func (s *Server) handle(pattern string, a access, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		se, err := s.admit(r, a)
		if err == nil {
			err = h(w, r, se)
		}
		if err != nil {
			s.fail(w, r, err)
		}
	})
}

// admit checks a request before its handler: a POST must come from this origin; an
// endpoint for a role needs that role's live session; a POST in a session needs the
// session's CSRF token.
func (s *Server) admit(r *http.Request, a access) (*session, error) {
	if r.Method == http.MethodPost && !s.sameOrigin(r) {
		return nil, errCrossSite
	}
	if a == anyone {
		return nil, nil
	}
	se := s.sessions.get(r, roleOf(a))
	if se == nil {
		return nil, errSignedOut
	}
	if r.Method == http.MethodPost {
		tok := r.Header.Get(csrfHeader)
		if subtle.ConstantTimeCompare([]byte(tok), []byte(se.csrf)) != 1 {
			return nil, errCSRF
		}
	}
	return se, nil
}

func roleOf(a access) role {
	if a == officerOnly {
		return roleOfficer
	}
	return rolePatient
}

// csrfHeader carries the session's CSRF token on every POST the pages make.
const csrfHeader = "X-CSRF-Token"

// fail answers err: a problem of the pages' own as such, anything else as the API
// would (api.WriteError). A 500's cause goes to the log, never to the page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem
	if errors.As(err, &p) {
		writeFHIR(w, p.status, fhir.OperationOutcome(fhir.Issue{Severity: "error", Code: p.code, Message: p.msg}))
		return
	}
	if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() != nil {
		err = &api.Unavailable{Reason: "timeout", Detail: "the node did not answer in time", RetryAfter: 5 * time.Second}
	}
	rec := &statusWriter{ResponseWriter: w}
	api.WriteError(rec, err)
	if rec.status >= 500 {
		s.log.ErrorContext(r.Context(), "web: request failed", "err", err.Error())
	}
}

// writeFHIR and writeJSON write as the API does.
var (
	writeFHIR = api.WriteFHIR
	writeJSON = api.WriteJSON
)

// maxRequest bounds a JSON request body of the pages (a consent's choices, a search).
const maxRequest = 64 << 10

// readJSON decodes r's JSON body into v, strictly: one object, no unknown fields.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badInput("The request is not what this page sends (%s). Reload the page and try again.", jsonProblem(err))
	}
	if dec.More() {
		return badInput("The request holds more than one JSON value.")
	}
	return nil
}

// jsonProblem is a decoding error in a few words, quoting no input.
func jsonProblem(err error) string {
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return "too large"
	case errors.As(err, &ute):
		return "field " + ute.Field + " has the wrong type"
	}
	return "not valid JSON of the expected shape"
}
