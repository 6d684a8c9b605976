package node_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/nodetest"
)

// Through four real hospital nodes (issue 10, findings 1 and 5): a Consent whose deny
// exception misspells its class is refused by $prepare and by POST /fhir/Consent with
// a 400 at the class's path and the suggestion, and nothing is committed; the chain
// itself refuses the same names in a tx signed and submitted without the API, so no
// client bypasses the check. After a revoke of the consent that would have permitted,
// the denial says revoked, though another consent names city.
func TestConsentNamesThroughTheStack(t *testing.T) {
	t.Parallel()
	hn := shared.Get(t)
	ada, bayside := hn.Nodes[0], hn.Nodes[1]
	patient, pid := nodetest.NewPatient(t)
	rec, err := ada.Ingest(ctxT(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rec.Classes, "Observation") {
		t.Fatalf("the sample holds no Observation: %v", rec.Classes)
	}
	typo := consentWithDeny(pid, "Observatoin")
	const path = "provision.provision[0].provision[0].class[0]"
	const msg = "Observatoin: not an FHIR R4 resource type; did you mean Observation?"

	status, body := post(t, bayside.APIURL()+"/fhir/Consent/$prepare", typo)
	wantIssueAt(t, status, body, "Consent."+path, msg)

	// Signed over the body prepared for the right spelling: still refused on the name.
	signed := preparedBody(t, bayside.APIURL(), consentWithDeny(pid, "Observation"))
	sig, err := patient.Sign(signed)
	if err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": []map[string]any{
		{"name": "resource", "resource": json.RawMessage(typo)},
		{"name": "body", "valueBase64Binary": base64.StdEncoding.EncodeToString(signed)},
		{"name": "signature", "valueBase64Binary": base64.StdEncoding.EncodeToString(sig)},
	}})
	status, body = post(t, bayside.APIURL()+"/fhir/Consent", params)
	wantIssueAt(t, status, body, "Parameters.parameter.resource."+path, msg)

	// The chain refuses the names whoever submits them.
	for _, tt := range []struct {
		p    consent.Provision
		code consent.Code
		hint string
	}{
		{consent.Provision{Type: consent.Permit, Actors: []consent.HospitalID{"bayside"},
			Except: []consent.Provision{{Type: consent.Deny, Classes: []consent.DataClass{"Observatoin"}}}}, consent.CodeInvalid, "did you mean Observation?"},
		{consent.Provision{Type: consent.Permit, Actors: []consent.HospitalID{"baysde"}}, consent.CodeUnknownHospital, "did you mean bayside?"},
		{consent.Provision{Type: consent.Permit, Actors: []consent.HospitalID{"bayside"}, Records: []consent.RecordID{"0123456789abcdef0123456789abcdef"}},
			consent.CodeUnknownRecord, "no record of this patient"},
	} {
		g := consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: pid, Policy: consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{tt.p}}}}
		_, err := bayside.SubmitTx(ctxT(t), nodetest.Signed(t, bayside, g, patient))
		var rej *consent.Rejection
		if !errors.As(err, &rej) || rej.Code != tt.code || !strings.Contains(rej.Log, tt.hint) {
			t.Errorf("submitting %+v: %v, want %s with %q", tt.p, err, tt.code, tt.hint)
		}
	}
	if cs, err := ada.Consents(ctxT(t), pid); err != nil || len(cs) != 0 {
		t.Fatalf("consents after the refusals: %v, %v; want none", cs, err)
	}
	_, err = bayside.Read(ctxT(t), rec.ID, "TREAT")
	wantDenied(t, err, consent.ReasonNoConsent)

	// The reason after a revoke (finding 5).
	permitBayside := nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "bayside"))
	nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "city"))
	if _, err := bayside.Read(ctxT(t), rec.ID, "TREAT"); err != nil {
		t.Fatalf("read under the consent: %v", err)
	}
	nodetest.AsPatient(t, ada, patient, consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: consent.ConsentID(permitBayside.ID)}})
	_, err = bayside.Read(ctxT(t), rec.ID, "TREAT")
	wantDenied(t, err, consent.ReasonRevoked)
}

// consentWithDeny is the patient's OPTIN Consent permitting bayside except records
// holding class.
func consentWithDeny(pid consent.PatientID, class string) []byte {
	return []byte(`{"resourceType":"Consent","status":"active",
  "scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
  "category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
  "patient":{"reference":"Patient/` + string(pid) + `"},
  "policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},
  "provision":{"provision":[{"type":"permit",
    "actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"PRCP"}]},"reference":{"reference":"Organization/bayside"}}],
    "provision":[{"type":"deny","class":[{"system":"http://hl7.org/fhir/resource-types","code":"` + class + `"}]}]}]}}`)
}

// preparedBody is the tx body $prepare returns for resource.
func preparedBody(t *testing.T, api string, resource []byte) []byte {
	t.Helper()
	status, prepared := post(t, api+"/fhir/Consent/$prepare", resource)
	if status != http.StatusOK {
		t.Fatalf("$prepare: %d %s", status, prepared)
	}
	var ps struct {
		Parameter []struct{ Name, ValueBase64Binary string }
	}
	if err := json.Unmarshal(prepared, &ps); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps.Parameter {
		if p.Name == "body" {
			b, err := base64.StdEncoding.DecodeString(p.ValueBase64Binary)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("$prepare returned no body: %s", prepared)
	return nil
}

// wantIssueAt checks a 400 OperationOutcome whose first issue is at path and says msg.
func wantIssueAt(t *testing.T, status int, body []byte, path, msg string) {
	t.Helper()
	var oo struct {
		ResourceType string
		Issue        []struct {
			Diagnostics string
			Expression  []string
		}
	}
	if err := json.Unmarshal(body, &oo); err != nil || status != http.StatusBadRequest || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Fatalf("%d %s, want 400 with an OperationOutcome", status, body)
	}
	if is := oo.Issue[0]; len(is.Expression) != 1 || is.Expression[0] != path || !strings.Contains(is.Diagnostics, msg) {
		t.Errorf("issue at %v: %q\nwant at %s: %q", is.Expression, is.Diagnostics, path, msg)
	}
}
