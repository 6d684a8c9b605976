package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
)

// problem is an error the API answers with a status and an OperationOutcome.
type problem struct {
	status int
	issue  fhir.Issue   // the first (usually only) issue
	more   []fhir.Issue // further issues (a FHIR validation error's)
	// details, when set, becomes issue[0].details: a code clients can branch on (a
	// denial reason, a chain rejection code), as coding and text.
	details string
	header  http.Header // extra response headers (WWW-Authenticate, …)
}

func (p *problem) Error() string {
	return fmt.Sprintf("%d %s: %s", p.status, p.issue.Code, p.issue.Message)
}

// issue is an error issue of type code at path (FHIRPath, or "").
func issue(code, path, msg string) fhir.Issue {
	return fhir.Issue{Severity: "error", Code: code, Path: path, Message: msg}
}

func badRequest(code, path, format string, args ...any) *problem {
	return &problem{status: http.StatusBadRequest, issue: issue(code, path, fmt.Sprintf(format, args...))}
}

// detailsSystem names the codes in issue details: consent denial reasons
// (consent.ReasonRevoked, …) and chain rejection codes (consent.Code names).
const detailsSystem = "urn:medledger:code"

// codePattern is what the API puts in a FHIR code (a subset of what R4 allows).
var codePattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// rejections answers each code the chain can refuse a tx with: HTTP status and
// OperationOutcome issue type. A code missing here (unknown-query) means the node
// asked the chain something it should not have: 500.
var rejections = map[consent.Code]struct {
	status int
	issue  string
}{
	consent.CodeDecode:          {http.StatusBadRequest, "structure"},
	consent.CodeSignature:       {http.StatusBadRequest, "security"},
	consent.CodeChainID:         {http.StatusBadRequest, "invalid"},
	consent.CodeExpired:         {http.StatusBadRequest, "business-rule"}, // prepare and sign again
	consent.CodeReplay:          {http.StatusConflict, "duplicate"},
	consent.CodeUnauthorized:    {http.StatusForbidden, "forbidden"},
	consent.CodeUnknownHospital: {http.StatusUnprocessableEntity, "business-rule"},
	consent.CodeUnknownRecord:   {http.StatusNotFound, "not-found"},
	consent.CodeUnknownConsent:  {http.StatusNotFound, "not-found"},
	consent.CodeUnknownGrant:    {http.StatusNotFound, "not-found"},
	consent.CodeInvalid:         {http.StatusBadRequest, "invalid"},
	consent.CodeDuplicate:       {http.StatusConflict, "duplicate"},
	consent.CodeErased:          {http.StatusGone, "deleted"},
	consent.CodeNotGranted:      {http.StatusForbidden, "forbidden"},
	consent.CodeNoCustody:       {http.StatusConflict, "business-rule"},
	consent.CodeNotFound:        {http.StatusNotFound, "not-found"},
}

// problemOf maps an error to its answer. Anything unrecognised is a 500 whose body
// says nothing about the cause (the log has it).
func problemOf(err error) *problem {
	var (
		p   *problem
		me  *mapError
		mbe *http.MaxBytesError
		ve  *fhir.ValidationError
		d   *Denied
		u   *Unavailable
		rej *consent.Rejection
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &me):
		return &problem{status: http.StatusBadRequest, issue: me.issue()}
	case errors.As(err, &mbe):
		return &problem{status: http.StatusRequestEntityTooLarge, issue: issue("too-costly", "",
			"the body is larger than this node accepts ("+strconv.FormatInt(mbe.Limit, 10)+" bytes)")}
	case errors.As(err, &ve):
		status := http.StatusBadRequest
		if errors.Is(err, fhir.ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		issues := fhir.OutcomeFromError(ve)
		if len(issues) == 0 {
			issues = []fhir.Issue{issue("invalid", "", ve.Error())}
		}
		return &problem{status: status, issue: issues[0], more: issues[1:]}
	case errors.As(err, &d) && d.Reason == consent.ReasonNotYetAvailable:
		return notYetAvailable(d)
	case errors.As(err, &d):
		msg := d.Error()
		if d.Grant != "" {
			msg += "; decision " + string(d.Grant) + " on the chain"
		}
		return &problem{status: http.StatusForbidden, issue: issue("forbidden", "", msg), details: d.Reason}
	case errors.As(err, &u):
		secs := max(1, int(u.RetryAfter.Round(time.Second)/time.Second))
		return &problem{status: http.StatusServiceUnavailable, issue: issue("transient", "", u.Error()), details: u.Reason,
			header: http.Header{"Retry-After": {strconv.Itoa(secs)}}}
	case errors.As(err, &rej):
		ans, ok := rejections[rej.Code]
		if !ok {
			return internal
		}
		return &problem{status: ans.status, issue: issue(ans.issue, "", "the chain refused the tx: "+rej.Log), details: rej.Code.String()}
	case errors.Is(err, ErrNotFound):
		return &problem{status: http.StatusNotFound, issue: issue("not-found", "", "not found")}
	case errors.Is(err, context.DeadlineExceeded):
		return &problem{status: http.StatusGatewayTimeout, issue: issue("timeout", "", "the node did not finish in time; try again")}
	case errors.Is(err, context.Canceled):
		return &problem{status: http.StatusServiceUnavailable, issue: issue("transient", "", "the request was cancelled")}
	}
	return internal
}

