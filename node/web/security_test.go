package web_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/nodetest"
	"github.com/medledger/medledger/node/web"
)

// client is a browser as the node sees it: a cookie jar, the page's Origin and the
// session's CSRF token, speaking to one node's pages over HTTP.
type client struct {
	t      *testing.T
	base   string
	http   *http.Client
	origin string
	csrf   string
	header http.Header // the last answer's
}

func newClient(t *testing.T, base string) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: base, http: &http.Client{Jar: jar}, origin: base}
}

// do sends method path with body as JSON (nil: none) and returns status and body.
func (c *client) do(method, path string, body any, edit ...func(*http.Request)) (int, string) {
	c.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", c.origin)
		req.Header.Set("X-CSRF-Token", c.csrf)
		req.Header.Set("Content-Type", "application/json")
	}
	for _, e := range edit {
		e(req)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	c.header = res.Header
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// reqURL is the node's URL, for the cookie jar.
func (c *client) reqURL() *url.URL {
	u, err := url.Parse(c.base + "/app/")
	if err != nil {
		c.t.Fatal(err)
	}
	return u
}

// signIn signs in as the patient whose key signs, claiming patient (the key's own
// when ""), for the origin given (the node's when ""): the status and body.
func (c *client) signIn(key ed25519.PrivateKey, patient consent.PatientID, origin string) (int, string) {
	c.t.Helper()
	status, body := c.do(http.MethodPost, "/app/session/challenge", struct{}{})
	if status != http.StatusOK {
		c.t.Fatalf("challenge: %d %s", status, body)
	}
	var ch struct{ Challenge string }
	json.Unmarshal([]byte(body), &ch)
	return c.answer(key, patient, origin, ch.Challenge)
}

func (c *client) answer(key ed25519.PrivateKey, patient consent.PatientID, origin, challenge string) (int, string) {
	c.t.Helper()
	if patient == "" {
		patient = consent.PatientIDOf(key.Public().(ed25519.PublicKey))
	}
	if origin == "" {
		origin = c.base
	}
	var info struct {
		ChainID string `json:"chain_id"`
	}
	_, body := c.do(http.MethodGet, "/app/api/info", nil)
	json.Unmarshal([]byte(body), &info)
	sig := ed25519.Sign(key, web.SignInMessage(info.ChainID, origin, challenge))
	status, body := c.do(http.MethodPost, "/app/session", map[string]string{
		"patient": string(patient), "challenge": challenge, "signature": base64.StdEncoding.EncodeToString(sig)})
	if status == http.StatusOK {
		var who struct{ CSRF string }
		json.Unmarshal([]byte(body), &who)
		c.csrf = who.CSRF
	}
	return status, body
}

func newKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// wantRefused checks an answer is the status with an OperationOutcome saying why.
func wantRefused(t *testing.T, what string, status int, body string, want int) {
	t.Helper()
	if status != want || !strings.Contains(body, `"resourceType":"OperationOutcome"`) {
		t.Errorf("%s: %d %s, want %d with an OperationOutcome", what, status, body, want)
	}
}

// TestPagesRefuse: through a real node, a page signs in only with the right key on a
// fresh challenge for this origin; a forged or ended session, a cross-site POST, a
// POST without the session's CSRF token, and one patient acting on another's data
// are refused with an OperationOutcome and change nothing; the officer's page takes
// only an officer's token and session; every answer carries the strict CSP; the
// node's logs never name the patient.
func TestPagesRefuse(t *testing.T) {
	net := nodetest.StartConsortium(t, 1)
	ada := net.Nodes[0]
	alice, bob := newKey(t), newKey(t)
	aliceID := consent.PatientIDOf(alice.Public().(ed25519.PublicKey))

	c := newClient(t, ada.APIURL())
	status, body := c.signIn(bob, aliceID, "")
	wantRefused(t, "bob's key for alice", status, body, http.StatusUnauthorized)
	status, body = c.signIn(alice, "", "http://evil.example")
	wantRefused(t, "a signature for another origin", status, body, http.StatusUnauthorized)
	_, chBody := c.do(http.MethodPost, "/app/session/challenge", struct{}{})
	var ch struct{ Challenge string }
	json.Unmarshal([]byte(chBody), &ch)
	if status, body := c.answer(alice, "", "", ch.Challenge); status != http.StatusOK {
		t.Fatalf("alice's sign-in: %d %s", status, body)
	}
	status, body = c.answer(alice, "", "", ch.Challenge)
	wantRefused(t, "a challenge answered twice", status, body, http.StatusUnauthorized)

	// Alice grants through her session.
	grant := map[string]any{"hospitals": []string{"ada"}, "purposes": []string{"TREAT"}}
	submit := func(c *client, key ed25519.PrivateKey, prep string) (int, string) {
		var p struct{ Body string }
		json.Unmarshal([]byte(prep), &p)
		raw, _ := base64.StdEncoding.DecodeString(p.Body)
		return c.do(http.MethodPost, "/app/api/submit", map[string]string{"body": p.Body,
			"signature": base64.StdEncoding.EncodeToString(ed25519.Sign(key, raw))})
	}
	status, prep := c.do(http.MethodPost, "/app/api/grant/prepare", grant)
	if status != http.StatusOK {
		t.Fatalf("prepare: %d %s", status, prep)
	}
	if status, body := submit(c, alice, prep); status != http.StatusOK {
		t.Fatalf("submit: %d %s", status, body)
	}
	cons := consents(t, ada, aliceID)

	// Refused, changing nothing: a forged session, a cross-site POST, a POST without
	// the CSRF token or Origin.
	forged := newClient(t, ada.APIURL())
	forged.http.Jar.SetCookies(c.reqURL(), []*http.Cookie{{Name: "medledger_patient", Value: "forged", Path: "/app/"}})
	status, body = forged.do(http.MethodGet, "/app/api/records", nil)
	wantRefused(t, "a forged session", status, body, http.StatusUnauthorized)
	for name, edit := range map[string]func(*http.Request){
		"another origin":         func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") },
		"no origin":              func(r *http.Request) { r.Header.Del("Origin") },
		"a cross-site fetch":     func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
		"no CSRF token":          func(r *http.Request) { r.Header.Del("X-CSRF-Token") },
		"another session's CSRF": func(r *http.Request) { r.Header.Set("X-CSRF-Token", otherToken(c.csrf)) },
	} {
		status, body := c.do(http.MethodPost, "/app/api/grant/prepare", grant, edit)
		wantRefused(t, name, status, body, http.StatusForbidden)
	}
	if got := consents(t, ada, aliceID); len(got) != len(cons) {
		t.Errorf("refused requests changed alice's consents: %d, then %d", len(cons), len(got))
	}

	// Bob, signed in, sees and changes nothing of Alice's.
	b := newClient(t, ada.APIURL())
	if status, body := b.signIn(bob, "", ""); status != http.StatusOK {
		t.Fatalf("bob's sign-in: %d %s", status, body)
	}
	if _, body := b.do(http.MethodGet, "/app/api/consents", nil); body != "[]" {
		t.Errorf("bob's consents: %s, want none", body)
	}
	for _, path := range []string{"/app/api/records", "/app/api/activity", "/app/api/accounting?format=json"} {
		if _, body := b.do(http.MethodGet, path, nil); strings.Contains(body, string(aliceID)) {
			t.Errorf("bob's %s names alice: %s", path, body)
		}
	}
	status, body = b.do(http.MethodPost, "/app/api/revoke/prepare", map[string]string{"consent": string(cons[0].ID)})
	wantRefused(t, "bob revoking alice's consent", status, body, http.StatusNotFound)
	status, body = submit(b, alice, prep) // alice's own signed grant, through bob's session
	wantRefused(t, "alice's grant in bob's session", status, body, http.StatusBadRequest)
	aliceBody := forPatient(t, ada, aliceID)
	status, body = submit(b, bob, aliceBody) // a grant naming alice, signed by bob
	wantRefused(t, "bob granting for alice", status, body, http.StatusForbidden)
	if got := consents(t, ada, aliceID); len(got) != len(cons) {
		t.Errorf("bob changed alice's consents: %d, then %d", len(cons), len(got))
	}

	// The officer's page: an officer's token only, and an officer's session only.
	tokens, err := node.ReadTokens(net.Homes[0])
	if err != nil {
		t.Fatal(err)
	}
	status, body = c.do(http.MethodGet, "/audit-app/api/emergencies", nil)
	wantRefused(t, "a patient's session on the officer's page", status, body, http.StatusUnauthorized)
	o := newClient(t, ada.APIURL())
	status, body = o.do(http.MethodPost, "/audit-app/session", map[string]string{"token": tokens["clinician"]})
	wantRefused(t, "a clinician's token on the officer's page", status, body, http.StatusUnauthorized)
	if status, body := o.do(http.MethodPost, "/audit-app/session", map[string]string{"token": tokens["privacy-officer"]}); status != http.StatusOK {
		t.Fatalf("officer sign-in: %d %s", status, body)
	}
	status, body = o.do(http.MethodPost, "/audit-app/api/events", map[string]string{"patient": string(aliceID)})
	wantRefused(t, "an officer's POST without the CSRF token", status, body, http.StatusForbidden)

	// Headers.
	for _, path := range []string{"/app/", "/app/app.js", "/audit-app/", "/app/api/info", "/app/nothing.js"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ada.APIURL()+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	sessionCookie(t, ada.APIURL(), alice)

	if logs := net.Logs.String(); strings.Contains(logs, string(aliceID)) {
		t.Errorf("the node's logs name the patient")
	}
}

// sessionCookie checks the patient's session cookie: HttpOnly, SameSite=Strict, a
// lifetime, its page's path, not Secure over plain HTTP.
func sessionCookie(t *testing.T, base string, key ed25519.PrivateKey) {
	t.Helper()
	c := newClient(t, base)
	status, body := c.do(http.MethodPost, "/app/session/challenge", struct{}{})
	var ch struct{ Challenge string }
	json.Unmarshal([]byte(body), &ch)
	var info struct {
		ChainID string `json:"chain_id"`
	}
	_, ib := c.do(http.MethodGet, "/app/api/info", nil)
	json.Unmarshal([]byte(ib), &info)
	sig := ed25519.Sign(key, web.SignInMessage(info.ChainID, base, ch.Challenge))
	in, _ := json.Marshal(map[string]string{"patient": string(consent.PatientIDOf(key.Public().(ed25519.PublicKey))),
		"challenge": ch.Challenge, "signature": base64.StdEncoding.EncodeToString(sig)})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/app/session", bytes.NewReader(in))
	req.Header.Set("Origin", base)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var got *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "medledger_patient" {
			got = ck
		}
	}
	if status != http.StatusOK || res.StatusCode != http.StatusOK || got == nil || !got.HttpOnly || got.SameSite != http.SameSiteStrictMode || got.Secure ||
		got.Path != "/app/" || got.MaxAge <= 0 {
		t.Errorf("session cookie: %+v (status %d)", got, status)
	}
}

// consents are the patient's consents on the chain.
func consents(t *testing.T, nd *node.Node, p consent.PatientID) []consent.Consent {
	t.Helper()
	cs, err := nd.Consents(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// forPatient is a prepared grant body naming patient p, as the page's prepare
// answers it ({"body": base64}), built here (no session of p's prepared it).
func forPatient(t *testing.T, nd *node.Node, p consent.PatientID) string {
	t.Helper()
	body, err := nd.NewBody(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	body.Kind, body.Grant = consent.KindGrant, &consent.Grant{Patient: p, Policy: consent.Policy{Base: consent.Deny,
		Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"ada"}}}}}
	enc, err := consent.EncodeBody(body)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(map[string]string{"body": base64.StdEncoding.EncodeToString(enc)})
	return string(out)
}

// otherToken is tok with its first character changed (to one it is not: a fixed
// replacement would leave the token as it was whenever it already began with it).
func otherToken(tok string) string {
	if strings.HasPrefix(tok, "x") {
		return "y" + tok[1:]
	}
	return "x" + tok[1:]
}
