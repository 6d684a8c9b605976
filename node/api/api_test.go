package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/api"
)

// fake is an in-memory Backend: records in a map, consent txs decoded, verified and
// applied as the chain would (grant, revoke, replay), access decided by the consents'
// own policies. The real stack is tested elsewhere.
type fake struct {
	mu       sync.Mutex
	id       api.Identity
	now      time.Time
	height   int64
	records  map[consent.RecordID]*stored
	consents map[consent.ConsentID]*consent.Consent
	nonces   map[string]bool
	calls    map[string]int             // Backend calls by method
	reject   map[consent.RecordID]error // Read answers these as they are
	panicOn  string                     // a method that panics
	health   api.Health                 // Health answers it (zero: ok)

	// The access log and what reads it.
	hospitals   []consent.Hospital
	events      []consent.AuditEvent    // the log, in index order (addEvents)
	filters     []consent.AuditFilter   // every filter AuditEvents was asked
	feed        chan consent.AuditEvent // Follow relays what a test sends here
	followed    []consent.AuditFilter   // every filter Follow was asked
	following   atomic.Int32            // Follow subscriptions not ended yet
	emergencies []api.Emergency         // Emergencies lists them as they are
}

type stored struct {
	rec    consent.Record
	bundle []byte
}

var _ api.Backend = (*fake)(nil)

func newFake() *fake {
	return &fake{
		id:       api.Identity{Hospital: "bayside", Name: "Bayside General", ChainID: "medledger-test", Version: "v0.0.0-test"},
		now:      time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC),
		height:   10,
		records:  map[consent.RecordID]*stored{},
		consents: map[consent.ConsentID]*consent.Consent{},
		nonces:   map[string]bool{},
		calls:    map[string]int{},
		reject:   map[consent.RecordID]error{},
		hospitals: []consent.Hospital{
			{ID: "acme-labs", Name: "Acme Labs"}, // testdata/consent/optout-deny.json names it
			{ID: "ada", Name: "St Ada Infirmary"}, {ID: "bayside", Name: "Bayside General"}, {ID: "city", Name: "City Hospital"},
		},
		feed: make(chan consent.AuditEvent, 64),
	}
}

func (f *fake) called(method string) {
	f.calls[method]++
	if f.panicOn == method {
		panic("boom: the fake's " + method + " panics")
	}
}

// mutations counts the calls that could change something.
func (f *fake) mutations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls["Ingest"] + f.calls["Read"] + f.calls["Emergency"] + f.calls["SubmitTx"] + f.calls["ReviewEmergency"]
}

func (f *fake) Identity() api.Identity { return f.id }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Ingest validates as the real node does (fhir.ReadRecord) and stores nothing on error.
func (f *fake) Ingest(ctx context.Context, patient consent.PatientID, r io.Reader) (*consent.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("Ingest")
	b, err := fhir.ReadRecord(r, fhir.Limits{})
	if err != nil {
		return nil, err
	}
	var classes []consent.DataClass
	for _, c := range b.ResourceTypes() {
		classes = append(classes, consent.DataClass(c))
	}
	f.height++
	rec := consent.Record{ID: consent.RecordID(randomHex(16)), CID: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
		Patient: patient, Classes: classes, Custodians: []consent.HospitalID{f.id.Hospital}, Height: consent.Height(f.height)}
	f.records[rec.ID] = &stored{rec: rec, bundle: b.Raw}
	return &rec, nil
}

