package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/samber/lo"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/api"
)

// fake is the node the API tests run against. Its chain is a consenttest.Chain: the
// real consent.Machine, so every tx (grant, revoke, nonce, register, request,
// emergency, review, receipt), every decision and every read of state or of the access
// log is the chain's own. What a node has beyond the chain is plain test data, below.
type fake struct {
	chain *consenttest.Chain
	id    api.Identity

	// Test data: what a node holds or suffers that the chain does not decide.
	mu       sync.Mutex
	bundles  map[consent.RecordID][]byte // the plaintext of each ingested record
	fail     map[consent.RecordID]error  // Read and Emergency answer these (a node fault), asking no one
	health   api.Health                  // Health answers it (zero: ok)
	panicOn  string                      // a method that panics
	calls    map[string]int              // Backend calls by method
	filters  []consent.AuditFilter       // every filter AuditEvents was asked
	followed []consent.AuditFilter       // every filter Follow was asked
	onFollow func()                      // run once Follow has subscribed (a commit during a stream's catch-up)
}

var _ api.Backend = (*fake)(nil)

// Keys of the test's patients and the start of its chain.
var (
	aliceKey = consenttest.NewKey("alice")
	bobKey   = consenttest.NewKey("bob")
	genesis  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// testHospitals is the chain's registry (testdata/consent/optout-deny.json names
// acme-labs); each operator key is consenttest.NewKey(id).
func testHospitals() []consent.Hospital {
	var hs []consent.Hospital
	for _, h := range []struct{ id, name string }{
		{"acme-labs", "Acme Labs"}, {"ada", "St Ada Infirmary"}, {"bayside", "Bayside General"}, {"city", "City Hospital"},
	} {
		x := consenttest.Hospital(h.id, 1)
		x.Name = h.name
		hs = append(hs, x)
	}
	return hs
}

func newFake(t *testing.T) *fake {
	t.Helper()
	c, err := consenttest.NewChain("medledger-test", testHospitals(), genesis)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return &fake{
		chain:   c,
		id:      api.Identity{Hospital: "bayside", Name: "Bayside General", ChainID: c.ChainID(), Version: "v0.0.0-test"},
		bundles: map[consent.RecordID][]byte{},
		fail:    map[consent.RecordID]error{},
		calls:   map[string]int{},
	}
}

func (f *fake) called(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	if f.panicOn == method {
		panic("boom: the fake's " + method + " panics")
	}
}

// count is how many times method was called.
func (f *fake) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// mutations counts the calls that could change something.
func (f *fake) mutations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls["Ingest"] + f.calls["Read"] + f.calls["Emergency"] + f.calls["SubmitTx"] + f.calls["ReviewEmergency"]
}

func (f *fake) Identity() api.Identity { return f.id }

// notFound maps the chain's not-found to the API's.
func notFound(err error) error {
	if errors.Is(err, consenttest.ErrNotFound) {
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	}
	return err
}

// Ingest validates as the real node does (fhir.ReadRecord), registers the record on
// the chain with this hospital as custodian and keeps its plaintext; on error it
// stores nothing.
func (f *fake) Ingest(ctx context.Context, patient consent.PatientID, r io.Reader) (*consent.Record, error) {
	f.called("Ingest")
	b, err := fhir.ReadRecord(r, fhir.Limits{})
	if err != nil {
		return nil, err
	}
	classes := lo.Map(b.ResourceTypes(), func(c string, _ int) consent.DataClass { return consent.DataClass(c) })
	rec, err := f.chain.Register(f.id.Hospital, patient, classes)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.bundles[rec.ID] = b.Raw
	f.mu.Unlock()
	return rec, nil
}

func (f *fake) Records(ctx context.Context, p consent.PatientID) ([]consent.Record, error) {
	f.called("Records")
	return f.chain.Records(p)
}

func (f *fake) Record(ctx context.Context, id consent.RecordID) (*consent.Record, error) {
	f.called("Record")
	rec, err := f.chain.Record(id)
	return rec, notFound(err)
}

func (f *fake) Consent(ctx context.Context, id consent.ConsentID) (*consent.Consent, error) {
	f.called("Consent")
	c, err := f.chain.Consent(id)
	return c, notFound(err)
}

func (f *fake) Consents(ctx context.Context, p consent.PatientID) ([]consent.Consent, error) {
	f.called("Consents")
	return f.chain.Consents(p)
}

// consentsOf is p's consents on the chain, for the tests' checks.
func (f *fake) consentsOf(p consent.PatientID) []consent.Consent {
	cs, err := f.chain.Consents(p)
	if err != nil {
		panic(err)
	}
	return cs
}

// Read asks the chain (a request tx by this hospital); if granted, the custodian
// releases the key (its receipt on the chain) and the plaintext is returned.
func (f *fake) Read(ctx context.Context, id consent.RecordID, purpose consent.Purpose) (*api.Access, error) {
	f.called("Read")
	return f.access(id, func() (*consent.Decision, error) { return f.chain.Request(f.id.Hospital, id, purpose) })
}

