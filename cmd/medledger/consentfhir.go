package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
)

// A patient grants and revokes through a node's FHIR API, with no Go of their own:
// the node prepares the tx body ($prepare, $revoke-prepare), this command checks that
// the body says what the patient asked (their own ID, the policy it previews, the
// consent named), shows the policy as the signed body holds it, signs the body with
// the patient's key and hands back only the signature (POST /fhir/Consent, $revoke).
// The chain checks the signature; nothing is submitted unless every check passed.

// Errors of the FHIR path.
var (
	errPatientMismatch = errors.New("the Consent names another patient")
	errBadPrepared     = errors.New("the node's prepared body does not say what was asked")
)

// fhirAPI is a node's HTTP API for a patient: the consent operations need no token.
type fhirAPI struct {
	base string // http://host:port, no trailing slash
	http *http.Client
}

func newFHIRAPI(base string) (*fhirAPI, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if base == "" {
		return nil, fmt.Errorf("needs the node's API: --api URL, $MEDLEDGER_API or a --home with api.listen")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q: use http://host:port", base)
	}
	return &fhirAPI{base: u.String(), http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// fhirParam is one Parameters.parameter as the consent operations use them.
type fhirParam struct {
	Name              string          `json:"name"`
	ValueBase64Binary string          `json:"valueBase64Binary,omitempty"`
	ValueString       string          `json:"valueString,omitempty"`
	Resource          json.RawMessage `json:"resource,omitempty"`
}

type fhirParams struct {
	ResourceType string      `json:"resourceType"`
	Parameter    []fhirParam `json:"parameter"`
}

func (p fhirParams) get(name string) (fhirParam, bool) {
	for _, q := range p.Parameter {
		if q.Name == name {
			return q, true
		}
	}
	return fhirParam{}, false
}

// post sends body (FHIR JSON) to path and decodes a 2xx answer into out; any other
// answer is an error with the OperationOutcome's text.
func (a *fhirAPI) post(ctx context.Context, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("the node's API %s does not answer: %w", a.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("the node's API %s: %w", a.base, err)
	}
	if resp.StatusCode/100 != 2 {
		return outcomeError(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the node's API answered %s with something other than FHIR JSON: %w", path, err)
	}
	return nil
}

// outcomeError is a non-2xx answer as one sentence: "the node refused it (400
// not-supported at Consent.extension[0]): …".
func outcomeError(status int, b []byte) error {
	var oo struct {
		Issue []struct {
			Code        string   `json:"code"`
			Diagnostics string   `json:"diagnostics"`
			Expression  []string `json:"expression"`
		} `json:"issue"`
	}
	if json.Unmarshal(b, &oo) != nil || len(oo.Issue) == 0 {
		return fmt.Errorf("the node refused it (%d %s)", status, http.StatusText(status))
	}
	is := oo.Issue[0]
	where := ""
	if len(is.Expression) > 0 {
		where = " at " + is.Expression[0]
	}
	return fmt.Errorf("the node refused it (%d %s%s): %s", status, is.Code, where, is.Diagnostics)
}

// consentForPatient reads a FHIR Consent from file and makes it the patient's own:
// with no patient it gets Consent.patient = Patient/{id}; one naming another patient
// is refused (a patient signs only their own consent).
func consentForPatient(file string, id consent.PatientID) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var res map[string]json.RawMessage
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: not a FHIR JSON resource: %w", file, err)
	}
	var rt string
	if json.Unmarshal(res["resourceType"], &rt) != nil || rt != "Consent" {
		return nil, fmt.Errorf("%s: resourceType is %q, want Consent", file, rt)
	}
	own := "Patient/" + string(id)
	if raw, ok := res["patient"]; ok {
		var ref struct {
			Reference string `json:"reference"`
		}
		if json.Unmarshal(raw, &ref) != nil || ref.Reference != own {
			return nil, fmt.Errorf("%w: %s: Consent.patient is %q, but the key is %s: set Consent.patient.reference to %q or leave Consent.patient out",
				errPatientMismatch, file, truncateText(ref.Reference, 80), own, own)
		}
		return b, nil
	}
	res["patient"], _ = json.Marshal(map[string]string{"reference": own})
	return json.Marshal(res)
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// prepared is a $prepare answer, checked: the body to sign, decoded.
type prepared struct {
	body   []byte        // the exact bytes to sign
	sig    []byte        // the patient's signature over body
	signed *consent.Body // body, decoded from the assembled tx
}

// signPrepared checks a $prepare/$revoke-prepare answer and signs its body: the signer
// must be this patient and the body must verify under the patient's key (which
// decodes it, strictly, as the chain will). check then decides whether the decoded
// body is what was asked.
func signPrepared(ps fhirParams, key *crypto.SigningKey, check func(*consent.Body) error) (*prepared, error) {
	id := consent.PatientIDOf(key.Public())
	if s, _ := ps.get("signer"); s.ValueString != string(id) {
		return nil, fmt.Errorf("%w: signer %q, not this patient %s", errBadPrepared, truncateText(s.ValueString, 80), id)
	}
	p, ok := ps.get("body")
	if !ok {
		return nil, fmt.Errorf("%w: no body", errBadPrepared)
	}
	body, err := base64.StdEncoding.DecodeString(p.ValueBase64Binary)
	if err != nil {
		return nil, fmt.Errorf("%w: body is not base64", errBadPrepared)
	}
	sig, err := key.Sign(body)
	if err != nil {
		return nil, err
	}
	_, decoded, err := consent.Assemble(body, key.Public(), sig)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadPrepared, err)
	}
	if err := check(decoded); err != nil {
		return nil, err
	}
	return &prepared{body: body, sig: sig, signed: decoded}, nil
}

