package api_test

import (
	"errors"
	"testing"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/node/api"
)

// The fake cannot drift from the chain: it has no rules of its own, so what the chain
// refuses, it refuses with the chain's code — a grant signed by another key than the
// patient's, a revocation that reuses a nonce, the same tx twice, a tx for another
// chain, a review by a hospital that neither requested nor holds the record — and
// changes nothing.
func TestFakeIsTheChain(t *testing.T) {
	e := newEnv(t, api.Config{})
	c := e.f.chain
	submit := func(body consent.Body, k *consenttest.Key) error {
		_, err := e.f.SubmitTx(t.Context(), c.Sign(body, k))
		return err
	}
	grant := func(p consent.PatientID) consent.Body {
		return consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: p, Policy: permits("bayside", "TREAT")}}
	}
	wantCode := func(name string, err error, code consent.Code) {
		t.Helper()
		var rej *consent.Rejection
		if !errors.As(err, &rej) || rej.Code != code {
			t.Errorf("%s: %v, want the chain's code %d", name, err, code)
		}
	}

	wantCode("a grant signed by bob for alice", submit(grant(aliceKey.Patient()), bobKey), consent.CodeUnauthorized)

	nonce := []byte("0123456789abcdef")
	first := grant(aliceKey.Patient())
	first.Nonce, first.Expiry = nonce, 50
	ok(t, submit(first, aliceKey))
	cid := e.f.consentsOf(alice)[0].ID
	revoke := consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: cid}, Nonce: nonce, Expiry: 50}
	wantCode("a revocation reusing the grant's nonce", submit(revoke, aliceKey), consent.CodeReplay)
	if must(c.Consent(cid)).Revoked != 0 {
		t.Error("a refused revocation revoked the consent")
	}

	tx := c.Sign(grant(aliceKey.Patient()), aliceKey)
	must(e.f.SubmitTx(t.Context(), tx))
	_, err := e.f.SubmitTx(t.Context(), tx)
	wantCode("the same grant twice", err, consent.CodeReplay)

	other := grant(aliceKey.Patient())
	other.ChainID = "another-chain"
	wantCode("a grant for another chain", submit(other, aliceKey), consent.CodeChainID)

	rec := e.ingest() // held by bayside
	em := must(c.Emergency("bayside", rec, "life-threatening"))
	_, _, err = c.Review("city", em.ID, "justified")
	wantCode("a review by city of bayside's emergency", err, consent.CodeUnauthorized)

	if n := len(e.f.consentsOf(alice)); n != 2 {
		t.Errorf("alice has %d consents, want the 2 accepted", n)
	}
}
