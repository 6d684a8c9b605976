package api

import (
	"context"
	"net/http"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/auditor"
)

// What the node's web pages (node/web) share with the API: they answer on routes of
// their own, for a signed-in patient or privacy officer, with the API's error shapes
// and its accounting rule.

// WriteError answers err as the API's handlers do: its status and OperationOutcome
// (problemOf); an error the API does not recognise is a 500 that says nothing of
// its cause.
func WriteError(w http.ResponseWriter, err error) { writeProblem(w, problemOf(err)) }

// WriteJSON writes v as the API's plain-JSON endpoints do.
func WriteJSON(w http.ResponseWriter, status int, v any) error { return writeJSON(w, status, v) }

// WriteFHIR writes a FHIR JSON body (an OperationOutcome of the pages' own).
func WriteFHIR(w http.ResponseWriter, status int, body []byte) { writeFHIR(w, status, body) }

// Accounting is a patient's accounting of disclosures as of now, as GET
// /audit/accounting computes it, read through b.
func Accounting(ctx context.Context, b Backend, p consent.PatientID, now time.Time) ([]auditor.Disclosure, error) {
	s := &server{b: b, id: b.Identity()}
	rows, _, err := s.disclosures(ctx, p, now)
	return rows, err
}
