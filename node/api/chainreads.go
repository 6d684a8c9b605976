package api

import (
	"context"
	"math"
	"net/http"
	"strconv"

	"github.com/medledger/medledger/consent"
)

// Reads of chain state in the chain's own JSON form, for the CLI and other tools that
// work with the chain's types rather than FHIR. They are role-scoped like their FHIR
// counterparts: CometBFT's RPC does not answer them (node/chain: PublicQuery).

// LogEntries is what a Backend implements to serve access-log entries with their leaf
// bytes (GET /audit/log/{index}); a Backend without it answers 501.
type LogEntries interface {
	// LogEntry is the access log's event at index with its leaf bytes, from committed
	// state (ErrNotFound beyond the log).
	LogEntry(ctx context.Context, index uint64) (*consent.LogEntry, error)
}

// consentList is GET /consents?patient=ID: the patient's consents as the chain holds
// them (consent.Consent, JSON), oldest first; none: [].
func (s *server) consentList(w http.ResponseWriter, r *http.Request) error {
	if _, err := auditQuery(r, []string{"patient"}, nil); err != nil {
		return err
	}
	patient, err := patientParam(r)
	if err != nil {
		return err
	}
	cons, err := s.b.Consents(r.Context(), patient)
	if err != nil {
		return err
	}
	if cons == nil {
		cons = []consent.Consent{}
	}
	return writeJSON(w, http.StatusOK, cons)
}

// logEntry is GET /audit/log/{index}: the access log's event at index with its leaf
// bytes (consent.LogEntry), which a client checks against a log root the validators
// signed, with the inclusion proof CometBFT's RPC serves to anyone
// (auditor.Verifier.VerifyEvent).
func (s *server) logEntry(w http.ResponseWriter, r *http.Request) error {
	idx, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil || idx == math.MaxUint64 {
		return badRequest("value", "", "'%s' is not an access-log index", consent.Truncate(r.PathValue("index"), 40))
	}
	if _, err := auditQuery(r, nil, nil); err != nil {
		return err
	}
	src, ok := s.b.(LogEntries)
	if !ok {
		return &problem{status: http.StatusNotImplemented, issue: issue("not-supported", "", "this node does not serve access-log entries")}
	}
	e, err := src.LogEntry(r.Context(), idx)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}
