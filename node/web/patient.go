package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
	audit "github.com/medledger/medledger/node/auditor"
)

// The patient's endpoints. Each answers for the session's patient only: no endpoint
// takes a patient ID from the request.

// hospitalName is a registered hospital as the pages show it.
type hospitalName struct {
	ID   consent.HospitalID `json:"id"`
	Name string             `json:"name"`
}

// names is the chain's hospital registry, sorted by ID.
func (s *Server) names(ctx context.Context) ([]hospitalName, error) {
	hs, err := s.b.Hospitals(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]hospitalName, len(hs))
	for i, h := range hs {
		out[i] = hospitalName{ID: h.ID, Name: h.Name}
	}
	return out, nil
}

// recordRow is one of the patient's records as the chain lists it.
type recordRow struct {
	consent.Record
	Time int64 `json:"time,omitempty"` // block time of its registration, Unix seconds (0: unknown)
}

// records is GET /app/api/records: the patient's records from the chain, with the
// time each was registered, and the registry's names.
func (s *Server) records(w http.ResponseWriter, r *http.Request, se *session) error {
	recs, err := s.b.Records(r.Context(), se.patient)
	if err != nil {
		return err
	}
	when, err := s.registeredAt(r.Context(), se.patient)
	if err != nil {
		return err
	}
	rows := make([]recordRow, len(recs))
	for i, rec := range recs {
		rows[i] = recordRow{Record: rec, Time: when[rec.ID]}
	}
	hs, err := s.names(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"records": rows, "hospitals": hs})
}

// maxPages bounds the log pages one answer reads (MaxAuditLimit events each).
const maxPages = 20

// registeredAt maps the patient's records to the block time of their registration,
// from the access log (the newest maxPages pages of it).
func (s *Server) registeredAt(ctx context.Context, p consent.PatientID) (map[consent.RecordID]int64, error) {
	out := map[consent.RecordID]int64{}
	f := consent.AuditFilter{Patient: p, Kind: consent.AuditRecordRegistered, Limit: consent.MaxAuditLimit}
	for range maxPages {
		page, err := s.b.AuditEvents(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			out[e.Record] = e.Time
		}
		if page.Next == 0 || (f.Before != 0 && page.Next >= f.Before) {
			break
		}
		f.Before = page.Next
	}
	return out, nil
}

// consents is GET /app/api/consents: the patient's consents as the chain holds them.
func (s *Server) consents(w http.ResponseWriter, r *http.Request, se *session) error {
	cs, err := s.b.Consents(r.Context(), se.patient)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []consent.Consent{}
	}
	return writeJSON(w, http.StatusOK, cs)
}

// vocabulary is GET /app/api/vocabulary: what a consent may name — the registered
// hospitals, the purposes a consent can decide (not the emergency ones: emergency
// access is not decided by consents), the data classes, and the classes of the
// patient's own records.
func (s *Server) vocabulary(w http.ResponseWriter, r *http.Request, se *session) error {
	hs, err := s.names(r.Context())
	if err != nil {
		return err
	}
	recs, err := s.b.Records(r.Context(), se.patient)
	if err != nil {
		return err
	}
	own := []consent.DataClass{}
	for _, rec := range recs {
		own = append(own, rec.Classes...)
	}
	slices.Sort(own)
	return writeJSON(w, http.StatusOK, map[string]any{
		"hospitals": hs, "purposes": consentPurposes(), "classes": consent.DataClasses(),
		"own_classes": slices.Compact(own),
	})
}

// consentPurposes are the purposes a consent decides: all but the emergency ones.
func consentPurposes() []consent.Purpose {
	return slices.DeleteFunc(consent.Purposes(), isEmergencyPurpose)
}

func isEmergencyPurpose(p consent.Purpose) bool { return p == "ETREAT" || p == "BTG" }

// activityPage is the patient's access log, newest first, with their emergency
// accesses and the reviews of them apart.
type activityPage struct {
	Events      []consent.AuditEvent `json:"events"`
	Next        uint64               `json:"next,omitempty"`
	Emergencies []api.Emergency      `json:"emergencies"`
	Hospitals   []hospitalName       `json:"hospitals"`
}

// activity is GET /app/api/activity?before=N: one page of the events about the
// patient, and every emergency access to their records with its review.
func (s *Server) activity(w http.ResponseWriter, r *http.Request, se *session) error {
	f := consent.AuditFilter{Patient: se.patient, Limit: 100}
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badInput("The page cursor is not a number.")
		}
		f.Before = n
	}
	page, err := s.b.AuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	all, err := s.b.Emergencies(r.Context())
	if err != nil {
		return err
	}
	mine := []api.Emergency{}
	for _, e := range all {
		if e.Decision.Patient == se.patient {
			mine = append(mine, e)
		}
	}
	hs, err := s.names(r.Context())
	if err != nil {
		return err
	}
	events := page.Events
	if events == nil {
		events = []consent.AuditEvent{}
	}
	return writeJSON(w, http.StatusOK, activityPage{Events: events, Next: page.Next, Emergencies: mine, Hospitals: hs})
}

