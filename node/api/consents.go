package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
)

// Consent endpoints. A patient grants and revokes with their own Ed25519 key, on their
// own device, so these need no bearer token: the patient's signature over the exact
// tx body is the authority, and the chain checks it. Each change is two calls:
//
//  1. $prepare (or $revoke-prepare): the node maps the request to a tx body (chain ID,
//     fresh nonce, expiry, payload) and returns its canonical bytes for the patient to
//     sign, with the signer expected;
//  2. POST /fhir/Consent (or $revoke): the node checks that the signed body says what
//     the request says, assembles the tx with the detached signature and submits it.
//
// Nothing reaches the chain unless the signature verifies over the body and the body
// matches the request. Each operation counts against its client address's rate, and
// each write against its patient's (Limits): over either, 429 and nothing submitted.

func (s *server) resourceLimit() int64 { return min(s.maxBody, maxResource) }

// prepareGrant is POST /fhir/Consent/$prepare with a FHIR Consent: the grant tx body
// to sign, the patient who must sign it, and the policy as the chain will hold it, in
// the chain's form (policy) and rendered as a FHIR Consent (consent).
func (s *server) prepareGrant(w http.ResponseWriter, r *http.Request) error {
	if err := s.rate.Client(r); err != nil {
		return err
	}
	res, err := readResource(w, r, "Consent", s.resourceLimit())
	if err != nil {
		return err
	}
	g, err := s.grantNamed(r.Context(), res.Raw)
	if err != nil {
		return err
	}
	body, err := s.b.NewBody(r.Context())
	if err != nil {
		return err
	}
	body.Kind, body.Grant = consent.KindGrant, &g
	policy, err := json.Marshal(g.Policy)
	if err != nil {
		return err
	}
	rendered, err := fhirConsentOf(consent.Consent{Patient: g.Patient, Policy: g.Policy})
	if err != nil {
		return err
	}
	held, err := json.Marshal(rendered)
	if err != nil {
		return err
	}
	return s.writePrepared(w, body, g.Patient, fhir.Parameter{Name: "policy", ValueString: string(policy)},
		fhir.Parameter{Name: "consent", Resource: held})
}

// writePrepared answers a $prepare: body (the bytes to sign), signer, and extras.
func (s *server) writePrepared(w http.ResponseWriter, body consent.Body, signer consent.PatientID, extra ...fhir.Parameter) error {
	enc, err := consent.EncodeBody(body)
	if err != nil {
		return err
	}
	if len(enc) > consent.MaxTxBytes-256 { // room for the envelope: key, signature, framing
		return &problem{status: http.StatusRequestEntityTooLarge, issue: issue("too-costly", "",
			"the consent is too large for one tx; split it into several consents")}
	}
	out := fhir.Parameters{ResourceType: "Parameters", Parameter: append([]fhir.Parameter{
		{Name: "body", ValueBase64Binary: base64.StdEncoding.EncodeToString(enc)},
		{Name: "signer", ValueString: string(signer)},
	}, extra...)}
	return writeResource(w, http.StatusOK, out)
}

// grant is POST /fhir/Consent with Parameters {resource: the Consent, body: from
// $prepare, signature: the patient's Ed25519 signature over body}: 201 with the
// Consent as the chain holds it (rendered from its policy, not echoed), its id the
// consent ID (the committed tx's ID).
func (s *server) grant(w http.ResponseWriter, r *http.Request) error {
	if err := s.rate.Client(r); err != nil {
		return err
	}
	ps, err := readParameters(w, r, s.resourceLimit(), "resource", "body", "signature")
	if err != nil {
		return err
	}
	res := ps["resource"].Resource
	if len(res) == 0 {
		return badRequest("required", "Parameters.parameter", "parameter 'resource' (the Consent) is required")
	}
	g, err := s.grantNamed(r.Context(), res)
	if err != nil {
		var me *mapError
		if errors.As(err, &me) { // point into the Parameters
			if rest, ok := strings.CutPrefix(me.Path, "Consent"); ok {
				me.Path = "Parameters.parameter.resource" + rest
			}
		}
		return err
	}
	tx, body, err := s.assemble(ps, g.Patient)
	if err != nil {
		return err
	}
	if body.Kind != consent.KindGrant || body.Grant == nil || !sameGrant(*body.Grant, g) {
		return mismatch("the Consent")
	}
	if err := s.rate.Patient(g.Patient); err != nil {
		return err
	}
	committed, err := s.b.SubmitTx(r.Context(), tx)
	if err != nil {
		return err
	}
	out, err := fhirConsentOf(s.committedConsent(r.Context(), committed, g))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/fhir/Consent/"+string(committed.ID))
	return writeResource(w, http.StatusCreated, out)
}

// committedConsent is a just-committed grant as the chain holds it, to be rendered in
// the answer: never the Consent as sent, whose elements the chain did not keep. It is
// read back from the chain; should that read fail, the grant is rendered from the
// committed tx itself (the chain stores its policy as signed), without a time.
func (s *server) committedConsent(ctx context.Context, committed *Committed, g consent.Grant) consent.Consent {
	id := consent.ConsentID(committed.ID)
	if c, err := s.b.Consent(ctx, id); err == nil && c.Patient == g.Patient {
		return *c
	}
	return consent.Consent{ID: id, Patient: g.Patient, Policy: g.Policy, Height: consent.Height(committed.Height)}
}

