package api_test

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/node/api"
)

// TestConsentExtensionsRefused: a Consent carrying an extension or a modifier
// extension, at the top or in a nested provision, is refused at $prepare and at
// POST /fhir/Consent with a 400 OperationOutcome (not-supported) naming the element,
// and nothing reaches the chain, even with the patient's valid signature over the body
// prepared for the same Consent without it.
func TestConsentExtensionsRefused(t *testing.T) {
	e := newEnv(t, api.Config{})
	key := consenttest.NewKey("alice")
	clean := fixture(t, "optin-treat-bayside.json")
	p := e.prepare("/fhir/Consent/$prepare", clean)
	const ext = `[{"url": "http://example.org/fhir/StructureDefinition/location-restriction", "valueString": "ward 7 only"}]`
	tests := []struct {
		name     string
		old, new string
		path     string
	}{
		{"extension", `"status": "active",`, `"status": "active", "extension": ` + ext + `,`, "Consent.extension[0]"},
		{"modifierExtension", `"status": "active",`, `"status": "active", "modifierExtension": ` + ext + `,`, "Consent.modifierExtension[0]"},
		{"extension in a nested provision", `"type": "permit",`, `"type": "permit", "extension": ` + ext + `,`, "Consent.provision.provision[0].extension[0]"},
		{"modifierExtension in a nested provision", `"type": "permit",`, `"type": "permit", "modifierExtension": ` + ext + `,`, "Consent.provision.provision[0].modifierExtension[0]"},
		{"modifierExtension on an actor", `"reference": {"reference": "Organization/bayside"}`,
			`"reference": {"reference": "Organization/bayside"}, "modifierExtension": ` + ext, "Consent.provision.provision[0].actor[0].modifierExtension[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := bytes.Replace(clean, []byte(tt.old), []byte(tt.new), 1)
			if bytes.Equal(bad, clean) {
				t.Fatal("the fixture did not change")
			}
			before := e.f.count("SubmitTx")
			oo := wantOutcome(t, e.do(req{method: "POST", path: "/fhir/Consent/$prepare", body: bytes.NewReader(bad)}), http.StatusBadRequest, "not-supported")
			if len(oo.Issue[0].Expression) != 1 || oo.Issue[0].Expression[0] != tt.path || !strings.Contains(oo.Issue[0].Diagnostics, "location-restriction") {
				t.Errorf("$prepare: issue %+v, want at %s naming the extension", oo.Issue[0], tt.path)
			}
			res := e.do(req{method: "POST", path: "/fhir/Consent", body: bytes.NewReader(parametersJSON(t, bad, p.body, sign(t, key, p.body)))})
			oo = wantOutcome(t, res, http.StatusBadRequest, "not-supported")
			want := "Parameters.parameter.resource" + strings.TrimPrefix(tt.path, "Consent")
			if len(oo.Issue[0].Expression) != 1 || oo.Issue[0].Expression[0] != want {
				t.Errorf("POST: issue %+v, want at %s", oo.Issue[0], want)
			}
			if e.f.count("SubmitTx") != before {
				t.Errorf("a refused Consent was submitted")
			}
		})
	}
	if len(e.f.consentsOf(alice)) != 0 {
		t.Errorf("the chain holds %d consents, want none", len(e.f.consentsOf(alice)))
	}
}

// TestConsentAnswerIsTheChains: the 201 of POST /fhir/Consent is the consent as the
// chain holds it, the same as GET /fhir/Consent/{id} answers, not the Consent as sent:
// descriptive elements the chain does not keep (id, narrative, identifier, meta) are
// not echoed. $prepare shows the same rendering before the patient signs.
func TestConsentAnswerIsTheChains(t *testing.T) {
	e := newEnv(t, api.Config{})
	key := consenttest.NewKey("alice")
	example, err := os.ReadFile("../../testdata/consent/pcf-deny-with-permits.json")
	if err != nil {
		t.Fatal(err)
	}
	sent := bytes.Replace(example, []byte(`"status": "active",`), []byte(`"id": "my-own-id", "meta": {"versionId": "7"},
		"text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Bayside and Ada may read my records</div>"},
		"identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:5b0f1f3e-7d1b-4c1e-8f1a-2b1c3d4e5f60"}],
		"status": "active",`), 1)
	p := e.prepare("/fhir/Consent/$prepare", sent)
	res := e.do(req{method: "POST", path: "/fhir/Consent", body: bytes.NewReader(parametersJSON(t, sent, p.body, sign(t, key, p.body)))})
	wantResource(t, res, http.StatusCreated, "Consent")
	for _, echo := range []string{"my-own-id", "versionId", "Bayside and Ada", "urn:uuid:", `"type":"deny"`, "2026-01-15"} {
		if strings.Contains(string(res.body), echo) {
			t.Errorf("the 201 echoes %q from the Consent sent: %s", echo, res.body)
		}
	}
	var created struct{ ID string }
	decode(t, res.body, &created)
	got := e.do(req{method: "GET", path: "/fhir/Consent/" + created.ID, role: api.RolePrivacyOfficer})
	wantResource(t, got, http.StatusOK, "Consent")
	if !bytes.Equal(bytes.TrimSpace(res.body), bytes.TrimSpace(got.body)) {
		t.Errorf("the 201 is not the consent as the chain holds it:\n201: %s\nGET: %s", res.body, got.body)
	}
	if !strings.Contains(string(res.body), `"reference":"Organization/city"`) || !strings.Contains(string(res.body), `"code":"ExplanationOfBenefit"`) {
		t.Errorf("the 201 lacks the policy: %s", res.body)
	}
}
