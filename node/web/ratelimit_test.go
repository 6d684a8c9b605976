package web_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/web"
)

// committer is identityOnly that also commits whatever is submitted, counting it.
type committer struct {
	identityOnly
	mu sync.Mutex
	n  int
}

func (c *committer) SubmitTx(context.Context, []byte) (*api.Committed, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return &api.Committed{ID: consent.TxID(fmt.Sprintf("%064x", c.n)), Height: int64(c.n)}, nil
}

func (c *committer) submitted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// signedGrant is a grant by key's patient on the identityOnly chain, signed, as the
// page submits it.
func signedGrant(t *testing.T, key ed25519.PrivateKey) map[string]string {
	t.Helper()
	patient := consent.PatientIDOf(key.Public().(ed25519.PublicKey))
	body, err := consent.NewBody(identityOnly{}.Identity().ChainID, 100)
	if err != nil {
		t.Fatal(err)
	}
	body.Kind, body.Grant = consent.KindGrant, &consent.Grant{Patient: patient, Policy: consent.Policy{Base: consent.Deny,
		Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"ada"}, Purposes: []consent.Purpose{"TREAT"}}}}}
	enc, err := consent.EncodeBody(body)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"body": base64.StdEncoding.EncodeToString(enc),
		"signature": base64.StdEncoding.EncodeToString(ed25519.Sign(key, enc))}
}

// limited is a settable clock and the rate limits l on it.
func limited(t *testing.T, l api.Limits) (*clock, *api.RateLimits) {
	t.Helper()
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	rate, err := api.NewRateLimits(l, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return clk, rate
}

// wantThrottled checks a 429 whose OperationOutcome says text.
func wantThrottled(t *testing.T, what string, status int, body, text string) {
	t.Helper()
	wantRefused(t, what, status, body, http.StatusTooManyRequests)
	if !strings.Contains(body, text) {
		t.Errorf("%s: %s, want it to say %q", what, body, text)
	}
}

// TestPagesRateLimits: a patient's consent changes through the page count against
// the same per-patient and per-address limits as the API's anonymous consent
// operations — the very same allowances, shared with the API — and the session's
// own limit; over any, 429 with a sentence saying why, and nothing is submitted.
func TestPagesRateLimits(t *testing.T) {
	clk, rate := limited(t, api.Limits{ClientRate: 1, ClientBurst: 5, PatientRate: 1, PatientBurst: 2})
	b := &committer{}
	apiHandler, err := api.New(b, api.Config{Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", apiHandler)
	if err := web.Mount(mux, b, web.Config{API: apiHandler, Rate: rate, Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	signedIn := func(key ed25519.PrivateKey) *client {
		c := newClient(t, srv.URL)
		if status, body := c.signIn(key, "", ""); status != http.StatusOK {
			t.Fatalf("sign-in: %d %s", status, body)
		}
		return c
	}
	// Alice: her patient allowance (2) is spent; the third change is refused.
	alice := newKey(t)
	a := signedIn(alice)
	for i := range 2 {
		if status, body := a.do(http.MethodPost, "/app/api/submit", signedGrant(t, alice)); status != http.StatusOK {
			t.Fatalf("alice's change %d: %d %s", i+1, status, body)
		}
	}
	status, body := a.do(http.MethodPost, "/app/api/submit", signedGrant(t, alice))
	wantThrottled(t, "alice's third change", status, body, "too many consent changes for this patient; try again in 60 s")
	// Bob, from the same address, has his own patient allowance: two changes, which
	// spend the address's (5: alice's three requests and these two).
	bob := newKey(t)
	bb := signedIn(bob)
	for i := range 2 {
		if status, body := bb.do(http.MethodPost, "/app/api/submit", signedGrant(t, bob)); status != http.StatusOK {
			t.Fatalf("bob's change %d: %d %s", i+1, status, body)
		}
	}
	carol := newKey(t)
	status, body = signedIn(carol).do(http.MethodPost, "/app/api/submit", signedGrant(t, carol))
	wantThrottled(t, "a third patient's change from the spent address", status, body, "too many consent requests from this address")
	status, body = bb.do(http.MethodPost, "/app/api/grant/prepare", map[string]any{"hospitals": []string{"ada"}, "purposes": []string{"TREAT"}})
	wantThrottled(t, "a consent prepared from the spent address", status, body, "too many consent requests from this address")
	// The API spends the same allowance: its anonymous $prepare from this address is
	// refused too.
	status, body = bb.do(http.MethodPost, "/fhir/Consent/$prepare", map[string]string{"resourceType": "Consent"})
	wantThrottled(t, "the API's $prepare from the address the page spent", status, body, "too many consent requests from this address")
	if n := b.submitted(); n != 4 {
		t.Errorf("%d changes submitted, want the 4 allowed", n)
	}

	// A minute later every bucket has a token again.
	clk.advance(time.Minute)
	if status, body := a.do(http.MethodPost, "/app/api/submit", signedGrant(t, alice)); status != http.StatusOK {
		t.Errorf("alice's change a minute later: %d %s", status, body)
	}
}

// TestPagesSessionWriteLimit: past its own limit of consent changes a minute, a
// session is refused (429, in a sentence) even with patient and address allowances
// to spare.
func TestPagesSessionWriteLimit(t *testing.T) {
	clk, rate := limited(t, api.Limits{ClientRate: 1000, ClientBurst: 1000, PatientRate: 1000, PatientBurst: 1000})
	b := &committer{}
	s, err := web.New(b, web.Config{API: http.NotFoundHandler(), Rate: rate, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	key := newKey(t)
	c := newClient(t, srv.URL)
	if status, body := c.signIn(key, "", ""); status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	n := 0
	for ; n < 100; n++ {
		status, body := c.do(http.MethodPost, "/app/api/submit", signedGrant(t, key))
		if status == http.StatusTooManyRequests {
			wantThrottled(t, "a change past the session's limit", status, body, "You have changed your consents many times in the last minute.")
			break
		}
		if status != http.StatusOK {
			t.Fatalf("change %d: %d %s", n+1, status, body)
		}
	}
	if n == 0 || n == 100 || b.submitted() != n {
		t.Errorf("the session made %d changes (%d submitted) before a refusal", n, b.submitted())
	}
}