// Emergency is break-glass access decided by the chain, then as Read.
func (f *fake) Emergency(ctx context.Context, id consent.RecordID, reason string) (*api.Access, error) {
	f.called("Emergency")
	return f.access(id, func() (*consent.Decision, error) { return f.chain.Emergency(f.id.Hospital, id, reason) })
}

func (f *fake) access(id consent.RecordID, decide func() (*consent.Decision, error)) (*api.Access, error) {
	f.mu.Lock()
	err, bundle := f.fail[id], f.bundles[id]
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	d, err := decide()
	if err != nil {
		return nil, err
	}
	if !d.Granted {
		return nil, &api.Denied{Record: id, Grant: d.ID, Reason: d.Reason}
	}
	rec, err := f.chain.Record(id)
	if err != nil {
		return nil, err
	}
	if err := f.chain.Release(rec.Custodians[0], d.ID); err != nil {
		return nil, err
	}
	return &api.Access{Decision: *d, Bundle: bundle}, nil
}

func (f *fake) NewBody(ctx context.Context) (consent.Body, error) {
	f.called("NewBody")
	return f.chain.NewBody()
}

// SubmitTx applies the tx on the chain; a refusal is the chain's *consent.Rejection.
func (f *fake) SubmitTx(ctx context.Context, b []byte) (*api.Committed, error) {
	f.called("SubmitTx")
	id, h, err := f.chain.Submit(b)
	if err != nil {
		return nil, err
	}
	return &api.Committed{ID: id, Height: int64(h)}, nil
}

func (f *fake) Hospitals(ctx context.Context) ([]consent.Hospital, error) {
	f.called("Hospitals")
	return f.chain.Hospitals()
}

// AuditEvents pages the chain's access log (consent.AuditEvents).
func (f *fake) AuditEvents(ctx context.Context, flt consent.AuditFilter) (*consent.AuditPage, error) {
	f.called("AuditEvents")
	f.mu.Lock()
	f.filters = append(f.filters, flt)
	f.mu.Unlock()
	return f.chain.AuditEvents(flt)
}

// lastFilter is the filter AuditEvents was last asked.
func (f *fake) lastFilter() consent.AuditFilter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.filters[len(f.filters)-1]
}

// filtersAsked is every filter AuditEvents was asked.
func (f *fake) filtersAsked() []consent.AuditFilter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.filters)
}

// followedAsked is every filter Follow was asked.
func (f *fake) followedAsked() []consent.AuditFilter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.followed)
}

// Follow relays the chain's committed events matching flt.
func (f *fake) Follow(ctx context.Context, flt consent.AuditFilter) (<-chan consent.AuditEvent, error) {
	f.called("Follow")
	ch, err := f.chain.Follow(ctx, flt)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.followed = append(f.followed, flt)
	hook := f.onFollow
	f.onFollow = nil
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return ch, nil
}

// Emergencies is the chain's review queue.
func (f *fake) Emergencies(ctx context.Context) ([]api.Emergency, error) {
	f.called("Emergencies")
	q, err := f.chain.EmergencyQueue()
	if err != nil {
		return nil, err
	}
	return lo.Map(q, func(c consent.EmergencyCase, _ int) api.Emergency {
		em := api.Emergency{Decision: c.Decision}
		if c.Review != nil {
			em.Review = &api.Review{Outcome: c.Review.Outcome, Reviewer: c.Review.Reviewer, Height: c.Review.Height, Time: c.Review.Time}
		}
		return em
	}), nil
}

// ReviewEmergency submits this hospital's review to the chain.
func (f *fake) ReviewEmergency(ctx context.Context, g consent.GrantID, outcome string) (*api.Committed, error) {
	f.called("ReviewEmergency")
	id, h, err := f.chain.Review(f.id.Hospital, g, outcome)
	if err != nil {
		return nil, err
	}
	return &api.Committed{ID: id, Height: int64(h)}, nil
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
	return newEnvWith(t, cfg, nil)
}

// newEnvWith is newEnv with the API over wrap(fake) (nil: the fake itself).
func newEnvWith(t *testing.T, cfg api.Config, wrap func(*fake) api.Backend) *env {
	t.Helper()
	e := &env{t: t, f: newFake(t), tokens: map[api.Role]string{}, logs: &syncBuffer{}}
	var b api.Backend = e.f
	if wrap != nil {
		b = wrap(e.f)
	}
	for _, r := range []api.Role{api.RoleClinician, api.RolePrivacyOfficer, api.RoleAdmin} {
		tok, err := api.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = tok
		cfg.Tokens = append(cfg.Tokens, api.Token{Role: r, SHA256: api.HashToken(tok)})
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := api.New(b, cfg)
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
