package api

import (
	"context"
	"net/http"

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