// grantChoice is what the patient picked on the page.
type grantChoice struct {
	Hospitals     []consent.HospitalID `json:"hospitals"`
	Purposes      []consent.Purpose    `json:"purposes"`
	Classes       []consent.DataClass  `json:"classes"`        // none: every class
	ExceptClasses []consent.DataClass  `json:"except_classes"` // never these
	Start         string               `json:"start"`          // YYYY-MM-DD (UTC) or ""
	End           string               `json:"end"`            // YYYY-MM-DD (UTC) or ""
}

// policy is the chain's form of the choice: opt-in, one permit for the hospitals
// and purposes (and classes), with the excepted classes denied inside it.
func (c grantChoice) policy(registered []consent.HospitalID) (consent.Policy, error) {
	if len(c.Hospitals) == 0 {
		return consent.Policy{}, badInput("Choose at least one hospital.")
	}
	if len(c.Purposes) == 0 {
		return consent.Policy{}, badInput("Choose at least one purpose.")
	}
	for _, h := range c.Hospitals {
		if err := consent.CheckHospital(h, registered); err != nil {
			return consent.Policy{}, badInput("%s is not a hospital of this network.", h)
		}
	}
	for _, p := range c.Purposes {
		if !slices.Contains(consentPurposes(), p) {
			return consent.Policy{}, badInput("%s is not a purpose a consent can decide.", p)
		}
	}
	for _, cl := range append(slices.Clone(c.Classes), c.ExceptClasses...) {
		if !consent.IsDataClass(cl) {
			return consent.Policy{}, badInput("%s is not a kind of health data this network knows.", cl)
		}
	}
	start, end, err := period(c.Start, c.End)
	if err != nil {
		return consent.Policy{}, err
	}
	permit := consent.Provision{Type: consent.Permit, Actors: c.Hospitals, Purposes: c.Purposes, Classes: c.Classes}
	if len(c.ExceptClasses) > 0 {
		permit.Except = []consent.Provision{{Type: consent.Deny, Classes: c.ExceptClasses}}
	}
	p := consent.Policy{Base: consent.Deny, Start: start, End: end, Provisions: []consent.Provision{permit}}
	if err := p.Validate(); err != nil {
		return consent.Policy{}, badInput("This consent cannot be enforced as chosen: %v.", err)
	}
	return p, nil
}

// period reads the consent's first and last days (UTC): from the start of the first
// to the end of the last; "" leaves a bound open.
func period(from, to string) (int64, int64, error) {
	var start, end int64
	if from != "" {
		t, err := time.Parse(time.DateOnly, from)
		if err != nil {
			return 0, 0, badInput("The first day is not a date.")
		}
		start = t.Unix()
	}
	if to != "" {
		t, err := time.Parse(time.DateOnly, to)
		if err != nil {
			return 0, 0, badInput("The last day is not a date.")
		}
		end = t.Add(24*time.Hour - time.Second).Unix()
	}
	if end != 0 && end < start {
		return 0, 0, badInput("The last day is before the first day.")
	}
	return start, end, nil
}

// prepared is a tx body for the patient to sign: the exact bytes, base64.
type prepared struct {
	Body string `json:"body"`
}

// prepareGrant is POST /app/api/grant/prepare with a grantChoice: the grant's tx
// body. The page decodes it, shows what it says and has the patient sign it.
func (s *Server) prepareGrant(w http.ResponseWriter, r *http.Request, se *session) error {
	if err := s.cfg.Rate.Client(r); err != nil {
		return err
	}
	var c grantChoice
	if err := readJSON(w, r, &c); err != nil {
		return err
	}
	hs, err := s.b.Hospitals(r.Context())
	if err != nil {
		return err
	}
	registered := make([]consent.HospitalID, len(hs))
	for i, h := range hs {
		registered[i] = h.ID
	}
	pol, err := c.policy(registered)
	if err != nil {
		return err
	}
	return s.writePrepared(w, r, consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: se.patient, Policy: pol}})
}

type revokeChoice struct {
	Consent consent.ConsentID `json:"consent"`
}

// prepareRevoke is POST /app/api/revoke/prepare {consent}: the revocation's tx body,
// for one of the patient's own active consents.
func (s *Server) prepareRevoke(w http.ResponseWriter, r *http.Request, se *session) error {
	if err := s.cfg.Rate.Client(r); err != nil {
		return err
	}
	var c revokeChoice
	if err := readJSON(w, r, &c); err != nil {
		return err
	}
	con, err := s.ownConsent(r.Context(), se, c.Consent)
	if err != nil {
		return err
	}
	if con.Revoked != 0 {
		return &problem{status: http.StatusConflict, code: "duplicate", msg: "This consent is already revoked."}
	}
	return s.writePrepared(w, r, consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: c.Consent}})
}

