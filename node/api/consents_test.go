package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/node/api"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/consent/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// prepared is a $prepare answer.
type prepared struct {
	body   []byte
	signer string
	policy string
}

func (e *env) prepare(path string, body []byte) prepared {
	e.t.Helper()
	r := req{method: "POST", path: path}
	if body != nil {
		r.body = bytes.NewReader(body)
	}
	res := e.do(r)
	wantResource(e.t, res, http.StatusOK, "Parameters")
	var ps struct {
		Parameter []struct{ Name, ValueBase64Binary, ValueString string }
	}
	decode(e.t, res.body, &ps)
	var p prepared
	for _, x := range ps.Parameter {
		switch x.Name {
		case "body":
			b, err := base64.StdEncoding.DecodeString(x.ValueBase64Binary)
			if err != nil {
				e.t.Fatal(err)
			}
			p.body = b
		case "signer":
			p.signer = x.ValueString
		case "policy":
			p.policy = x.ValueString
		}
	}
	return p
}

// parametersJSON builds a Parameters body: resource (raw JSON, may be nil), body and
// signature.
func parametersJSON(t *testing.T, resource, body, sig []byte) []byte {
	t.Helper()
	var ps []map[string]any
	if resource != nil {
		ps = append(ps, map[string]any{"name": "resource", "resource": json.RawMessage(resource)})
	}
	ps = append(ps,
		map[string]any{"name": "body", "valueBase64Binary": base64.StdEncoding.EncodeToString(body)},
		map[string]any{"name": "signature", "valueBase64Binary": base64.StdEncoding.EncodeToString(sig)})
	b, err := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": ps})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(t *testing.T, k *consenttest.Key, msg []byte) []byte {
	t.Helper()
	sig, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestConsentFlow: alice grants bayside access for treatment with her own key, bayside
// reads her record, alice revokes, bayside is refused.
func TestConsentFlow(t *testing.T) {
	e := newEnv(t, api.Config{})
	key := consenttest.NewKey("alice")
	id := e.ingest()
	record := "/records/" + string(id) + "?purpose=TREAT"
	wantOutcome(t, e.do(req{method: "GET", path: record, role: api.RoleClinician}), http.StatusForbidden, "forbidden")

	// Grant.
	fhirConsent := fixture(t, "optin-treat-bayside.json")
	p := e.prepare("/fhir/Consent/$prepare", fhirConsent)
	if p.signer != alice || !strings.Contains(p.policy, `"actors":["bayside"]`) {
		t.Fatalf("prepared: signer %s, policy %s", p.signer, p.policy)
	}
	res := e.do(req{method: "POST", path: "/fhir/Consent", body: bytes.NewReader(parametersJSON(t, fhirConsent, p.body, sign(t, key, p.body)))})
	wantResource(t, res, http.StatusCreated, "Consent")
	var created struct{ ResourceType, ID, Status string }
	decode(t, res.body, &created)
	if len(created.ID) != 32 || res.header.Get("Location") != "/fhir/Consent/"+created.ID || created.Status != "active" {
		t.Fatalf("created %+v at %q", created, res.header.Get("Location"))
	}
	if c, err := e.f.chain.Consent(consent.ConsentID(created.ID)); err != nil || c.Policy.Provisions[0].Actors[0] != "bayside" {
		t.Fatalf("the chain holds %+v (%v)", c, err)
	}

	// The same signed tx again is a replay.
	res = e.do(req{method: "POST", path: "/fhir/Consent", body: bytes.NewReader(parametersJSON(t, fhirConsent, p.body, sign(t, key, p.body)))})
	if oo := wantOutcome(t, res, http.StatusConflict, "duplicate"); oo.Issue[0].Details.Text != "replay" {
		t.Errorf("details %+v", oo.Issue[0].Details)
	}

	res = e.do(req{method: "GET", path: record, role: api.RoleClinician})
	if res.status != http.StatusOK || res.header.Get("X-Medledger-Consent") != created.ID {
		t.Fatalf("read after the grant: %d %s", res.status, res.body)
	}

	// The consent, as the chain holds it.
	res = e.do(req{method: "GET", path: "/fhir/Consent?patient=" + alice, role: api.RolePrivacyOfficer})
	wantResource(t, res, http.StatusOK, "Bundle")
	var found struct {
		Total int
		Entry []struct {
			Resource struct {
				ID, Status string
				Provision  struct {
					Period    struct{ Start, End string }
					Provision []struct {
						Type  string
						Actor []struct{ Reference struct{ Reference string } }
					}
				}
			}
		}
	}
	decode(t, res.body, &found)
	if found.Total != 1 || found.Entry[0].Resource.ID != created.ID || found.Entry[0].Resource.Status != "active" ||
		found.Entry[0].Resource.Provision.Period.Start != "2025-01-01T00:00:00Z" ||
		found.Entry[0].Resource.Provision.Provision[0].Actor[0].Reference.Reference != "Organization/bayside" {
		t.Errorf("consents: %s", res.body)
	}

	// Revoke.
	revoke := "/fhir/Consent/" + created.ID
	p = e.prepare(revoke+"/$revoke-prepare?patient="+alice, nil)
	if p.signer != alice {
		t.Fatalf("revoke signer %s", p.signer)
	}
	res = e.do(req{method: "POST", path: revoke + "/$revoke?patient=" + alice, body: bytes.NewReader(parametersJSON(t, nil, p.body, sign(t, key, p.body)))})
	wantResource(t, res, http.StatusOK, "Consent")
	var revoked struct{ ID, Status string }
	decode(t, res.body, &revoked)
	if revoked.ID != created.ID || revoked.Status != "inactive" || res.header.Get("X-Medledger-Tx") == "" {
		t.Errorf("revoked: %s", res.body)
	}
	oo := wantOutcome(t, e.do(req{method: "GET", path: record, role: api.RoleClinician}), http.StatusForbidden, "forbidden")
	if oo.Issue[0].Details.Text != "revoked" {
		t.Errorf("read after the revocation: %+v", oo.Issue[0])
	}
	// Once revoked, there is nothing left to revoke.
	wantOutcome(t, e.do(req{method: "POST", path: revoke + "/$revoke-prepare?patient=" + alice}), http.StatusConflict, "duplicate")
}

// TestConsentRefused: nothing reaches the chain unless the patient signed exactly the
// body prepared for exactly this Consent.
func TestConsentRefused(t *testing.T) {
	e := newEnv(t, api.Config{})
	alice, mallory := consenttest.NewKey("alice"), consenttest.NewKey("mallory")
	treat := fixture(t, "optin-treat-bayside.json")
	wider := bytes.Replace(treat, []byte(`"code": "TREAT"`), []byte(`"code": "HMARKT"`), 1)
	p := e.prepare("/fhir/Consent/$prepare", treat)
	other := e.prepare("/fhir/Consent/$prepare", fixture(t, "optout-deny.json"))

	tampered := bytes.Clone(p.body)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name   string
		body   []byte
		status int
		code   string
		detail string
	}{
		{"signature over other bytes", parametersJSON(t, treat, p.body, sign(t, alice, other.body)), http.StatusBadRequest, "security", "signature"},
		{"signed by someone else", parametersJSON(t, treat, p.body, sign(t, mallory, p.body)), http.StatusBadRequest, "security", "signature"},
		{"body changed after signing", parametersJSON(t, treat, tampered, sign(t, alice, p.body)), http.StatusBadRequest, "", ""},
		{"body for another Consent", parametersJSON(t, wider, p.body, sign(t, alice, p.body)), http.StatusBadRequest, "invalid", ""},
		{"body for a revocation", parametersJSON(t, fixture(t, "optout-deny.json"), p.body, sign(t, alice, p.body)), http.StatusBadRequest, "invalid", ""},
		{"signature cut short", parametersJSON(t, treat, p.body, sign(t, alice, p.body)[:32]), http.StatusBadRequest, "structure", "decode"},
		{"no signature", []byte(`{"resourceType":"Parameters","parameter":[{"name":"resource","resource":` + string(treat) + `},{"name":"body","valueBase64Binary":"` + base64.StdEncoding.EncodeToString(p.body) + `"}]}`), http.StatusBadRequest, "required", ""},
		{"no resource", parametersJSON(t, nil, p.body, sign(t, alice, p.body)), http.StatusBadRequest, "required", ""},
		{"a Consent, not Parameters", treat, http.StatusBadRequest, "invalid", ""},
		{"draft Consent", parametersJSON(t, bytes.Replace(treat, []byte(`"status": "active"`), []byte(`"status": "draft"`), 1), p.body, sign(t, alice, p.body)), http.StatusBadRequest, "business-rule", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.f.count("SubmitTx")
			res := e.do(req{method: "POST", path: "/fhir/Consent", body: bytes.NewReader(tt.body)})
			if tt.code == "" {
				if res.status != tt.status {
					t.Errorf("status %d, want %d", res.status, tt.status)
				}
				wantOutcome(t, res, tt.status, outcomeCode(t, res))
			} else {
				oo := wantOutcome(t, res, tt.status, tt.code)
				if tt.detail != "" && (oo.Issue[0].Details == nil || oo.Issue[0].Details.Text != tt.detail) {
					t.Errorf("details %+v, want %s", oo.Issue[0].Details, tt.detail)
				}
			}
			if e.f.count("SubmitTx") != before {
				t.Errorf("a refused grant was submitted")
			}
		})
	}
	if len(e.f.consentsOf(alice.Patient())) != 0 {
		t.Errorf("the chain holds %d consents, want none", len(e.f.consentsOf(alice.Patient())))
	}
}