// assemble builds the tx from the body and signature parameters, signed by patient.
// It checks the signature (consent.Assemble) and the chain, and changes nothing.
func (s *server) assemble(ps map[string]fhir.Parameter, patient consent.PatientID) ([]byte, *consent.Body, error) {
	body, err := base64Param(ps, "body")
	if err != nil {
		return nil, nil, err
	}
	sig, err := base64Param(ps, "signature")
	if err != nil {
		return nil, nil, err
	}
	pub, err := hex.DecodeString(string(patient))
	if err != nil {
		return nil, nil, err // cannot happen: patient IDs are checked hex
	}
	tx, decoded, err := consent.Assemble(body, pub, sig)
	if err != nil {
		return nil, nil, err
	}
	if decoded.ChainID != s.id.ChainID {
		return nil, nil, badRequest("invalid", "", "the body is for chain '%s'; this node is on '%s': prepare it again here", consent.Truncate(decoded.ChainID, 64), s.id.ChainID)
	}
	return tx, decoded, nil
}

func mismatch(what string) error {
	return badRequest("invalid", "", "the signed body does not match %s: prepare it again and sign the body returned", what)
}

// sameGrant compares grants by their canonical encoding (nil and empty lists alike).
func sameGrant(a, b consent.Grant) bool {
	ea, errA := consent.EncodeBody(consent.Body{Kind: consent.KindGrant, Grant: &a})
	eb, errB := consent.EncodeBody(consent.Body{Kind: consent.KindGrant, Grant: &b})
	return errA == nil && errB == nil && bytes.Equal(ea, eb)
}

// prepareRevoke is POST /fhir/Consent/{id}/$revoke-prepare?patient=ID: the revoke tx
// body for the patient to sign.
func (s *server) prepareRevoke(w http.ResponseWriter, r *http.Request) error {
	if err := s.rate.Client(r); err != nil {
		return err
	}
	id, err := consentParam(r)
	if err != nil {
		return err
	}
	patient, err := patientParam(r)
	if err != nil {
		return err
	}
	c, err := s.consentOf(r.Context(), patient, id)
	if err != nil {
		return err
	}
	if c.Revoked != 0 {
		return &problem{status: http.StatusConflict, issue: issue("duplicate", "", "consent "+string(id)+" is already revoked")}
	}
	body, err := s.b.NewBody(r.Context())
	if err != nil {
		return err
	}
	body.Kind, body.Revoke = consent.KindRevoke, &consent.Revoke{Consent: id}
	return s.writePrepared(w, body, patient)
}

// revoke is POST /fhir/Consent/{id}/$revoke?patient=ID with Parameters {body: from
// $revoke-prepare, signature}: 200 with the Consent as the chain now holds it
// (status inactive).
func (s *server) revoke(w http.ResponseWriter, r *http.Request) error {
	if err := s.rate.Client(r); err != nil {
		return err
	}
	id, err := consentParam(r)
	if err != nil {
		return err
	}
	patient, err := patientParam(r)
	if err != nil {
		return err
	}
	ps, err := readParameters(w, r, s.resourceLimit(), "body", "signature")
	if err != nil {
		return err
	}
	tx, body, err := s.assemble(ps, patient)
	if err != nil {
		return err
	}
	if body.Kind != consent.KindRevoke || body.Revoke == nil || body.Revoke.Consent != id {
		return mismatch("a revocation of consent " + string(id))
	}
	if err := s.rate.Patient(patient); err != nil {
		return err
	}
	committed, err := s.b.SubmitTx(r.Context(), tx)
	if err != nil {
		return err
	}
	w.Header().Set("X-Medledger-Tx", string(committed.ID))
	c, err := s.consentOf(r.Context(), patient, id)
	if err != nil {
		return err
	}
	fc, err := fhirConsentOf(*c)
	if err != nil {
		return err
	}
	return writeResource(w, http.StatusOK, fc)
}

// consentOf finds one of a patient's consents (404 if the patient has no such consent).
func (s *server) consentOf(ctx context.Context, p consent.PatientID, id consent.ConsentID) (*consent.Consent, error) {
	c, err := s.b.Consent(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err != nil || c.Patient != p {
		return nil, &problem{status: http.StatusNotFound, issue: issue("not-found", "",
			"patient "+string(p)+" has no consent "+string(id))}
	}
	return c, nil
}

// getConsent is GET /fhir/Consent/{id}: one consent from the chain, as a FHIR Consent.
func (s *server) getConsent(w http.ResponseWriter, r *http.Request) error {
	id, err := consentParam(r)
	if err != nil {
		return err
	}
	c, err := s.b.Consent(r.Context(), id)
	if err != nil {
		return err
	}
	fc, err := fhirConsentOf(*c)
	if err != nil {
		return err
	}
	return writeResource(w, http.StatusOK, fc)
}

// searchConsents is GET /fhir/Consent?patient=ID: the patient's consents from chain
// state, as FHIR Consents; a patient with none gets 200 and an empty searchset.
func (s *server) searchConsents(w http.ResponseWriter, r *http.Request) error {
	patient, err := patientParam(r)
	if err != nil {
		return err
	}
	cons, err := s.b.Consents(r.Context(), patient)
	if err != nil {
		return err
	}
	base := baseURL(r) // none is an empty searchset (total 0), as FHIR search answers
	b := searchset(base+"/fhir/Consent?patient="+string(patient), len(cons))
	for _, c := range cons {
		fc, err := fhirConsentOf(c)
		if err != nil {
			return err
		}
		b.AddMatch(base+"/fhir/Consent/"+string(c.ID), fc)
	}
	return writeResource(w, http.StatusOK, b)
}
