package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/web"
)

const officerToken = "the-officer's-token"

// officerConfig is a Config whose one token is an officer's, on the clock clk.
func officerConfig(clk *clock, api_ http.Handler) web.Config {
	return web.Config{API: api_, Now: clk.Now, Tokens: []api.Token{{Role: api.RolePrivacyOfficer, SHA256: api.HashToken(officerToken)}}}
}

// signInOfficer signs o in as the officer: the status and body.
func signInOfficer(o *client) (int, string) {
	status, body := o.do(http.MethodPost, "/audit-app/session", map[string]string{"token": officerToken})
	var who struct{ CSRF string }
	json.Unmarshal([]byte(body), &who)
	o.csrf = who.CSRF
	return status, body
}

// TestSessionPoolsApart: patients filling their pool of sessions do not lock the
// officer out: the officers' pool is its own.
func TestSessionPoolsApart(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	cfg := officerConfig(clk, http.NotFoundHandler())
	cfg.MaxSessions = 2
	s, err := web.New(identityOnly{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	for range 2 {
		if status, body := newClient(t, srv.URL).signIn(newKey(t), "", ""); status != http.StatusOK {
			t.Fatalf("sign-in: %d %s", status, body)
		}
	}
	status, body := newClient(t, srv.URL).signIn(newKey(t), "", "")
	wantRefused(t, "a patient sign-in past the patients' limit", status, body, http.StatusServiceUnavailable)
	if status, body := signInOfficer(newClient(t, srv.URL)); status != http.StatusOK {
		t.Errorf("the officer's sign-in with the patients' pool full: %d %s", status, body)
	}
}

// TestSignInReplaces: a new sign-in with the same key ends that key's earlier
// session, so signing in again and again holds one session.
func TestSignInReplaces(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	base := pages(t, web.Config{Now: clk.Now, MaxSessions: 1})
	key := newKey(t)
	first := newClient(t, base)
	if status, body := first.signIn(key, "", ""); status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	second := newClient(t, base)
	if status, body := second.signIn(key, "", ""); status != http.StatusOK {
		t.Fatalf("the same key's second sign-in (limit 1): %d %s", status, body)
	}
	if signedIn(first) {
		t.Errorf("the key's earlier session is still live after it signed in again")
	}
	if !signedIn(second) {
		t.Errorf("the key's new session is not live")
	}
}

// TestSessionsPerAddress: one client address holds a bounded number of patient
// sessions (429 beyond), however many keys it signs in with.
func TestSessionsPerAddress(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	base := pages(t, web.Config{Now: clk.Now})
	n := 0
	for ; n < 100; n++ {
		clk.advance(10 * time.Second) // the sign-in allowance refills
		c := newClient(t, base)
		status, body := c.signIn(newKey(t), "", "")
		if status == http.StatusTooManyRequests {
			wantThrottled(t, "a sign-in past the address's sessions", status, body, "Too many people are signed in from this address")
			break
		}
		if status != http.StatusOK {
			t.Fatalf("sign-in %d: %d %s", n+1, status, body)
		}
	}
	if n == 0 || n == 100 {
		t.Errorf("one address signed in %d patients before a refusal", n)
	}
}

// challengeFrom asks s for a challenge as the client at addr: the status and body.
func challengeFrom(s http.Handler, addr string) (int, string) {
	req := httptest.NewRequest(http.MethodPost, "http://node.test/app/session/challenge", bytes.NewReader([]byte("{}")))
	req.RemoteAddr = addr + ":4000"
	req.Header.Set("Origin", "http://node.test")
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// TestChallengeLimits: one address holds at most a few unanswered challenges (429
// beyond), so it cannot fill the table other addresses sign in through; and its
// challenges are charged against an allowance a minute.
func TestChallengeLimits(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	s, err := web.New(identityOnly{}, web.Config{API: http.NotFoundHandler(), Now: clk.Now, MaxSessions: 8})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; n < 8; n++ {
		if status, _ := challengeFrom(s, "192.0.2.1"); status != http.StatusOK {
			break
		}
	}
	status, body := challengeFrom(s, "192.0.2.1")
	wantThrottled(t, "a challenge past the address's unanswered ones", status, body, "Too many sign-ins are under way from this address")
	if n >= 8 {
		t.Errorf("one address holds %d unanswered challenges of a table of 8", n)
	}
	if status, body := challengeFrom(s, "192.0.2.2"); status != http.StatusOK {
		t.Errorf("another address's challenge: %d %s", status, body)
	}

	// Answered challenges free their place, but the allowance a minute still bounds
	// the address: signing in again and again (one key) is refused at last.
	base := pages(t, web.Config{Now: clk.Now})
	key := newKey(t)
	c := newClient(t, base)
	refused := false
	for i := 0; i < 100 && !refused; i++ {
		status, body := c.do(http.MethodPost, "/app/session/challenge", struct{}{})
		if status == http.StatusTooManyRequests {
			wantThrottled(t, "a challenge past the address's allowance", status, body, "try again in")
			refused = true
			break
		}
		var ch struct{ Challenge string }
		json.Unmarshal([]byte(body), &ch)
		if status, body := c.answer(key, "", "", ch.Challenge); status != http.StatusOK {
			t.Fatalf("sign-in %d: %d %s", i+1, status, body)
		}
	}
	if !refused {
		t.Errorf("100 sign-ins from one address in the same instant were all allowed")
	}
}

// follower is identityOnly whose Follow streams nothing until ctx ends.
type follower struct{ identityOnly }

func (follower) Follow(ctx context.Context, _ consent.AuditFilter) (<-chan consent.AuditEvent, error) {
	ch := make(chan consent.AuditEvent)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

// openStream opens GET path with c's cookies: the response, whose body closes
// within 30 s at most (so a stream left open cannot hang the test).
func openStream(t *testing.T, c *client, path string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// wantEnds checks res's body ends within 5 s.
func wantEnds(t *testing.T, what string, res *http.Response) {
	t.Helper()
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, res.Body); close(ended) }()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Errorf("%s is still open 5 s after sign-out", what)
	}
}

// TestStreamLimits: a session holds at most two live streams (429 beyond); a
// stream ends at sign-out at once, not at the next heartbeat (an hour here).
func TestStreamLimits(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, ": open\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	cfg := officerConfig(clk, stream)
	cfg.Heartbeat = time.Hour
	s, err := web.New(follower{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	p := newClient(t, srv.URL)
	if status, body := p.signIn(newKey(t), "", ""); status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	o := newClient(t, srv.URL)
	if status, body := signInOfficer(o); status != http.StatusOK {
		t.Fatalf("officer sign-in: %d %s", status, body)
	}
	for _, c := range []struct {
		who  *client
		path string
	}{{p, "/app/api/events"}, {o, "/audit-app/api/stream"}} {
		var open []*http.Response
		for range 2 {
			res := openStream(t, c.who, c.path)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", c.path, res.StatusCode)
			}
			open = append(open, res)
		}
		third := openStream(t, c.who, c.path)
		body, _ := io.ReadAll(io.LimitReader(third.Body, 4096))
		wantThrottled(t, "a third stream of one session", third.StatusCode, string(body), "live streams open")
		end := "/app/session/end"
		if c.who == o {
			end = "/audit-app/session/end"
		}
		if status, body := c.who.do(http.MethodPost, end, struct{}{}); status/100 != 2 {
			t.Fatalf("sign-out: %d %s", status, body)
		}
		for _, res := range open {
			wantEnds(t, c.path, res)
		}
	}
}

// entries is identityOnly that serves one empty access-log entry.
type entries struct{ identityOnly }

func (entries) LogEntry(context.Context, uint64) (*consent.LogEntry, error) {
	return &consent.LogEntry{}, nil
}

// TestProofProblemHidden: when an event's proof cannot be checked for a reason of
// the node's own, the page is told so in a fixed sentence — never the error, which
// may name the node's internal RPC address or files — and the node's log has it.
func TestProofProblemHidden(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	cfg := officerConfig(clk, http.NotFoundHandler())
	var logged bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	cfg.RPC, cfg.GenesisFile = "tcp://127.0.0.1:1", filepath.Join(t.TempDir(), "secret-genesis.json")
	s, err := web.New(entries{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	o := newClient(t, srv.URL)
	if status, body := signInOfficer(o); status != http.StatusOK {
		t.Fatalf("officer sign-in: %d %s", status, body)
	}
	status, body := o.do(http.MethodPost, "/audit-app/api/entry", map[string]uint64{"index": 0})
	var got struct {
		Proof struct {
			Verified bool
			Problem  string
		}
	}
	if err := json.Unmarshal([]byte(body), &got); status != http.StatusOK || err != nil {
		t.Fatalf("entry: %d %s", status, body)
	}
	if got.Proof.Verified || !strings.Contains(got.Proof.Problem, "could not be fetched or checked") ||
		strings.Contains(got.Proof.Problem, "secret-genesis") || strings.Contains(got.Proof.Problem, "127.0.0.1") {
		t.Errorf("the page's proof problem is %q, want the fixed sentence", got.Proof.Problem)
	}
	if !strings.Contains(logged.String(), "secret-genesis") {
		t.Errorf("the node's log does not say why the proof was not checked:\n%s", logged.String())
	}
}