// outcomeCode is the first issue's code of an OperationOutcome body (for cases whose
// exact code is not the point).
func outcomeCode(t *testing.T, res response) string {
	var oo outcome
	decode(t, res.body, &oo)
	if len(oo.Issue) == 0 {
		return ""
	}
	return oo.Issue[0].Code
}

func TestConsentPrepareRefused(t *testing.T) {
	e := newEnv(t, api.Config{})
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		code   string
	}{
		{"not FHIR", "/fhir/Consent/$prepare", `{"resourceType":"Consent",`, http.StatusBadRequest, "structure"},
		{"a Patient", "/fhir/Consent/$prepare", `{"resourceType":"Patient","id":"x"}`, http.StatusBadRequest, "invalid"},
		{"HL7 example (its signed form, sourceAttachment, is not enforced)", "/fhir/Consent/$prepare", string(must(os.ReadFile("../../testdata/fhir/consent/Consent-consent-example-basic.json"))), http.StatusBadRequest, "not-supported"},
		{"revoke: bad consent ID", "/fhir/Consent/xyz/$revoke-prepare?patient=" + alice, "", http.StatusBadRequest, "value"},
		{"revoke: no patient", "/fhir/Consent/" + strings.Repeat("ab", 16) + "/$revoke-prepare", "", http.StatusBadRequest, "required"},
		{"revoke: unknown consent", "/fhir/Consent/" + strings.Repeat("ab", 16) + "/$revoke-prepare?patient=" + alice, "", http.StatusNotFound, "not-found"},
		{"revoke: bad Parameters", "/fhir/Consent/" + strings.Repeat("ab", 16) + "/$revoke?patient=" + alice, `{"resourceType":"Parameters","parameter":[{"name":"body","valueBase64Binary":"AAAA"}]}`, http.StatusBadRequest, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req{method: "POST", path: tt.path}
			if tt.body != "" {
				r.body = strings.NewReader(tt.body)
			}
			wantOutcome(t, e.do(r), tt.status, tt.code)
		})
	}
	if e.f.mutations() != 0 {
		t.Errorf("a refused request reached the backend")
	}
}

