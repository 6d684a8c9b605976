package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/web"
)

// identityOnly is a Backend that knows only its identity: enough to sign in, and
// any other call would panic (so a test proves no data was read).
type identityOnly struct{ api.Backend }

func (identityOnly) Identity() api.Identity {
	return api.Identity{Hospital: "ada", Name: "Ada General Hospital", ChainID: "medledger-test"}
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func pages(t *testing.T, cfg web.Config) string {
	t.Helper()
	cfg.API = http.NotFoundHandler()
	s, err := web.New(identityOnly{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

// signedIn reports whether c's session is live (GET /app/session names a patient).
func signedIn(c *client) bool {
	_, body := c.do(http.MethodGet, "/app/session", nil)
	return strings.Contains(body, `"patient"`)
}

// TestSessionExpiry: a session ends after IdleTimeout unused and after MaxLife
// however used; an ended session's requests are refused (401) before anything is
// read.
func TestSessionExpiry(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	base := pages(t, web.Config{Now: clk.Now, IdleTimeout: 30 * time.Minute, MaxLife: time.Hour})

	idle := newClient(t, base)
	if status, body := idle.signIn(newKey(t), "", ""); status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	busy := newClient(t, base)
	if status, body := busy.signIn(newKey(t), "", ""); status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	for range 2 {
		clk.advance(20 * time.Minute)
		if !signedIn(busy) {
			t.Fatalf("a session used every 20 minutes ended before its maximum life")
		}
	}
	if signedIn(idle) {
		t.Errorf("a session unused for 40 minutes (idle timeout 30) is still live")
	}
	status, body := idle.do(http.MethodGet, "/app/api/consents", nil)
	wantRefused(t, "an idle session's request", status, body, http.StatusUnauthorized)
	clk.advance(21 * time.Minute)
	if signedIn(busy) {
		t.Errorf("a session 61 minutes old (maximum life 60) is still live")
	}
}

// TestSessionLimit: past MaxSessions live sessions, a sign-in is refused (503)
// until one ends.
func TestSessionLimit(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	base := pages(t, web.Config{Now: clk.Now, MaxSessions: 2})
	for range 2 {
		if status, body := newClient(t, base).signIn(newKey(t), "", ""); status != http.StatusOK {
			t.Fatalf("sign-in: %d %s", status, body)
		}
	}
	status, body := newClient(t, base).signIn(newKey(t), "", "")
	wantRefused(t, "a sign-in past the limit", status, body, http.StatusServiceUnavailable)
	clk.advance(web.DefaultIdleTimeout + time.Second)
	if status, body := newClient(t, base).signIn(newKey(t), "", ""); status != http.StatusOK {
		t.Errorf("a sign-in once the others expired: %d %s", status, body)
	}
}