func (f *fake) Records(ctx context.Context, p consent.PatientID) ([]consent.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("Records")
	var out []consent.Record
	for _, s := range f.records {
		if s.rec.Patient == p {
			out = append(out, s.rec)
		}
	}
	slices.SortFunc(out, func(a, b consent.Record) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out, nil
}

func (f *fake) Record(ctx context.Context, id consent.RecordID) (*consent.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("Record")
	if s, ok := f.records[id]; ok {
		rec := s.rec
		return &rec, nil
	}
	return nil, fmt.Errorf("%w: no record %s", api.ErrNotFound, id)
}

func (f *fake) Consent(ctx context.Context, id consent.ConsentID) (*consent.Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("Consent")
	if c, ok := f.consents[id]; ok {
		cc := *c
		return &cc, nil
	}
	return nil, fmt.Errorf("%w: no consent %s", api.ErrNotFound, id)
}

// Read decides as the chain does (consent.Decide): the first consent in force that
// permits wins, else the most telling reason.
func (f *fake) Read(ctx context.Context, id consent.RecordID, purpose consent.Purpose) (*api.Access, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("Read")
	if err := f.reject[id]; err != nil {
		return nil, err
	}
	s, ok := f.records[id]
	if !ok {
		return nil, api.ErrNotFound
	}
	d := consent.Decision{ID: consent.GrantID(randomHex(16)), Record: id, Patient: s.rec.Patient,
		Requester: f.id.Hospital, Purpose: purpose}
	d.Granted, d.Consent, d.Reason = consent.Decide(f.consentsOf(s.rec.Patient), consent.Access{
		Actor: f.id.Hospital, Purpose: purpose, Record: id, Classes: s.rec.Classes, Time: f.now.Unix()})
	if !d.Granted {
		return nil, &api.Denied{Record: id, Grant: d.ID, Reason: d.Reason}
	}
	return &api.Access{Decision: d, Bundle: s.bundle}, nil
}

func (f *fake) Emergency(ctx context.Context, id consent.RecordID, reason string) (*api.Access, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("Emergency")
	s, ok := f.records[id]
	if !ok {
		return nil, api.ErrNotFound
	}
	d := consent.Decision{ID: consent.GrantID(randomHex(16)), Record: id, Patient: s.rec.Patient,
		Requester: f.id.Hospital, Purpose: "ETREAT", Granted: true, Emergency: reason}
	return &api.Access{Decision: d, Bundle: s.bundle}, nil
}

func (f *fake) Consents(ctx context.Context, p consent.PatientID) ([]consent.Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("Consents")
	return f.consentsOf(p), nil
}

func (f *fake) consentsOf(p consent.PatientID) []consent.Consent {
	var out []consent.Consent
	for _, c := range f.consents {
		if c.Patient == p {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b consent.Consent) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

func (f *fake) NewBody(ctx context.Context) (consent.Body, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("NewBody")
	return consent.NewBody(f.id.ChainID, consent.Height(f.height+100))
}

// SubmitTx applies grant and revoke txs as the chain does, with its rejections.
func (f *fake) SubmitTx(ctx context.Context, b []byte) (*api.Committed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("SubmitTx")
	tx, body, err := consent.Decode(b)
	if err != nil {
		return nil, err
	}
	if err := tx.Verify(); err != nil {
		return nil, err
	}
	if body.ChainID != f.id.ChainID {
		return nil, &consent.Rejection{Code: consent.CodeChainID, Log: "another chain"}
	}
	nonce := hex.EncodeToString(tx.Signer) + hex.EncodeToString(body.Nonce)
	if f.nonces[nonce] {
		return nil, &consent.Rejection{Code: consent.CodeReplay, Log: "nonce already used"}
	}
	id := consent.IDOf(b)
	signer := consent.PatientIDOf(tx.Signer)
	switch body.Kind {
	case consent.KindGrant:
		if signer != body.Grant.Patient {
			return nil, &consent.Rejection{Code: consent.CodeUnauthorized, Log: "not the patient"}
		}
		if err := body.Grant.Policy.Validate(); err != nil {
			return nil, &consent.Rejection{Code: consent.CodeInvalid, Log: err.Error()}
		}
		var ne *consent.NameError
		if err := consent.CheckNames(body.Grant.Patient, body.Grant.Policy, fakeRegistry{f}); errors.As(err, &ne) {
			return nil, &consent.Rejection{Code: ne.Code, Log: ne.Error()}
		} else if err != nil {
			return nil, err
		}
		f.consents[consent.ConsentID(id)] = &consent.Consent{ID: consent.ConsentID(id), Patient: body.Grant.Patient,
			Policy: body.Grant.Policy, Height: consent.Height(f.height + 1), Time: f.now.Unix()}
	case consent.KindRevoke:
		c, ok := f.consents[body.Revoke.Consent]
		switch {
		case !ok:
			return nil, &consent.Rejection{Code: consent.CodeUnknownConsent, Log: "no such consent"}
		case signer != c.Patient:
			return nil, &consent.Rejection{Code: consent.CodeUnauthorized, Log: "not the patient"}
		case c.Revoked != 0:
			return nil, &consent.Rejection{Code: consent.CodeDuplicate, Log: "already revoked"}
		}
		c.Revoked = consent.Height(f.height + 1)
	default:
		return nil, &consent.Rejection{Code: consent.CodeUnauthorized, Log: "the fake takes grants and revocations only"}
	}
	f.nonces[nonce] = true
	f.height++
	return &api.Committed{ID: id, Height: f.height}, nil
}

// fakeRegistry is the fake's registry for consent.CheckNames (its lock held).
type fakeRegistry struct{ f *fake }

func (r fakeRegistry) HospitalIDs() ([]consent.HospitalID, error) {
	var ids []consent.HospitalID
	for _, h := range r.f.hospitals {
		ids = append(ids, h.ID)
	}
	slices.Sort(ids)
	return ids, nil
}

func (r fakeRegistry) RecordPatient(id consent.RecordID) (consent.PatientID, bool, error) {
	s, ok := r.f.records[id]
	if !ok {
		return "", false, nil
	}
	return s.rec.Patient, true, nil
}

func (f *fake) Hospitals(ctx context.Context) ([]consent.Hospital, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("Hospitals")
	return slices.Clone(f.hospitals), nil
}

// addEvents appends events to the log, numbering them; each keeps its time (which
// must not decrease) or gets one second after the last.
func (f *fake) addEvents(es ...consent.AuditEvent) []consent.AuditEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range es {
		e.Index, e.Height = uint64(len(f.events)), consent.Height(len(f.events)+1)
		if e.Time == 0 {
			e.Time = f.now.Unix()
			if n := len(f.events); n > 0 {
				e.Time = f.events[n-1].Time + 1
			}
		}
		if e.Tx == "" {
			e.Tx = consent.TxID(fmt.Sprintf("%032x", 0xe000+e.Index))
		}
		f.events = append(f.events, e)
	}
	return slices.Clone(f.events)
}

// matches is consent.AuditFilter's match, as the chain applies it.
func matches(flt consent.AuditFilter, e consent.AuditEvent) bool {
	hospitals := append(slices.Clone(e.Custodians), e.Hospital, e.Recipient)
	return (flt.Patient == "" || e.Patient == flt.Patient) &&
		(flt.Kind == "" || e.Kind == flt.Kind) &&
		(flt.Hospital == "" || slices.Contains(hospitals, flt.Hospital)) &&
		(flt.From == 0 || e.Time >= flt.From) &&
		(flt.To == 0 || e.Time <= flt.To)
}

// AuditEvents pages the log newest first as consent.AuditEvents does: a full page has
// Next set to the last index it considered while older events remain.
func (f *fake) AuditEvents(ctx context.Context, flt consent.AuditFilter) (*consent.AuditPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("AuditEvents")
	f.filters = append(f.filters, flt)
	switch {
	case flt.Limit < 0 || flt.Limit > consent.MaxAuditLimit:
		return nil, &consent.Rejection{Code: consent.CodeInvalid, Log: "limit out of range"}
	case flt.Kind != "" && !consent.IsAuditKind(flt.Kind):
		return nil, &consent.Rejection{Code: consent.CodeInvalid, Log: "unknown kind"}
	case flt.From < 0 || flt.To < 0 || (flt.To != 0 && flt.From > flt.To):
		return nil, &consent.Rejection{Code: consent.CodeInvalid, Log: "empty time range"}
	}
	if flt.Limit == 0 {
		flt.Limit = consent.DefaultAuditLimit
	}
	hi := uint64(len(f.events))
	if flt.Before != 0 {
		hi = min(hi, flt.Before)
	}
	page := &consent.AuditPage{Events: []consent.AuditEvent{}}
	for i := hi; i > 0; i-- {
		e := f.events[i-1]
		if !matches(flt, e) {
			continue
		}
		page.Events = append(page.Events, e)
		if len(page.Events) == flt.Limit {
			if i-1 > 0 {
				page.Next = i - 1
			}
			break
		}
	}
	return page, nil
}

// Follow relays, filtered, what the test sends to f.feed, until ctx ends or the feed
// is closed.
func (f *fake) Follow(ctx context.Context, flt consent.AuditFilter) (<-chan consent.AuditEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("Follow")
	f.followed = append(f.followed, flt)
	out := make(chan consent.AuditEvent)
	f.following.Add(1)
	go func(feed <-chan consent.AuditEvent) {
		defer f.following.Add(-1)
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-feed:
				if !ok {
					return
				}
				if !matches(flt, e) {
					continue
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}(f.feed)
	return out, nil
}

func (f *fake) Emergencies(ctx context.Context) ([]api.Emergency, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("Emergencies")
	return slices.Clone(f.emergencies), nil
}

// ReviewEmergency reviews as the chain does: a known emergency, once, with an outcome
// of consent.ReviewOutcomes().
func (f *fake) ReviewEmergency(ctx context.Context, g consent.GrantID, outcome string) (*api.Committed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("ReviewEmergency")
	i := slices.IndexFunc(f.emergencies, func(e api.Emergency) bool { return e.Decision.ID == g })
	switch {
	case !consent.IsReviewOutcome(outcome):
		return nil, &consent.Rejection{Code: consent.CodeInvalid, Log: "unknown outcome"}
	case i < 0:
		return nil, &consent.Rejection{Code: consent.CodeUnknownGrant, Log: "no such emergency access"}
	case f.emergencies[i].Review != nil:
		return nil, &consent.Rejection{Code: consent.CodeDuplicate, Log: "already reviewed"}
	}
	f.height++
	f.emergencies[i].Review = &api.Review{Outcome: outcome, Reviewer: f.id.Hospital, Height: consent.Height(f.height), Time: f.now.Unix()}
	return &api.Committed{ID: consent.TxID(randomHex(16)), Height: f.height}, nil
}

// env is an API over a fake on a loopback httptest.Server, with a token per role and
// the log captured.
type env struct {
	t      *testing.T
	f      *fake
	srv    *httptest.Server
	tokens map[api.Role]string
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T, cfg api.Config) *env {
	t.Helper()
	e := &env{t: t, f: newFake(), tokens: map[api.Role]string{}, logs: &syncBuffer{}}
	for _, r := range []api.Role{api.RoleClinician, api.RolePrivacyOfficer, api.RoleAdmin} {
		tok, err := api.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = tok
		cfg.Tokens = append(cfg.Tokens, api.Token{Role: r, SHA256: api.HashToken(tok)})
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := api.New(e.f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// req describes a request: role "" sends no token; contentType defaults to
// application/fhir+json when there is a body.
type req struct {
	method, path string
	role         api.Role
	token        string // overrides role
	contentType  string
	body         io.Reader
}

func (e *env) do(r req) response {
	e.t.Helper()
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, r.body)
	if err != nil {
		e.t.Fatal(err)
	}
	switch {
	case r.token != "":
		hr.Header.Set("Authorization", "Bearer "+r.token)
	case r.role != "":
		hr.Header.Set("Authorization", "Bearer "+e.tokens[r.role])
	}
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	} else if r.body != nil {
		hr.Header.Set("Content-Type", "application/fhir+json")
	}
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

// outcome is the part of an OperationOutcome the tests read.
type outcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string   `json:"severity"`
		Code        string   `json:"code"`
		Diagnostics string   `json:"diagnostics"`
		Expression  []string `json:"expression"`
		Details     *struct {
			Coding []struct{ System, Code string } `json:"coding"`
			Text   string                          `json:"text"`
		} `json:"details"`
	} `json:"issue"`
}

// wantOutcome checks that res is an error of status whose body is a valid FHIR R4
// OperationOutcome with a first issue of type code.
func wantOutcome(t *testing.T, res response, status int, code string) outcome {
	t.Helper()
	if res.status != status {
		t.Errorf("status %d, want %d; body %s", res.status, status, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("Content-Type %q, want application/fhir+json", ct)
	}
	r, err := fhir.Parse(res.body, fhir.Limits{})
	if err != nil || r.Type != "OperationOutcome" {
		t.Fatalf("body is not a valid OperationOutcome (%v): %s", err, res.body)
	}
	var oo outcome
	if err := json.Unmarshal(res.body, &oo); err != nil {
		t.Fatal(err)
	}
	if len(oo.Issue) == 0 || oo.Issue[0].Code != code {
		t.Errorf("issue code %+v, want %s", oo.Issue, code)
	}
	return oo
}

// wantResource checks status and that the body is valid FHIR R4 of type typ.
func wantResource(t *testing.T, res response, status int, typ string) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d; body %s", res.status, status, res.body)
	}
	r, err := fhir.Parse(res.body, fhir.Limits{})
	if err != nil {
		t.Fatalf("body is not valid FHIR R4: %v\n%s", err, res.body)
	}
	if r.Type != typ {
		t.Fatalf("resourceType %s, want %s", r.Type, typ)
	}
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}
