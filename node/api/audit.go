package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/auditor"
)

// The audit endpoints: the chain's access log as FHIR AuditEvents (IHE BALP shape,
// node/auditor) and as JSON pages, a patient's accounting of disclosures, the emergency
// review queue, and (auditstream.go) live events. Everything is read from committed
// chain state through the Backend; the only write is a review, a signed tx.

// searchAuditEvents is GET /fhir/AuditEvent?patient=&agent=&date=&kind=&_count=&_cursor=:
// a searchset Bundle of AuditEvents, newest first, one page; the next page is the
// "next" link. agent matches the hospital that acted, a custodian or a key's
// recipient; date may be repeated (date=ge2026-01-01&date=le2026-01-31).
func (s *server) searchAuditEvents(w http.ResponseWriter, r *http.Request) error {
	q, err := auditQuery(r, []string{"patient", "agent", "date", "kind", "_count", "_cursor"}, []string{"date"})
	if err != nil {
		return err
	}
	f, err := auditFilter(q, "agent", "_count", "_cursor")
	if err != nil {
		return err
	}
	tr := anyTime()
	for _, v := range q["date"] {
		if err := tr.narrow("date", v); err != nil {
			return err
		}
	}
	if err := tr.apply(&f, "date"); err != nil {
		return err
	}
	page, err := s.b.AuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	chain, err := s.auditChain(r.Context())
	if err != nil {
		return err
	}
	base := baseURL(r)
	b := fhir.NewSearchSet(base + "/fhir/AuditEvent?" + q.Encode())
	if f.Before == 0 && page.Next == 0 {
		b.SetTotal(len(page.Events)) // the whole result: the total is known
	}
	for _, e := range page.Events {
		res, err := auditor.ToFHIR(e, chain)
		if err != nil {
			return err
		}
		b.AddMatch(base+"/fhir/AuditEvent/"+strconv.FormatUint(e.Index, 10), json.RawMessage(res))
	}
	if page.Next != 0 {
		next := cloneValues(q)
		next.Set("_cursor", strconv.FormatUint(page.Next, 10))
		b.AddLink("next", base+"/fhir/AuditEvent?"+next.Encode())
	}
	return writeResource(w, http.StatusOK, b)
}

