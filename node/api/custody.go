package api

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/medledger/medledger/consent"
)

// CustodyReader is what a Backend implements to serve a record's custody (GET
// /records/{id}/custody); a Backend without it answers 501.
type CustodyReader interface {
	// Custody is a record's custody from committed state (consent.Custody): its
	// custodians and threshold, who accepted custody, whether it is available, and for
	// an erased record who attested the erasure and who has not (ErrNotFound if no
	// such record).
	Custody(ctx context.Context, id consent.RecordID) (*consent.CustodyStatus, error)
}

// custody is GET /records/{id}/custody: the record's custody as the chain holds it
// (consent.CustodyStatus, JSON) — what a privacy officer checks to see which
// custodians have not attested an erasure.
func (s *server) custody(w http.ResponseWriter, r *http.Request) error {
	id, err := recordParam(r)
	if err != nil {
		return err
	}
	if _, err := auditQuery(r, nil, nil); err != nil {
		return err
	}
	src, ok := s.b.(CustodyReader)
	if !ok {
		return &problem{status: http.StatusNotImplemented, issue: issue("not-supported", "", "this node does not serve custody")}
	}
	st, err := src.Custody(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

// Custody is the custody an ingesting hospital names for a new record: its
// custodians (this hospital among them) and, optionally, a threshold k of them. The
// zero Custody is the chain's default (genesis custody from the registry).
type Custody struct {
	Custodians []consent.HospitalID // sorted, unique; empty: the default
	Threshold  int                  // 0: the chain's default, capped by len(Custodians)
}

// CustodyIngester is what a Backend implements to ingest a record in the custody the
// hospital names (POST /fhir/Bundle?custodian=…&threshold=…); a Backend without it
// answers 501 to such an ingest.
type CustodyIngester interface {
	// IngestCustody is Backend.Ingest with the custody c; a custody the chain's
	// bounds refuse is a *consent.Rejection and stores nothing.
	IngestCustody(ctx context.Context, patient consent.PatientID, bundle io.Reader, c Custody) (*consent.Record, error)
}

// custodyParams reads an ingest's custodian (repeated, or comma-separated) and
// threshold parameters and checks them against the registry: every custodian a
// registered hospital, this hospital one of them, at most consent.MaxCustodians, and
// 1 ≤ threshold ≤ custodians. Anything else is a 400 naming what is wrong, before
// anything is stored. ok is false when neither parameter was given.
func (s *server) custodyParams(r *http.Request) (c Custody, ok bool, err error) {
	q := r.URL.Query()
	var names []string
	for _, v := range q["custodian"] {
		names = append(names, strings.Split(v, ",")...)
	}
	ts, hasT := q["threshold"]
	if len(names) == 0 && !hasT {
		return c, false, nil
	}
	if hasT {
		if len(ts) != 1 {
			return c, false, badRequest("invalid", "", "give threshold once")
		}
		if c.Threshold, err = strconv.Atoi(ts[0]); err != nil || c.Threshold < 1 {
			return c, false, badRequest("value", "", "threshold '%s' is not a whole number of at least 1", consent.Truncate(ts[0], 20))
		}
	}
	if len(names) > 0 {
		if c.Custodians, err = s.registeredCustodians(r.Context(), names); err != nil {
			return c, false, err
		}
	}
	r1 := len(c.Custodians)
	if r1 > 0 && c.Threshold > r1 {
		return c, false, badRequest("business-rule", "", "threshold %d of %d custodians: want 1 ≤ threshold ≤ custodians", c.Threshold, r1)
	}
	return c, true, nil
}

// registeredCustodians checks named custodians against the registry and returns them
// sorted: each a registered hospital, once, this hospital among them, at most
// consent.MaxCustodians.
func (s *server) registeredCustodians(ctx context.Context, names []string) ([]consent.HospitalID, error) {
	hs, err := s.b.Hospitals(ctx)
	if err != nil {
		return nil, err
	}
	var out []consent.HospitalID
	for _, n := range names {
		id := consent.HospitalID(strings.TrimSpace(n))
		switch {
		case !slices.ContainsFunc(hs, func(h consent.Hospital) bool { return h.ID == id }):
			return nil, badRequest("value", "", "custodian '%s' is not a registered hospital", consent.Truncate(string(id), 40))
		case slices.Contains(out, id):
			return nil, badRequest("value", "", "custodian '%s' is named twice", id)
		}
		out = append(out, id)
	}
	self := s.b.Identity().Hospital
	switch {
	case len(out) > consent.MaxCustodians:
		return nil, badRequest("business-rule", "", "%d custodians: at most %d", len(out), consent.MaxCustodians)
	case !slices.Contains(out, self):
		return nil, badRequest("business-rule", "", "the ingesting hospital, %s, must be one of the record's custodians", self)
	}
	slices.Sort(out)
	return out, nil
}
