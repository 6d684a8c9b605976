package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/node/api"
)

// namedConsent is alice's OPTIN Consent with one nested provision (JSON).
func namedConsent(provision string) []byte {
	return []byte(`{"resourceType":"Consent","status":"active",
  "scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
  "category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
  "patient":{"reference":"Patient/` + alice + `"},
  "policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},
  "provision":{"provision":[` + provision + `]}}`)
}

func actorJSON(id string) string {
	return `{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"PRCP"}]},"reference":{"reference":"Organization/` + id + `"}}`
}

func classJSON(code string) string {
	return `{"system":"http://hl7.org/fhir/resource-types","code":"` + code + `"}`
}

// A Consent naming a class, hospital or record the chain does not know is refused by
// $prepare and by POST /fhir/Consent with a 400 OperationOutcome at the element's
// path, with the name it probably is a typo of; nothing is submitted (finding 1).
func TestConsentUnknownNamesRefused(t *testing.T) {
	e := newEnv(t, api.Config{})
	rec := e.ingest()
	bob := string(consenttest.NewKey("bob").Patient())
	e.do(req{method: "POST", path: "/fhir/Bundle?patient=" + bob, role: api.RoleClinician, body: bytes.NewReader(synthea(t))})
	bobs := must(e.f.chain.Records(consent.PatientID(bob)))[0].ID
	for _, tt := range []struct {
		name, provision, code, path, msg string
	}{
		{"class typo in a deny exception",
			`{"type":"permit","actor":[` + actorJSON("bayside") + `],"provision":[{"type":"deny","class":[` + classJSON("Observatoin") + `]}]}`,
			"code-invalid", "provision.provision[0].provision[0].class[0]", "Observatoin: not an FHIR R4 resource type; did you mean Observation?"},
		{"plural class",
			`{"type":"permit","actor":[` + actorJSON("bayside") + `],"class":[` + classJSON("Condition") + `,` + classJSON("Observations") + `]}`,
			"code-invalid", "provision.provision[0].class[1]", "Observations: not an FHIR R4 resource type; did you mean Observation?"},
		{"hospital typo",
			`{"type":"permit","actor":[` + actorJSON("bayside") + `,` + actorJSON("baysde") + `]}`,
			"value", "provision.provision[0].actor[1].reference", "baysde: no such hospital in the chain's registry; did you mean bayside?"},
		{"no such hospital",
			`{"type":"permit","actor":[` + actorJSON("nowhere") + `]}`,
			"value", "provision.provision[0].actor[0].reference", "nowhere: no such hospital in the chain's registry"},
		{"another patient's record",
			`{"type":"permit","actor":[` + actorJSON("bayside") + `],"data":[{"meaning":"instance","reference":{"reference":"DocumentReference/` + string(rec) + `"}},{"meaning":"instance","reference":{"reference":"DocumentReference/` + string(bobs) + `"}}]}`,
			"value", "provision.provision[0].data[1].reference", string(bobs) + ": no record of this patient on the chain"},
		{"no such record",
			`{"type":"permit","actor":[` + actorJSON("bayside") + `],"data":[{"meaning":"instance","reference":{"reference":"DocumentReference/0123456789abcdef0123456789abcdef"}}]}`,
			"value", "provision.provision[0].data[0].reference", "0123456789abcdef0123456789abcdef: no record of this patient on the chain"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := namedConsent(tt.provision)
			oo := wantOutcome(t, e.do(req{method: "POST", path: "/fhir/Consent/$prepare", body: bytes.NewReader(c)}), http.StatusBadRequest, tt.code)
			wantIssue(t, oo, "Consent."+tt.path, tt.msg)

			// Signed over a body prepared for the right spelling, the POST is refused
			// on the Consent's names before the signature is even looked at.
			body := e.prepare("/fhir/Consent/$prepare", namedConsent(`{"type":"permit","actor":[`+actorJSON("bayside")+`]}`)).body
			ps := parametersJSON(t, c, body, sign(t, consenttest.NewKey("alice"), body))
			oo = wantOutcome(t, e.do(req{method: "POST", path: "/fhir/Consent", body: bytes.NewReader(ps)}), http.StatusBadRequest, tt.code)
			wantIssue(t, oo, "Parameters.parameter.resource."+tt.path, tt.msg)
		})
	}
	if n := e.f.count("SubmitTx"); n != 0 || len(e.f.consentsOf(alice)) != 0 {
		t.Fatalf("%d txs submitted, %d consents held, want none", n, len(e.f.consentsOf(alice)))
	}
	// Spelt right, the same Consents go through.
	ok := namedConsent(`{"type":"permit","actor":[` + actorJSON("bayside") + `],"data":[{"meaning":"instance","reference":{"reference":"DocumentReference/` + string(rec) + `"}}],"provision":[{"type":"deny","class":[` + classJSON("Observation") + `]}]}`)
	body := e.prepare("/fhir/Consent/$prepare", ok).body
	wantResource(t, e.do(req{method: "POST", path: "/fhir/Consent", body: bytes.NewReader(parametersJSON(t, ok, body, sign(t, consenttest.NewKey("alice"), body)))}), http.StatusCreated, "Consent")
}

func wantIssue(t *testing.T, oo outcome, path, msg string) {
	t.Helper()
	if len(oo.Issue) == 0 {
		t.Fatal("no issue")
	}
	is := oo.Issue[0]
	if len(is.Expression) != 1 || is.Expression[0] != path || !strings.Contains(is.Diagnostics, msg) {
		t.Errorf("issue at %v: %q\nwant at %s: %q", is.Expression, is.Diagnostics, path, msg)
	}
}

// The fake chain refuses what the chain refuses: a grant signed and submitted without
// the API's check (consent.CheckNames).
func TestFakeChainRefusesUnknownNames(t *testing.T) {
	e := newEnv(t, api.Config{})
	k := consenttest.NewKey("alice")
	b := &consenttest.Builder{ChainID: "medledger-test"}
	tx := b.Tx(consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: k.Patient(), Policy: consent.Policy{
		Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"baysde"}}}}}, Expiry: 100}, k)
	_, err := e.f.SubmitTx(t.Context(), tx)
	if rej, ok := err.(*consent.Rejection); !ok || rej.Code != consent.CodeUnknownHospital || !strings.Contains(rej.Log, "did you mean bayside?") {
		t.Fatalf("SubmitTx = %v, want unknown-hospital with a suggestion", err)
	}
}