// notYetAvailableRetry is when a client may ask again for a record not yet available:
// custodians accept custody within a few blocks of its registration.
const notYetAvailableRetry = 5 * time.Second

// notYetAvailable answers a denial because the record is not yet available (fewer
// than its threshold of custodians have accepted custody): 503 with Retry-After, an
// OperationOutcome that says so, the reason as details. The denial is on the chain;
// asking again after the custodians have accepted makes a new request.
func notYetAvailable(d *Denied) *problem {
	msg := fmt.Sprintf("record %s is not yet available: fewer than its threshold of custodians have accepted custody of it, so no key can be released yet; try again later", d.Record)
	if d.Grant != "" {
		msg += "; decision " + string(d.Grant) + " on the chain"
	}
	return &problem{status: http.StatusServiceUnavailable, issue: issue("transient", "", msg), details: d.Reason,
		header: http.Header{"Retry-After": {strconv.Itoa(int(notYetAvailableRetry / time.Second))}}}
}

var internal = &problem{status: http.StatusInternalServerError, issue: issue("exception", "", "internal error; the node's log has the cause")}

// fail answers err. The log gets the problem's code (never a message that may quote
// input, which could be PHI), or for a 500 the error itself.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problemOf(err)
	note := p.issue.Code
	if p.details != "" {
		note += ": " + p.details
	}
	if p.status >= 500 {
		note = err.Error()
	}
	problemNote(w, note)
	writeProblem(w, p)
}

// writeProblem writes p as an OperationOutcome.
func writeProblem(w http.ResponseWriter, p *problem) {
	for k, v := range p.header {
		w.Header()[k] = v
	}
	writeFHIR(w, p.status, p.outcome())
}

// outcome is p as a FHIR OperationOutcome (built by fhir.OperationOutcome; details
// added to the first issue).
func (p *problem) outcome() []byte {
	b := fhir.OperationOutcome(append([]fhir.Issue{p.issue}, p.more...)...)
	if p.details == "" {
		return b
	}
	var oo struct {
		ResourceType string                       `json:"resourceType"`
		Issue        []map[string]json.RawMessage `json:"issue"`
	}
	if err := json.Unmarshal(b, &oo); err != nil || len(oo.Issue) == 0 {
		return b
	}
	cc := fhir.CodeableConcept{Text: strings.ToValidUTF8(p.details, "?")}
	if codePattern.MatchString(p.details) {
		cc.Coding = []fhir.Coding{{System: detailsSystem, Code: p.details}}
	}
	details, err := json.Marshal(cc)
	if err != nil {
		return b
	}
	oo.Issue[0]["details"] = details
	if out, err := json.Marshal(oo); err == nil {
		return out
	}
	return b
}

// writeFHIR writes a FHIR JSON body.
func writeFHIR(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body) // an error here is the client gone: nothing to do
}

// writeResource marshals v and writes it as FHIR JSON.
func writeResource(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("api: encode %T: %w", v, err)
	}
	writeFHIR(w, status, b)
	return nil
}