// auditFilter reads the filters the audit endpoints share: patient, hospital (under
// the name given), kind, page size and cursor.
func auditFilter(q url.Values, hospital, count, cursor string) (consent.AuditFilter, error) {
	var f consent.AuditFilter
	var err error
	if f.Patient, err = optPatient(q, "patient"); err != nil {
		return f, err
	}
	if f.Hospital, err = optHospital(q, hospital); err != nil {
		return f, err
	}
	if f.Kind, err = optKind(q, "kind"); err != nil {
		return f, err
	}
	if f.Limit, err = optCount(q, count); err != nil {
		return f, err
	}
	f.Before, err = optCursor(q, cursor)
	return f, err
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// getAuditEvent is GET /fhir/AuditEvent/{id}: one event of the log by its index.
func (s *server) getAuditEvent(w http.ResponseWriter, r *http.Request) error {
	idx, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || idx == math.MaxUint64 {
		return badRequest("value", "", "'%s' is not an AuditEvent id: the event's index in the access log", consent.Truncate(r.PathValue("id"), 40))
	}
	page, err := s.b.AuditEvents(r.Context(), consent.AuditFilter{Before: idx + 1, Limit: 1})
	if err != nil {
		return err
	}
	if len(page.Events) == 0 || page.Events[0].Index != idx {
		return &problem{status: http.StatusNotFound, issue: issue("not-found", "", "the access log has no event "+strconv.FormatUint(idx, 10))}
	}
	chain, err := s.auditChain(r.Context())
	if err != nil {
		return err
	}
	res, err := auditor.ToFHIR(page.Events[0], chain)
	if err != nil {
		return err
	}
	writeFHIR(w, http.StatusOK, res)
	return nil
}

// auditChain is what an export needs of the chain: its ID and the hospitals' names.
func (s *server) auditChain(ctx context.Context) (auditor.Chain, error) {
	hs, err := s.b.Hospitals(ctx)
	if err != nil {
		return auditor.Chain{}, err
	}
	return auditor.NewChain(s.id.ChainID, hs), nil
}

// auditEvents is GET /audit/events?patient=&hospital=&kind=&from=&to=&before=&limit=:
// one page of the log as the chain answers it (consent.AuditPage, JSON), for tools and
// the CLI. from and to are FHIR dates or dateTimes, each meaning the whole period it
// names (to=2026-01-31 includes that day).
func (s *server) auditEvents(w http.ResponseWriter, r *http.Request) error {
	q, err := auditQuery(r, []string{"patient", "hospital", "kind", "from", "to", "before", "limit"}, nil)
	if err != nil {
		return err
	}
	f, err := auditFilter(q, "hospital", "limit", "before")
	if err != nil {
		return err
	}
	tr := anyTime()
	for _, b := range []struct{ name, prefix string }{{"from", "ge"}, {"to", "le"}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		if v[0] < '0' || v[0] > '9' {
			return badRequest("value", "", "%s '%s' is not a date: YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 time", b.name, consent.Truncate(v, 40))
		}
		if err := tr.narrow(b.name, b.prefix+v); err != nil {
			return err
		}
	}
	if err := tr.apply(&f, "from-to"); err != nil {
		return err
	}
	page, err := s.b.AuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// accounting is GET /audit/accounting?patient=ID&format=json|csv: the patient's
// accounting of disclosures over the last six years (node/auditor.Accounting), from every
// page of their events in that window.
func (s *server) accounting(w http.ResponseWriter, r *http.Request) error {
	q, err := auditQuery(r, []string{"patient", "format"}, nil)
	if err != nil {
		return err
	}
	if q.Get("patient") == "" {
		return badRequest("required", "", "give the patient: ?patient={patient ID} (64 lowercase hex digits)")
	}
	patient, err := optPatient(q, "patient")
	if err != nil {
		return err
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return badRequest("value", "", "format '%s' is not json or csv", consent.Truncate(format, 20))
	}
	now := time.Now().UTC()
	rows, events, err := s.disclosures(r.Context(), patient, now)
	if err != nil {
		return err
	}
	if events == 0 {
		if err := s.knownPatient(r.Context(), patient); err != nil {
			return err
		}
	}
	if format == "csv" {
		var buf bytes.Buffer
		if err := auditor.WriteCSV(&buf, rows); err != nil {
			return err
		}
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8; header=present")
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="accounting-%s-%s.csv"`, patient[:16], now.Format("20060102")))
		w.WriteHeader(http.StatusOK)
		w.Write(buf.Bytes()) // an error here is the client gone: nothing to do
		return nil
	}
	return writeJSON(w, http.StatusOK, auditor.NewReport(patient, rows, now))
}

// disclosures gathers what the accounting needs — all the patient's events in the
// window (and a day before it, for the emergencies whose keys were released just
// inside), their records and the hospitals' names — and applies the rule. It returns
// the rows and how many events it read.
func (s *server) disclosures(ctx context.Context, p consent.PatientID, now time.Time) ([]auditor.Disclosure, int, error) {
	events, err := s.allEvents(ctx, consent.AuditFilter{Patient: p, From: auditor.FetchFrom(now).Unix()})
	if err != nil {
		return nil, 0, err
	}
	// Who registered each record, however long ago: a release to the registrant of a
	// threshold record discloses nothing (the rule in node/auditor).
	registered, err := s.allEvents(ctx, consent.AuditFilter{Patient: p, Kind: consent.AuditRecordRegistered})
	if err != nil {
		return nil, 0, err
	}
	events = append(events, registered...)
	recs, err := s.b.Records(ctx, p)
	if err != nil {
		return nil, 0, err
	}
	records := make(map[consent.RecordID]consent.Record, len(recs))
	for _, rec := range recs {
		records[rec.ID] = rec
	}
	for _, e := range events {
		if _, ok := records[e.Record]; ok || e.Kind != consent.AuditKeyReleased {
			continue
		}
		rec, err := s.b.Record(ctx, e.Record)
		switch {
		case errors.Is(err, ErrNotFound): // described as unknown in its row
		case err != nil:
			return nil, 0, err
		default:
			records[rec.ID] = *rec
		}
	}
	chain, err := s.auditChain(ctx)
	if err != nil {
		return nil, 0, err
	}
	return auditor.Accounting(p, events, records, chain.Names, now), len(events), nil
}

// allEvents reads every page of the events f matches, newest first.
func (s *server) allEvents(ctx context.Context, f consent.AuditFilter) ([]consent.AuditEvent, error) {
	f.Limit, f.Before = consent.MaxAuditLimit, 0
	var out []consent.AuditEvent
	for {
		page, err := s.b.AuditEvents(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Events...)
		if page.Next == 0 {
			return out, nil
		}
		if f.Before != 0 && page.Next >= f.Before {
			return nil, fmt.Errorf("api: the access log's pages do not advance (next %d after before %d)", page.Next, f.Before)
		}
		f.Before = page.Next
	}
}

// emergencies is GET /audit/emergencies: the review queue, unreviewed first (then
// newest first, as the chain lists them).
func (s *server) emergencies(w http.ResponseWriter, r *http.Request) error {
	if _, err := auditQuery(r, nil, nil); err != nil {
		return err
	}
	list, err := s.b.Emergencies(r.Context())
	if err != nil {
		return err
	}
	list = slices.Clone(list)
	slices.SortStableFunc(list, func(a, b Emergency) int { // keeps the chain's order within each group
		return boolOrder(a.Review != nil) - boolOrder(b.Review != nil)
	})
	n := 0
	for _, e := range list {
		if e.Review == nil {
			n++
		}
	}
	if list == nil {
		list = []Emergency{}
	}
	return writeJSON(w, http.StatusOK, emergencyQueue{Unreviewed: n, Emergencies: list})
}

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}

type emergencyQueue struct {
	Unreviewed  int         `json:"unreviewed"`
	Emergencies []Emergency `json:"emergencies"`
}

// reviewEmergency is POST /audit/emergencies/{grant}/$review: a privacy officer's
// review of an emergency access, with an outcome code (a Parameters body with outcome
// as valueCode, or ?outcome=), signed by this hospital and committed on the chain.
func (s *server) reviewEmergency(w http.ResponseWriter, r *http.Request) error {
	grant := r.PathValue("grant")
	if !consent.TxID(grant).Valid() {
		return badRequest("value", "", "'%s' is not a grant ID: 32 lowercase hex digits", consent.Truncate(grant, 80))
	}
	outcome, err := reviewOutcome(w, r)
	if err != nil {
		return err
	}
	c, err := s.b.ReviewEmergency(r.Context(), consent.GrantID(grant), outcome)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, reviewed{Grant: consent.GrantID(grant), Outcome: outcome, Tx: c.ID, Height: c.Height})
}

type reviewed struct {
	Grant   consent.GrantID `json:"grant"`
	Outcome string          `json:"outcome"`
	Tx      consent.TxID    `json:"tx"`
	Height  int64           `json:"height"`
}

func reviewOutcome(w http.ResponseWriter, r *http.Request) (string, error) {
	if _, err := auditQuery(r, []string{"outcome"}, nil); err != nil {
		return "", err
	}
	return codeParam(w, r, "outcome", r.URL.Query().Get("outcome"), consent.ReviewOutcomes(), "a review needs an outcome")
}

// writeJSON writes v as plain JSON (the /audit/ endpoints other than the FHIR ones).
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("api: encode %T: %w", v, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b) // an error here is the client gone: nothing to do
	return nil
}