// TestRevokeRefused: a revocation is submitted only as signed, for this consent.
func TestRevokeRefused(t *testing.T) {
	e := newEnv(t, api.Config{})
	key := consenttest.NewKey("alice")
	cid := e.grantAlice()
	other := "/fhir/Consent/" + strings.Repeat("ab", 16)
	p := e.prepare("/fhir/Consent/"+string(cid)+"/$revoke-prepare?patient="+alice, nil)
	grant := e.prepare("/fhir/Consent/$prepare", fixture(t, "optout-deny.json"))

	tests := []struct {
		name, path string
		body       []byte
		code       string
	}{
		{"for another consent", other + "/$revoke?patient=" + alice, parametersJSON(t, nil, p.body, sign(t, key, p.body)), "invalid"},
		{"a grant's body", "/fhir/Consent/" + string(cid) + "/$revoke?patient=" + alice, parametersJSON(t, nil, grant.body, sign(t, key, grant.body)), "invalid"},
		{"signed by another", "/fhir/Consent/" + string(cid) + "/$revoke?patient=" + alice, parametersJSON(t, nil, p.body, sign(t, consenttest.NewKey("bob"), p.body)), "security"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOutcome(t, e.do(req{method: "POST", path: tt.path, body: bytes.NewReader(tt.body)}), http.StatusBadRequest, tt.code)
		})
	}
	if e.f.count("SubmitTx") != 0 || must(e.f.chain.Consent(cid)).Revoked != 0 {
		t.Errorf("a refused revocation was submitted")
	}
}

func TestSearchConsents(t *testing.T) {
	e := newEnv(t, api.Config{})
	// no consents, no records: an empty searchset, not 404 (issue 10, finding 4)
	wantEmptySearch(t, e.do(req{method: "GET", path: "/fhir/Consent?patient=" + alice, role: api.RoleAdmin}))
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/Consent?patient=" + alice + "x", role: api.RoleAdmin}), http.StatusBadRequest, "value")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/Consent", role: api.RoleAdmin}), http.StatusBadRequest, "required")
	e.ingest()
	res := e.do(req{method: "GET", path: "/fhir/Consent?patient=" + alice, role: api.RoleAdmin})
	wantResource(t, res, http.StatusOK, "Bundle")
	var b struct{ Total int }
	decode(t, res.body, &b)
	if b.Total != 0 {
		t.Errorf("total %d, want 0", b.Total)
	}
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/Consent?patient=" + alice}), http.StatusUnauthorized, "login")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
