package web_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/medledger/medledger/node/web"
)

const public = "https://records.example.org"

// TestParseOrigin: an origin is scheme://host[:port] as a browser serializes it;
// anything else is refused.
func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://records.example.org":       "https://records.example.org",
		"HTTPS://Records.Example.ORG":       "https://records.example.org",
		"https://records.example.org:443":   "https://records.example.org",
		"http://records.example.org:80":     "http://records.example.org",
		"https://records.example.org:8443":  "https://records.example.org:8443",
		"http://127.0.0.1:8080":             "http://127.0.0.1:8080",
		"https://[::1]:8443":                "https://[::1]:8443",
		"https://[::1]":                     "https://[::1]",
		"https://xn--bcher-kva.example":     "https://xn--bcher-kva.example",
		"https://records.example.org/":      "",
		"https://records.example.org/app/":  "",
		"https://records.example.org?x=1":   "",
		"https://records.example.org?":      "",
		"https://records.example.org#top":   "",
		"https://records.example.org#":      "",
		"https://user@records.example.org":  "",
		"ftp://records.example.org":         "",
		"records.example.org":               "",
		"//records.example.org":             "",
		"https://":                          "",
		"https://records.example.org:0":     "",
		"https://records.example.org:65536": "",
		"https://records.example.org:https": "",
		"https://*.example.org":             "",
		"https://bücher.example":            "",
		"https://records.example.org.":      "",
		" https://records.example.org":      "",
		"https:records.example.org":         "",
	} {
		got, err := web.ParseOrigin(in)
		if want == "" {
			if !errors.Is(err, web.ErrOrigin) {
				t.Errorf("ParseOrigin(%q) = %q, %v; want ErrOrigin", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := web.New(identityOnly{}, web.Config{API: http.NotFoundHandler(), PublicOrigin: public + "/"}); err == nil {
		t.Errorf("web.New took a public origin with a path")
	}
}

// sessionCookieOf is the cookie named name that c's last answer set, or nil.
func sessionCookieOf(c *client, name string) *http.Cookie {
	for _, ck := range (&http.Response{Header: c.header}).Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// TestPublicOrigin: behind a TLS-terminating proxy the node is reached over plain
// HTTP at the proxy's Host, but the pages' origin is the configured public origin: a
// POST from it is admitted and one from the request's own origin refused; a patient
// signs in over the public origin, never the request's; cookies are Secure (an https
// origin) although the hop is plain HTTP; X-Forwarded-* headers change nothing.
func TestPublicOrigin(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	cfg := officerConfig(clk, nil)
	cfg.PublicOrigin = "HTTPS://Records.Example.org:443" // put in the browser's form
	base := pages(t, cfg)

	own := newClient(t, base) // the Origin the node would derive from the request
	status, body := own.do(http.MethodPost, "/app/session/challenge", struct{}{})
	wantRefused(t, "a POST from the request's own origin", status, body, http.StatusForbidden)
	status, body = own.do(http.MethodPost, "/audit-app/session", map[string]string{"token": officerToken})
	wantRefused(t, "an officer's sign-in from the request's own origin", status, body, http.StatusForbidden)

	c := newClient(t, base)
	c.origin = public
	status, body = c.do(http.MethodPost, "/app/session/challenge", struct{}{}, func(r *http.Request) {
		r.Header.Set("Sec-Fetch-Site", "cross-site")
	})
	wantRefused(t, "a cross-site POST from the public origin", status, body, http.StatusForbidden)
	key := newKey(t)
	status, body = c.signIn(key, "", base)
	wantRefused(t, "a sign-in signed over the request's own origin", status, body, http.StatusUnauthorized)
	if status, body := c.signIn(key, "", public); status != http.StatusOK {
		t.Fatalf("a sign-in signed over the public origin: %d %s", status, body)
	}
	ck := sessionCookieOf(c, "medledger_patient")
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("patient's session cookie over a plain-HTTP hop to an https origin: %+v, want Secure", ck)
	}

	// The jar keeps a Secure cookie off plain HTTP, as a browser would: send it as the
	// proxy would pass it on.
	withCookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value}) }
	status, body = c.do(http.MethodPost, "/app/session/end", nil, withCookie, func(r *http.Request) { r.Header.Set("Origin", base) })
	wantRefused(t, "a session's POST from the request's own origin", status, body, http.StatusForbidden)
	if status, body := c.do(http.MethodPost, "/app/session/end", nil, withCookie); status != http.StatusNoContent {
		t.Fatalf("sign-out from the public origin: %d %s", status, body)
	}
	if end := sessionCookieOf(c, "medledger_patient"); end == nil || !end.Secure || end.MaxAge >= 0 {
		t.Errorf("sign-out's clearing cookie: %+v, want Secure", end)
	}

	o := newClient(t, base)
	o.origin = public
	if status, body := signInOfficer(o); status != http.StatusOK {
		t.Fatalf("officer's sign-in from the public origin: %d %s", status, body)
	}
	if ck := sessionCookieOf(o, "medledger_officer"); ck == nil || !ck.Secure {
		t.Errorf("officer's session cookie: %+v, want Secure", ck)
	}
}

// TestForwardedHeadersIgnored: without a public origin, X-Forwarded-Proto and
// X-Forwarded-Host (which any client can send) do not make another origin this
// node's; with an http public origin, cookies are not Secure over plain HTTP.
func TestForwardedHeadersIgnored(t *testing.T) {
	base := pages(t, web.Config{})
	c := newClient(t, base)
	c.origin = public
	status, body := c.do(http.MethodPost, "/app/session/challenge", struct{}{}, func(r *http.Request) {
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Host", "records.example.org")
		r.Header.Set("Forwarded", "proto=https;host=records.example.org")
	})
	wantRefused(t, "a POST from a forwarded origin", status, body, http.StatusForbidden)

	const plain = "http://records.example.org:8080"
	p := newClient(t, pages(t, web.Config{PublicOrigin: plain}))
	p.origin = plain
	if status, body := p.signIn(newKey(t), "", plain); status != http.StatusOK {
		t.Fatalf("a sign-in over an http public origin: %d %s", status, body)
	}
	if ck := sessionCookieOf(p, "medledger_patient"); ck == nil || ck.Secure {
		t.Errorf("session cookie for an http public origin over plain HTTP: %+v, want not Secure", ck)
	}
}
