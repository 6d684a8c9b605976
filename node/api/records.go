package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/samber/lo"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
)

// ingest is POST /fhir/Bundle?patient=ID: validate, encrypt, store and register a
// Bundle (Backend.Ingest, which stores nothing for invalid FHIR); 201 with the
// record's DocumentReference. With custodian=ID (repeated or comma-separated) and
// threshold=K the hospital names the record's custody (custodyParams; a bad one is a
// 400 and stores nothing).
func (s *server) ingest(w http.ResponseWriter, r *http.Request) error {
	if err := s.serving(); err != nil {
		return err
	}
	patient, err := patientParam(r)
	if err != nil {
		return err
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	if r.ContentLength > s.maxBody {
		return &http.MaxBytesError{Limit: s.maxBody}
	}
	c, named, err := s.custodyParams(r)
	if err != nil {
		return err
	}
	ingest := s.b.Ingest
	if named {
		ci, ok := s.b.(CustodyIngester)
		if !ok {
			return &problem{status: http.StatusNotImplemented, issue: issue("not-supported", "", "this node does not take named custodians")}
		}
		ingest = func(ctx context.Context, p consent.PatientID, b io.Reader) (*consent.Record, error) {
			return ci.IngestCustody(ctx, p, b, c)
		}
	}
	s.allowUpload(w, r) // a large body from a known client: until the ingest's deadline
	rec, err := ingest(r.Context(), patient, bodyOf(w, r, s.maxBody))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/records/"+string(rec.ID))
	return writeResource(w, http.StatusCreated, documentReferenceOf(*rec))
}

// announcedBody is a request body with the length its Content-Length announced:
// Backend.Ingest reads it into one buffer of that size and counts it at that size
// against its ingest cap.
type announcedBody struct {
	io.Reader
	size int64
}

// Size is the announced length.
func (b announcedBody) Size() int64 { return b.size }

// bodyOf is r's body, at most limit bytes, with its announced size if it has one.
func bodyOf(w http.ResponseWriter, r *http.Request, limit int64) io.Reader {
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength <= 0 {
		return body
	}
	return announcedBody{body, r.ContentLength}
}

// searchRecords is GET /fhir/DocumentReference?patient=ID: the patient's records as
// the chain registers them (metadata only: the chain holds no PHI); a patient with
// none gets 200 and an empty searchset, never 404.
func (s *server) searchRecords(w http.ResponseWriter, r *http.Request) error {
	patient, err := patientParam(r)
	if err != nil {
		return err
	}
	recs, err := s.b.Records(r.Context(), patient)
	if err != nil {
		return err
	}
	base := baseURL(r) // none is an empty searchset (total 0), as FHIR search answers
	b := searchset(base+"/fhir/DocumentReference?patient="+string(patient), len(recs))
	for _, rec := range recs {
		b.AddMatch(base+"/fhir/DocumentReference/"+string(rec.ID), documentReferenceOf(rec))
	}
	return writeResource(w, http.StatusOK, b)
}

// getRecord is GET /fhir/DocumentReference/{id}: one record's metadata from the chain.
func (s *server) getRecord(w http.ResponseWriter, r *http.Request) error {
	id, err := recordParam(r)
	if err != nil {
		return err
	}
	rec, err := s.b.Record(r.Context(), id)
	if err != nil {
		return err
	}
	return writeResource(w, http.StatusOK, documentReferenceOf(*rec))
}

// knownPatient answers 404 for a patient the chain knows nothing of: no records and
// no consents.
func (s *server) knownPatient(ctx context.Context, p consent.PatientID) error {
	recs, err := s.b.Records(ctx, p)
	if err != nil || len(recs) > 0 {
		return err
	}
	cons, err := s.b.Consents(ctx, p)
	if err != nil || len(cons) > 0 {
		return err
	}
	return &problem{status: http.StatusNotFound, issue: issue("not-found", "",
		"the chain has no records and no consents for patient "+string(p))}
}

// read is GET /records/{id}?purpose=CODE: access decided on the chain, then the
// record's plaintext Bundle, byte for byte.
func (s *server) read(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodHead { // a read is an access request on the chain: never as a side effect of HEAD
		w.Header().Set("Allow", "GET")
		return &problem{status: http.StatusMethodNotAllowed, issue: issue("not-supported", "", "HEAD is not supported here; allowed: GET")}
	}
	if err := s.serving(); err != nil {
		return err
	}
	id, err := recordParam(r)
	if err != nil {
		return err
	}
	purpose, err := purposeParam(r)
	if err != nil {
		return err
	}
	acc, err := s.b.Read(r.Context(), id, purpose)
	if err != nil {
		return err
	}
	return s.writeRecord(w, id, acc)
}

func purposeParam(r *http.Request) (consent.Purpose, error) {
	vals := r.URL.Query()["purpose"]
	if len(vals) != 1 {
		return "", badRequest("required", "", "give the purpose of use once: ?purpose=TREAT (a v3 PurposeOfUse code)")
	}
	p := consent.Purpose(vals[0])
	switch {
	case p == "ETREAT" || p == "BTG":
		return "", badRequest("business-rule", "", "emergency access is POST /records/{id}/$emergency-access, with a coded reason")
	case !consent.IsPurpose(p):
		return "", badRequest("value", "", "purpose '%s' is not one the chain knows: %s", consent.Truncate(vals[0], 20), joinPurposes())
	}
	return p, nil
}

// emergency is POST /records/{id}/$emergency-access: break-glass access with a coded
// reason (a Parameters body with reason as valueCode, or ?reason=), then as read.
func (s *server) emergency(w http.ResponseWriter, r *http.Request) error {
	if err := s.serving(); err != nil {
		return err
	}
	id, err := recordParam(r)
	if err != nil {
		return err
	}
	reason, err := emergencyReason(w, r)
	if err != nil {
		return err
	}
	acc, err := s.b.Emergency(r.Context(), id, reason)
	if err != nil {
		return err
	}
	return s.writeRecord(w, id, acc)
}

func emergencyReason(w http.ResponseWriter, r *http.Request) (string, error) {
	q := r.URL.Query()["reason"]
	if len(q) > 1 {
		return "", badRequest("invalid", "", "give the reason once")
	}
	var reason string
	if len(q) == 1 {
		reason = q[0]
	}
	return codeParam(w, r, "reason", reason, consent.EmergencyReasons(), "emergency access needs a coded reason")
}

// codeParam is the code named name, given in the query (fromQuery) or as a valueCode
// in a Parameters body (both: they must agree), which must be one of allowed;
// missing says what lacks it.
func codeParam(w http.ResponseWriter, r *http.Request, name, fromQuery string, allowed []string, missing string) (string, error) {
	code := fromQuery
	if r.ContentLength != 0 {
		ps, err := readParameters(w, r, maxResource, name)
		if err != nil {
			return "", err
		}
		if p, ok := ps[name]; ok {
			if p.ValueCode == "" {
				return "", badRequest("required", "Parameters.parameter", "parameter '%s' needs a valueCode", name)
			}
			if code != "" && code != p.ValueCode {
				return "", badRequest("invalid", "", "the %s in the query and in the body differ", name)
			}
			code = p.ValueCode
		}
	}
	switch {
	case code == "":
		return "", badRequest("required", "", "%s, one of: %s", missing, strings.Join(allowed, ", "))
	case !slices.Contains(allowed, code):
		return "", badRequest("value", "", "%s '%s' is not one of: %s", name, consent.Truncate(code, 40), strings.Join(allowed, ", "))
	}
	return code, nil
}

// writeRecord answers a granted access with the record's Bundle and the decision's
// IDs. It serves nothing unless the decision is a grant for this very record. A large
// record gets time to reach the client (allowWrite).
func (s *server) writeRecord(w http.ResponseWriter, id consent.RecordID, acc *Access) error {
	switch {
	case acc == nil || acc.Decision.Record != id:
		return fmt.Errorf("api: the backend answered a read of %s with another record's access", id)
	case !acc.Decision.Granted:
		reason := acc.Decision.Reason
		if reason == "" {
			reason = consent.ReasonNoConsent
		}
		return &Denied{Record: id, Grant: acc.Decision.ID, Reason: reason}
	}
	h := w.Header()
	h.Set("X-Medledger-Grant", string(acc.Decision.ID))
	if acc.Decision.Consent != "" {
		h.Set("X-Medledger-Consent", string(acc.Decision.Consent))
	}
	if acc.Decision.Emergency != "" {
		h.Set("X-Medledger-Emergency", acc.Decision.Emergency)
	}
	s.allowWrite(w, len(acc.Bundle))
	writeFHIR(w, http.StatusOK, acc.Bundle)
	return nil
}

// documentReferenceOf is a record's metadata from the chain as a FHIR R4
// DocumentReference (no PHI: the chain has none).
func documentReferenceOf(rec consent.Record) fhir.DocumentReference {
	d := fhir.DocumentReference{
		ResourceType: "DocumentReference",
		ID:           string(rec.ID),
		// The CID names the ciphertext (never the plaintext) in the consortium's IPFS store.
		Identifier: []fhir.Identifier{{Type: &fhir.CodeableConcept{Text: "IPFS CID of the encrypted record"},
			System: fhir.SystemURI, Value: "ipfs://" + rec.CID}},
		Status:  "current",
		Subject: &fhir.Reference{Reference: "Patient/" + string(rec.Patient)},
		Content: []fhir.DocumentContent{{Attachment: fhir.Attachment{ContentType: "application/fhir+json", URL: "/records/" + string(rec.ID)}}},
	}
	if rec.Erased != 0 {
		d.Status = "entered-in-error"
	}
	if len(rec.Custodians) > 0 {
		d.Custodian = &fhir.Reference{Reference: "Organization/" + string(rec.Custodians[0])}
	}
	d.Category = lo.Map(rec.Classes, func(c consent.DataClass, _ int) fhir.CodeableConcept {
		return fhir.Concept(fhir.SystemResourceTypes, string(c))
	})
	return d
}

// searchset is a searchset of a whole result of total matches.
func searchset(self string, total int) *fhir.SearchSet {
	b := fhir.NewSearchSet(self)
	b.SetTotal(total)
	return b
}

// baseURL is the server's base as the client addressed it, for absolute fullUrls.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}
