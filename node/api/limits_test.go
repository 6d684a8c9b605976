package api_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/node/api"
)

// newServedEnv is newEnv over b, served as a node serves it: api.NewServer's
// http.Server (timeouts) and connection-limited listener, on 127.0.0.1. Its raw
// listener counts the connections it holds open (peak).
func newServedEnv(t *testing.T, b api.Backend, f *fake, cfg api.Config) (*env, *countingListener) {
	t.Helper()
	e := &env{t: t, f: f, tokens: map[api.Role]string{}, logs: &syncBuffer{}}
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
	srv := httptest.NewUnstartedServer(h)
	counted := &countingListener{Listener: srv.Listener}
	hs, limited, err := api.NewServer(h, counted, cfg.Limits)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config, srv.Listener = hs, limited
	srv.Start()
	t.Cleanup(srv.Close)
	e.srv = srv
	return e, counted
}

// countingListener counts the connections accepted and not yet closed.
type countingListener struct {
	net.Listener
	open, peak atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if n := l.open.Add(1); n > l.peak.Load() {
		l.peak.Store(n)
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// slowBody opens a connection and sends a consent write's headers announcing a
// 1000-byte body, and one byte of it.
func slowBody(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /fhir/Consent HTTP/1.1\r\nHost: %s\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{", addr)
	return c
}

func addrOf(e *env) string { return strings.TrimPrefix(e.srv.URL, "http://") }

// TestSlowBodyCut: a client that announces a body and sends one byte of it is cut off
// by the read timeout with 408 and an OperationOutcome, and nothing reaches the
// backend; one that never finishes its headers is dropped.
func TestSlowBodyCut(t *testing.T) {
	f := newFake(t)
	e, _ := newServedEnv(t, f, f, api.Config{Limits: api.Limits{ReadTimeout: 500 * time.Millisecond, ReadHeaderTimeout: 300 * time.Millisecond}})
	start := time.Now()
	c := slowBody(t, addrOf(e))
	c.SetDeadline(time.Now().Add(20 * time.Second)) // the test's bound, far beyond the timeout
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	t.Logf("slow body cut after %v", time.Since(start).Round(time.Millisecond))
	wantOutcome(t, response{status: res.StatusCode, header: res.Header, body: body}, http.StatusRequestTimeout, "timeout")
	if !res.Close {
		t.Errorf("the connection is kept open after a body that did not arrive")
	}
	if f.mutations() != 0 {
		t.Errorf("a body that did not arrive reached the backend")
	}

	// Headers that never end: the connection is closed.
	c2, err := net.Dial("tcp", addrOf(e))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	start = time.Now()
	fmt.Fprintf(c2, "POST /fhir/Consent HTTP/1.1\r\nHost: x\r\n")
	c2.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(c2)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a client that never finished its headers was held 20 s")
	}
	t.Logf("slow headers cut after %v", time.Since(start).Round(time.Millisecond))
}

// hanging is a Backend whose Records, SubmitTx and Read block: until release (if
// ignoreCtx: a backend that forgets its context) or until the context ends, then
// failing with an error that has lost the context's error (formatted with %v), or
// with the context's error as it is (wrapCtx).
type hanging struct {
	*fake
	release   chan struct{}
	ignoreCtx bool
	wrapCtx   bool
	delay     time.Duration // Read answers after delay instead
}

func (h *hanging) wait(ctx context.Context) error {
	if h.ignoreCtx {
		<-h.release
		return errors.New("released")
	}
	<-ctx.Done()
	if h.wrapCtx {
		return fmt.Errorf("hanging: %w", ctx.Err())
	}
	return fmt.Errorf("hanging: %v", ctx.Err())
}

func (h *hanging) Records(ctx context.Context, p consent.PatientID) ([]consent.Record, error) {
	return nil, h.wait(ctx)
}

func (h *hanging) SubmitTx(ctx context.Context, tx []byte) (*api.Committed, error) {
	return nil, h.wait(ctx)
}

func (h *hanging) Read(ctx context.Context, id consent.RecordID, p consent.Purpose) (*api.Access, error) {
	if h.delay > 0 {
		select {
		case <-time.After(h.delay):
			return h.fake.Read(ctx, id, p)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, h.wait(ctx)
}

// TestRequestDeadline: a request whose backend call outlives the server-side deadline
// gets 503 with Retry-After and an OperationOutcome — whether the backend honours its
// context or not, and whatever error it makes of it — never a hang, never 500.
func TestRequestDeadline(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    hanging
	}{
		{"backend ignores its context", hanging{ignoreCtx: true}},
		{"backend loses the context's error", hanging{}},
		{"backend returns the context's error", hanging{wrapCtx: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.h
			b.fake, b.release = newFake(t), make(chan struct{})
			defer close(b.release)
			e, _ := newServedEnv(t, &b, b.fake, api.Config{Limits: api.Limits{RequestTimeout: 300 * time.Millisecond}})
			e.srv.Client().Timeout = 20 * time.Second // the test's bound
			for _, r := range []req{
				{method: "GET", path: "/fhir/DocumentReference?patient=" + alice, role: api.RoleClinician},
				{method: "GET", path: "/records/" + strings.Repeat("ab", 16) + "?purpose=TREAT", role: api.RoleClinician},
			} {
				res := e.do(r)
				wantOutcome(t, res, http.StatusServiceUnavailable, "timeout")
				if s, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || s < 1 {
					t.Errorf("Retry-After %q", res.header.Get("Retry-After"))
				}
			}
			// The server still answers.
			if res := e.do(req{method: "GET", path: "/healthz"}); res.status != http.StatusOK {
				t.Errorf("healthz after timeouts: %d", res.status)
			}
			if strings.Contains(e.logs.String(), `"status":500`) {
				t.Errorf("a timeout was logged as a 500:\n%s", e.logs)
			}
		})
	}
}

// TestTimeoutConsentWrite: a consent write whose commit does not come in time is 503
// (the client is told it may still take effect), not 500.
func TestTimeoutConsentWrite(t *testing.T) {
	b := &hanging{fake: newFake(t), release: make(chan struct{})}
	defer close(b.release)
	e, _ := newServedEnv(t, b, b.fake, api.Config{Limits: api.Limits{RequestTimeout: 300 * time.Millisecond}})
	key := consenttest.NewKey("alice")
	treat := fixture(t, "optin-treat-bayside.json")
	p := e.prepare("/fhir/Consent/$prepare", treat)
	res := e.do(req{method: "POST", path: "/fhir/Consent", body: bytes.NewReader(parametersJSON(t, treat, p.body, sign(t, key, p.body)))})
	oo := wantOutcome(t, res, http.StatusServiceUnavailable, "timeout")
	if !strings.Contains(oo.Issue[0].Diagnostics, "may still take effect") || res.header.Get("Retry-After") == "" {
		t.Errorf("the answer does not say the write may still commit: %s %v", res.body, res.header)
	}
}

// TestLongRequestsKeepWorking: the server's read and write timeouts do not cut what is
// meant to last: a read slower than the read timeout (its context is not cancelled
// when the connection's read deadline passes), a large record to a client that reads
// it late, and the audit stream far beyond every timeout.
func TestLongRequestsKeepWorking(t *testing.T) {
	lim := api.Limits{ReadTimeout: 300 * time.Millisecond, RequestTimeout: 3 * time.Second, WriteTimeout: 3100 * time.Millisecond}
	b := &hanging{fake: newFake(t), release: make(chan struct{}), delay: 2 * time.Second}
	defer close(b.release)
	e, _ := newServedEnv(t, b, b.fake, api.Config{Limits: lim, Heartbeat: time.Hour})
	big := bytes.Repeat([]byte(" "), 24<<20) // a large record (leading whitespace), beyond socket buffers
	id := e.ingest()
	b.fake.mu.Lock()
	for id, bundle := range b.fake.bundles {
		b.fake.bundles[id] = append(big, bundle...)
	}
	b.fake.mu.Unlock()
	e.grantAlice()

	// A read that takes longer than the read timeout, then 24 MiB to a client that
	// starts reading after the write timeout has passed.
	hr, _ := http.NewRequest("GET", e.srv.URL+"/records/"+string(id)+"?purpose=TREAT", nil)
	hr.Header.Set("Authorization", "Bearer "+e.tokens[api.RoleClinician])
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("slow read: %d %s", res.StatusCode, body)
	}
	time.Sleep(1500 * time.Millisecond)
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil || n < int64(len(big)) {
		t.Fatalf("a large record was cut: %d bytes, %v", n, err)
	}

	// The stream outlives every timeout and still delivers.
	s := e.openStream("/audit/stream", api.RoleAdmin, nil)
	time.Sleep(2500 * time.Millisecond)
	must(e.f.chain.Grant(aliceKey, permits("ada", "TREAT")))
	if got := s.nextEvent(); got.Kind != consent.AuditConsentGranted {
		t.Errorf("the stream delivered %+v", got)
	}
}

// clock is a settable time for the rate limiters.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// wantThrottled checks a 429 OperationOutcome with a Retry-After in whole seconds.
func wantThrottled(t *testing.T, res response) {
	t.Helper()
	wantOutcome(t, res, http.StatusTooManyRequests, "throttled")
	if s, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", res.header.Get("Retry-After"))
	}
}

// TestPatientRateLimit: a patient's consent writes beyond the burst within the window
// get 429 and are not submitted; the limit is the patient's (another patient writes
// on), and it refills with time.
func TestPatientRateLimit(t *testing.T) {
	clk := &clock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	e := newEnv(t, api.Config{Now: clk.Now, Limits: api.Limits{PatientRate: 2, PatientBurst: 3}})
	key := consenttest.NewKey("alice")
	treat := fixture(t, "optin-treat-bayside.json")
	write := func(k *consenttest.Key, c []byte) response {
		p := e.prepare("/fhir/Consent/$prepare", c)
		return e.do(req{method: "POST", path: "/fhir/Consent", body: bytes.NewReader(parametersJSON(t, c, p.body, sign(t, k, p.body)))})
	}
	for i := range 3 {
		wantResource(t, write(key, treat), http.StatusCreated, "Consent")
		_ = i
	}
	submitted := e.f.count("SubmitTx")
	wantThrottled(t, write(key, treat))
	if e.f.count("SubmitTx") != submitted || len(e.f.consentsOf(alice)) != 3 {
		t.Errorf("a write over the limit reached the chain: %d submits, %d consents", e.f.count("SubmitTx"), len(e.f.consentsOf(alice)))
	}

	// A revocation is a write too.
	var cid consent.ConsentID
	for _, c := range e.f.consentsOf(alice) {
		cid = c.ID
	}
	p := e.prepare("/fhir/Consent/"+string(cid)+"/$revoke-prepare?patient="+alice, nil)
	wantThrottled(t, e.do(req{method: "POST", path: "/fhir/Consent/" + string(cid) + "/$revoke?patient=" + alice,
		body: bytes.NewReader(parametersJSON(t, nil, p.body, sign(t, key, p.body)))}))
	if must(e.f.chain.Consent(cid)).Revoked != 0 {
		t.Errorf("a revocation over the limit was applied")
	}

	// Another patient is not limited by alice's writes.
	bob := consenttest.NewKey("bob")
	bobConsent := bytes.ReplaceAll(treat, []byte(alice), []byte(consent.PatientIDOf(bob.Public())))
	wantResource(t, write(bob, bobConsent), http.StatusCreated, "Consent")

	// Half a minute later alice has a token again (2 a minute), and one only.
	clk.add(30 * time.Second)
	wantResource(t, write(key, treat), http.StatusCreated, "Consent")
	wantThrottled(t, write(key, treat))
}

// TestClientRateLimit: one client's anonymous consent operations and tx lookups beyond
// its burst get 429 before anything is read or asked of the backend.
func TestClientRateLimit(t *testing.T) {
	clk := &clock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	e := newEnv(t, api.Config{Now: clk.Now, Limits: api.Limits{ClientRate: 60, ClientBurst: 4}})
	treat := fixture(t, "optin-treat-bayside.json")
	for range 4 {
		e.prepare("/fhir/Consent/$prepare", treat)
	}
	bodies := e.f.count("NewBody")
	for _, path := range []string{"/fhir/Consent/$prepare", "/fhir/Consent",
		"/fhir/Consent/" + strings.Repeat("ab", 16) + "/$revoke-prepare?patient=" + alice,
		"/fhir/Consent/" + strings.Repeat("ab", 16) + "/$revoke?patient=" + alice} {
		wantThrottled(t, e.do(req{method: "POST", path: path, body: bytes.NewReader(treat)}))
	}
	// A tx lookup is anonymous and scans the mempool: the same client's rate.
	wantThrottled(t, e.do(req{method: "GET", path: "/tx/" + strings.Repeat("ab", 32)}))
	if e.f.count("NewBody") != bodies || e.f.mutations() != 0 {
		t.Errorf("a throttled request reached the backend")
	}
	// Staff endpoints are not the anonymous ones: not limited here.
	if res := e.do(req{method: "GET", path: "/fhir/Consent?patient=" + alice, role: api.RoleAdmin}); res.status == http.StatusTooManyRequests {
		t.Errorf("a staff read was throttled")
	}
	clk.add(time.Second)
	e.prepare("/fhir/Consent/$prepare", treat)
}

// TestConnLimit: the server never holds more connections than its limit; idle
// keep-alive connections make room for new clients, and slow clients' slots are freed
// by the read timeout so that a later client is served.
func TestConnLimit(t *testing.T) {
	f := newFake(t)
	e, counted := newServedEnv(t, f, f, api.Config{Limits: api.Limits{MaxConns: 4, ReadTimeout: 500 * time.Millisecond}})

	// Four keep-alive clients, each idle after a request; a fifth is served.
	for range 5 {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 20 * time.Second}
		t.Cleanup(c.CloseIdleConnections)
		res, err := c.Get(e.srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %d", res.StatusCode)
		}
	}

	// Eight slow bodies: four hold the slots, four wait; then a healthy request.
	start := time.Now()
	for range 8 {
		slowBody(t, addrOf(e))
	}
	res, err := (&http.Client{Timeout: 20 * time.Second}).Get(e.srv.URL + "/healthz")
	if err != nil {
		t.Fatalf("no answer while slow clients held the slots: %v", err)
	}
	res.Body.Close()
	t.Logf("healthz behind 8 slow bodies and 4 slots: %v", time.Since(start).Round(time.Millisecond))
	if p := counted.peak.Load(); p > 4 {
		t.Errorf("the server held %d connections at once, limit 4", p)
	}
}