// checkGrant accepts a grant body for patient whose policy is the one the node
// previewed (Parameters policy): what the patient is shown is what they sign.
func checkGrant(patient consent.PatientID, ps fhirParams) func(*consent.Body) error {
	return func(b *consent.Body) error {
		if b.Kind != consent.KindGrant || b.Grant == nil || b.Grant.Patient != patient {
			return fmt.Errorf("%w: not a grant of patient %s", errBadPrepared, patient)
		}
		p, _ := ps.get("policy")
		var preview consent.Policy
		if err := json.Unmarshal([]byte(p.ValueString), &preview); err != nil {
			return fmt.Errorf("%w: its policy preview: %v", errBadPrepared, err)
		}
		if !sameGrant(*b.Grant, consent.Grant{Patient: patient, Policy: preview}) {
			return fmt.Errorf("%w: the body's policy is not the policy previewed", errBadPrepared)
		}
		return nil
	}
}

// sameGrant compares grants by their canonical encoding.
func sameGrant(a, b consent.Grant) bool {
	ea, errA := consent.EncodeBody(consent.Body{Kind: consent.KindGrant, Grant: &a})
	eb, errB := consent.EncodeBody(consent.Body{Kind: consent.KindGrant, Grant: &b})
	return errA == nil && errB == nil && bytes.Equal(ea, eb)
}

// grantFHIR is `consent grant --fhir FILE`: $prepare, show, sign, POST /fhir/Consent.
// With dryRun it stops after showing. It writes the summary and the consent ID to out.
func grantFHIR(ctx context.Context, out io.Writer, api *fhirAPI, key *crypto.SigningKey, file string, dryRun bool) error {
	id := consent.PatientIDOf(key.Public())
	res, err := consentForPatient(file, id)
	if err != nil {
		return err
	}
	var ps fhirParams
	if err := api.post(ctx, "/fhir/Consent/$prepare", res, &ps); err != nil {
		return err
	}
	p, err := signPrepared(ps, key, checkGrant(id, ps))
	if err != nil {
		return err
	}
	showPolicy(out, id, p.signed.Grant.Policy)
	if dryRun {
		fmt.Fprintln(out, "dry run: nothing signed was sent")
		return nil
	}
	req, err := json.Marshal(fhirParams{ResourceType: "Parameters", Parameter: []fhirParam{
		{Name: "resource", Resource: res},
		{Name: "body", ValueBase64Binary: base64.StdEncoding.EncodeToString(p.body)},
		{Name: "signature", ValueBase64Binary: base64.StdEncoding.EncodeToString(p.sig)},
	}})
	if err != nil {
		return err
	}
	var held struct {
		ID string `json:"id"`
	}
	if err := api.post(ctx, "/fhir/Consent", req, &held); err != nil {
		return err
	}
	fmt.Fprintf(out, "consent  %s\n", held.ID)
	return nil
}