// ownConsent is one of the session patient's consents (404 for any other).
func (s *Server) ownConsent(ctx context.Context, se *session, id consent.ConsentID) (*consent.Consent, error) {
	notYours := &problem{status: http.StatusNotFound, code: "not-found", msg: "You have no such consent."}
	if !idPattern.MatchString(string(id)) {
		return nil, notYours
	}
	c, err := s.b.Consent(ctx, id)
	if err != nil || c.Patient != se.patient {
		return nil, notYours
	}
	return c, nil
}

// writePrepared fills in body's chain, nonce and expiry and answers its bytes.
func (s *Server) writePrepared(w http.ResponseWriter, r *http.Request, body consent.Body) error {
	b, err := s.b.NewBody(r.Context())
	if err != nil {
		return err
	}
	body.ChainID, body.Nonce, body.Expiry = b.ChainID, b.Nonce, b.Expiry
	enc, err := consent.EncodeBody(body)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, prepared{Body: base64.StdEncoding.EncodeToString(enc)})
}

// signedTx is a prepared body and the patient's Ed25519 signature over it, base64.
type signedTx struct {
	Body      string `json:"body"`
	Signature string `json:"signature"`
}

// submitted is a committed grant or revocation.
type submitted struct {
	Kind   string       `json:"kind"`
	Tx     consent.TxID `json:"tx"`
	Height int64        `json:"height"`
}

// submit is POST /app/api/submit {body, signature}: a grant or revocation the
// session's patient signed, checked (signature, chain, that it is the patient's own)
// and submitted; the answer comes once it is committed. It counts against the
// client address's rate and, once checked, the patient's (Config.Rate, as the API's
// consent writes) and the session's (maxWrites): over any, 429 and nothing submitted.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, se *session) error {
	if err := s.cfg.Rate.Client(r); err != nil {
		return err
	}
	var in signedTx
	if err := readJSON(w, r, &in); err != nil {
		return err
	}
	body, err1 := base64.StdEncoding.DecodeString(in.Body)
	sig, err2 := base64.StdEncoding.DecodeString(in.Signature)
	if err1 != nil || err2 != nil {
		return badInput("The signed consent is not what this page sends. Reload the page and try again.")
	}
	tx, decoded, err := consent.Assemble(body, patientKey(se.patient), sig)
	if err != nil {
		return &problem{status: http.StatusBadRequest, code: "security",
			msg: "The signature does not match your key and this consent, so nothing was sent to the chain."}
	}
	if err := s.ownChange(r.Context(), se, decoded); err != nil {
		return err
	}
	if err := s.cfg.Rate.Patient(se.patient); err != nil {
		return err
	}
	if !se.allowWrite(s.cfg.Now()) {
		return &problem{status: http.StatusTooManyRequests, code: "throttled",
			msg: "You have changed your consents many times in the last minute. Wait a minute and try again."}
	}
	c, err := s.b.SubmitTx(r.Context(), tx)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, submitted{Kind: decoded.Kind.String(), Tx: c.ID, Height: c.Height})
}

// ownChange checks that a signed body is, on this chain, a grant by the session's
// patient or a revocation of one of their consents: nothing else is submitted here.
func (s *Server) ownChange(ctx context.Context, se *session, b *consent.Body) error {
	if b.ChainID != s.b.Identity().ChainID {
		return badInput("The signed consent is for another network. Prepare it again here.")
	}
	switch {
	case b.Kind == consent.KindGrant && b.Grant.Patient == se.patient:
		return nil
	case b.Kind == consent.KindRevoke:
		_, err := s.ownConsent(ctx, se, b.Revoke.Consent)
		return err
	}
	return &problem{status: http.StatusForbidden, code: "forbidden",
		msg: "Only your own consents and their revocations can be sent from this page."}
}

// patientKey is the public key a patient ID names (checked hex at sign-in).
func patientKey(p consent.PatientID) []byte {
	b, _ := hex.DecodeString(string(p))
	return b
}

// accounting is GET /app/api/accounting?format=csv|json: the patient's accounting
// of disclosures, as the API's GET /audit/accounting gives it, as a download.
func (s *Server) accounting(w http.ResponseWriter, r *http.Request, se *session) error {
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "json" {
		return badInput("Choose the accounting's format: csv or json.")
	}
	now := s.cfg.Now().UTC()
	rows, err := api.Accounting(r.Context(), s.b, se.patient, now)
	if err != nil {
		return err
	}
	name := "accounting-of-disclosures-" + now.Format("20060102") + "." + format
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
	if format == "json" {
		return writeJSON(w, http.StatusOK, audit.NewReport(se.patient, rows, now))
	}
	var buf bytes.Buffer
	if err := audit.WriteCSV(&buf, rows); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes()) // an error here is the client gone: nothing to do
	return nil
}