func TestLimitsValidate(t *testing.T) {
	var l api.Limits
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if l.RequestTimeout != api.DefaultRequestTimeout || l.WriteTimeout <= l.RequestTimeout || l.ReadHeaderTimeout > l.ReadTimeout || l.MaxConns != api.DefaultMaxConns {
		t.Errorf("defaults %+v", l)
	}
	short := api.Limits{ReadTimeout: time.Second}
	if err := short.Validate(); err != nil || short.ReadHeaderTimeout != time.Second {
		t.Errorf("a short read timeout: %v, header timeout %v", err, short.ReadHeaderTimeout)
	}
	for _, bad := range []api.Limits{
		{RequestTimeout: -time.Second},
		{MaxConns: -1},
		{RequestTimeout: time.Minute, WriteTimeout: time.Minute},
		{ReadTimeout: time.Second, ReadHeaderTimeout: 2 * time.Second},
		{PatientBurst: -5},
	} {
		if err := bad.Validate(); !errors.Is(err, api.ErrLimits) {
			t.Errorf("%+v: %v, want ErrLimits", bad, err)
		}
	}
	if _, err := api.New(newFake(t), api.Config{Limits: api.Limits{ClientRate: -1}}); !errors.Is(err, api.ErrLimits) {
		t.Errorf("New took a negative rate: %v", err)
	}
}

// TestConnLimitBudget: the connection limit is at most half the open-file limit.
func TestConnLimitBudget(t *testing.T) {
	if got := api.ConnLimit(10); got != 10 {
		t.Errorf("ConnLimit(10) = %d", got)
	}
	huge := api.ConnLimit(1 << 40)
	if huge >= 1<<40 {
		t.Fatalf("ConnLimit ignores the open-file limit: %d", huge)
	}
	t.Logf("ConnLimit with no maximum: %d", huge)
}