// revokeFHIR is `consent revoke --via-api`: $revoke-prepare, sign, $revoke.
func revokeFHIR(ctx context.Context, out io.Writer, api *fhirAPI, key *crypto.SigningKey, cid string) error {
	id := consent.PatientIDOf(key.Public())
	path := "/fhir/Consent/" + url.PathEscape(cid)
	q := "?patient=" + url.QueryEscape(string(id))
	var ps fhirParams
	if err := api.post(ctx, path+"/$revoke-prepare"+q, nil, &ps); err != nil {
		return err
	}
	p, err := signPrepared(ps, key, func(b *consent.Body) error {
		if b.Kind != consent.KindRevoke || b.Revoke == nil || string(b.Revoke.Consent) != cid {
			return fmt.Errorf("%w: not a revocation of consent %s", errBadPrepared, cid)
		}
		return nil
	})
	if err != nil {
		return err
	}
	req, err := json.Marshal(fhirParams{ResourceType: "Parameters", Parameter: []fhirParam{
		{Name: "body", ValueBase64Binary: base64.StdEncoding.EncodeToString(p.body)},
		{Name: "signature", ValueBase64Binary: base64.StdEncoding.EncodeToString(p.sig)},
	}})
	if err != nil {
		return err
	}
	var held struct {
		Status string `json:"status"`
	}
	if err := api.post(ctx, path+"/$revoke"+q, req, &held); err != nil {
		return err
	}
	fmt.Fprintf(out, "revoked  %s\nstatus   %s\n", cid, held.Status)
	return nil
}

// showPolicy writes, in plain words, the policy the chain will enforce: the one in
// the body the patient signs (not the Consent as written).
func showPolicy(out io.Writer, id consent.PatientID, p consent.Policy) {
	fmt.Fprintf(out, "patient  %s\n", id)
	if p.Base == consent.Deny {
		fmt.Fprintln(out, "base     deny: no hospital may read unless a rule below permits")
	} else {
		fmt.Fprintln(out, "base     permit: every hospital may read unless a rule below denies")
	}
	for _, pr := range p.Provisions {
		showProvision(out, pr, "rule     ")
	}
	from, until := "now", "no end"
	if p.Start != 0 {
		from = time.Unix(p.Start, 0).UTC().Format(time.RFC3339)
	}
	if p.End != 0 {
		until = time.Unix(p.End, 0).UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(out, "period   %s to %s\n", from, until)
}

func showProvision(out io.Writer, pr consent.Provision, prefix string) {
	s := pr.Type.String()
	s += " " + orAny(join(pr.Actors), "any hospital")
	s += " for " + orAny(join(pr.Purposes), "any purpose")
	if len(pr.Classes) > 0 {
		s += ", classes " + join(pr.Classes)
	}
	if len(pr.Records) > 0 {
		s += ", records " + join(pr.Records)
	}
	if pr.Start != 0 || pr.End != 0 {
		s += fmt.Sprintf(", period %s to %s", when(pr.Start, "start"), when(pr.End, "no end"))
	}
	fmt.Fprintln(out, prefix+s)
	for _, e := range pr.Except {
		showProvision(out, e, strings.Repeat(" ", len(prefix)+2)+"except ")
	}
}

func orAny(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func when(t int64, zero string) string {
	if t == 0 {
		return zero
	}
	return time.Unix(t, 0).UTC().Format(time.RFC3339)
}
