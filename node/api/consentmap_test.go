package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
)

// alice is the patient the fixtures name: consenttest.NewKey("alice").Patient().
const alice = "6a50a417ca262e8a7553ac8b7d8c620cebefbf4cfa0ef9d440d4fc492a3b8632"

func unix(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.Unix()
}

// mapFile validates raw as FHIR R4 (as the API does first) and maps it.
func mapConsent(t *testing.T, raw []byte) (consent.Grant, error) {
	t.Helper()
	if _, err := fhir.Parse(raw, fhir.Limits{}); err != nil {
		t.Fatalf("the Consent is not valid FHIR R4: %v", err)
	}
	return grantOf(raw)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withPatient replaces a Consent's patient reference, and a performer that was the
// patient (the patient consenting for themself) with the same.
func withPatient(t *testing.T, raw []byte, ref string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	old, _ := m["patient"].(map[string]any)
	if ps, ok := m["performer"].([]any); ok {
		for _, p := range ps {
			if p, ok := p.(map[string]any); ok && old != nil && p["reference"] == old["reference"] {
				p["reference"] = ref
			}
		}
	}
	m["patient"] = map[string]any{"reference": ref}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// without removes a Consent's top-level elements.
func without(t *testing.T, raw []byte, names ...string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		delete(m, n)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantMapError checks that err is a mapError at path whose message contains msg.
func wantMapError(t *testing.T, err error, path, msg string) {
	t.Helper()
	var me *mapError
	if !errors.As(err, &me) {
		t.Fatalf("got %v, want a mapping error at %s", err, path)
	}
	if me.Path != path || !strings.Contains(me.Msg, msg) {
		t.Errorf("got rejection at %s: %q\nwant at %s, containing %q", me.Path, me.Msg, path, msg)
	}
}

// TestHL7ConsentExamples maps each of HL7's R4 Consent examples. As published, each is
// refused: nine rest on a signed form (sourceAttachment), whose text the chain would not
// enforce, two hold elements the chain cannot enforce (a security label, a content
// code: every element is checked before the patient is) and one names its patient by
// a local id (Patient/f001), not by a patient's key. With a patient ID swapped in, the
// one given by a related person (performer) is refused for that. With the source and performer removed too, the
// provisions decide: three map (read strictly: OPTIN is deny unless permitted), the
// others are refused for the element the chain cannot enforce.
func TestHL7ConsentExamples(t *testing.T) {
	const source, local = "Consent.sourceAttachment", "Consent.patient.reference"
	tests := []struct {
		file      string
		published string          // the path of the refusal as published
		swapped   string          // with alice as the patient: the refusal's path ("": as stripped)
		want      *consent.Policy // stripped of source and performer; nil: refused at path, with msg
		path, msg string
	}{
		{file: "Consent-consent-example-Emergency.json", published: source, swapped: source, path: "Consent.provision.actor[0].role", msg: "role 'CST' is not a recipient"},
		{file: "Consent-consent-example-Out.json", published: source, swapped: source, path: "Consent.provision.actor[0].role", msg: "role 'CST' is not a recipient"},
		{file: "Consent-consent-example-basic.json", published: source, swapped: source, want: &consent.Policy{Base: consent.Deny,
			Start: unix("1964-01-01T00:00:00Z"), End: unix("2016-01-01T23:59:59Z")}},
		{file: "Consent-consent-example-grantor.json", published: source, swapped: source, path: "Consent.provision.actor[0].role", msg: "role 'CST' is not a recipient"},
		{file: "Consent-consent-example-notAuthor.json", published: source, swapped: source, path: "Consent.provision.actor[0].role", msg: "role 'CST' is not a recipient"},
		{file: "Consent-consent-example-notOrg.json", published: source, swapped: source, path: "Consent.provision.action[1]", msg: "action 'correct' cannot be enforced"},
		{file: "Consent-consent-example-notThem.json", published: source, swapped: source, path: "Consent.provision.action[1]", msg: "action 'correct' cannot be enforced"},
		{file: "Consent-consent-example-notThis.json", published: source, swapped: source, path: "Consent.provision.data[0].meaning", msg: "meaning 'related' cannot be enforced"},
		{file: "Consent-consent-example-notTime.json", published: source, swapped: source, want: &consent.Policy{Base: consent.Deny,
			Start: unix("2015-01-01T00:00:00Z"), End: unix("2015-02-01T23:59:59Z")}},
		{file: "Consent-consent-example-pkb.json", published: "Consent.provision.securityLabel", path: "Consent.provision.securityLabel", msg: "security labels cannot be enforced"},
		{file: "Consent-consent-example-signature.json", published: "Consent.provision.provision[0].code", path: "Consent.provision.provision[0].code", msg: "content codes cannot be enforced"},
		{file: "Consent-consent-example-smartonfhir.json", published: local, swapped: "Consent.performer[0]", want: &consent.Policy{Base: consent.Deny,
			Start: unix("2016-06-23T07:02:33Z"), End: unix("2016-06-23T07:32:33Z"),
			Provisions: []consent.Provision{{Type: consent.Permit, Classes: []consent.DataClass{"MedicationRequest"}}}}},
	}
	files, _ := filepath.Glob("../../testdata/fhir/consent/*.json")
	if len(files) != len(tests) {
		t.Errorf("%d HL7 examples, %d expectations", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := readFile(t, filepath.Join("../../testdata/fhir/consent", tt.file))
			_, err := mapConsent(t, raw)
			wantMapError(t, err, tt.published, "")

			swapped := withPatient(t, raw, "Patient/"+alice)
			if tt.swapped != "" {
				_, err := mapConsent(t, swapped)
				wantMapError(t, err, tt.swapped, "")
			}
			g, err := mapConsent(t, without(t, swapped, "sourceAttachment", "performer"))
			if tt.want == nil {
				wantMapError(t, err, tt.path, tt.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.Patient != alice || !reflect.DeepEqual(g.Policy, *tt.want) {
				t.Errorf("got %s %+v\nwant %s %+v", g.Patient, g.Policy, alice, *tt.want)
			}
		})
	}
}

// TestConsentFixtures maps Consents written for medledger, each of which maps.
func TestConsentFixtures(t *testing.T) {
	tests := []struct {
		file string
		want consent.Policy
	}{
		{"optin-treat-bayside.json", consent.Policy{Base: consent.Deny,
			Start: unix("2025-01-01T00:00:00Z"), End: unix("2035-12-31T23:59:59Z"),
			Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"bayside"},
				Purposes: []consent.Purpose{"TREAT"}}}}},
		{"optin-permit-except-class.json", consent.Policy{Base: consent.Deny,
			Provisions: []consent.Provision{{Type: consent.Permit,
				Actors: []consent.HospitalID{"bayside", "st-ada"}, Purposes: []consent.Purpose{"TREAT", "CAREMGT"},
				Except: []consent.Provision{{Type: consent.Deny,
					Start: unix("2026-01-01T08:00:00Z"), End: unix("2026-06-30T21:30:00Z"), // offsets applied, fraction dropped
					Classes: []consent.DataClass{"Observation", "MedicationRequest"}}}}}}},
		{"optout-deny.json", consent.Policy{Base: consent.Permit, Provisions: []consent.Provision{
			{Type: consent.Deny, Purposes: []consent.Purpose{"HRESCH", "HMARKT"}},
			{Type: consent.Deny, Actors: []consent.HospitalID{"acme-labs"}}}}},
		{"root-typed-records.json", consent.Policy{Base: consent.Deny,
			Start: unix("2026-01-01T00:00:00Z"), End: unix("2026-12-31T23:59:59Z"),
			Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"st-ada"},
				Except: []consent.Provision{{Type: consent.Deny, Records: []consent.RecordID{"0123456789abcdef0123456789abcdef"},
					Except: []consent.Provision{{Type: consent.Permit, Purposes: []consent.Purpose{"TREAT"},
						Start: unix("2026-03-01T00:00:00Z"), End: unix("2026-03-31T23:59:59Z")}}}}}}}},
		{"break-glass.json", consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{
			{Type: consent.Permit, Purposes: []consent.Purpose{"ETREAT", "BTG"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			g, err := mapConsent(t, readFile(t, filepath.Join("testdata/consent", tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if g.Patient != alice || !reflect.DeepEqual(g.Policy, tt.want) {
				t.Errorf("got %s %+v\nwant %s %+v", g.Patient, g.Policy, alice, tt.want)
			}
			// FHIR → policy → FHIR → policy is the identity on the policy.
			again := roundTrip(t, consent.Consent{ID: "00112233445566778899aabbccddeeff", Patient: g.Patient, Policy: g.Policy, Time: 1764000000})
			if !reflect.DeepEqual(again, g) {
				t.Errorf("round trip: got %+v\nwant %+v", again, g)
			}
		})
	}
}

// TestConsentExamples: the example Consents in testdata/consent (which the README
// cites) map to the policies they say and round-trip.
func TestConsentExamples(t *testing.T) {
	bayside := []consent.HospitalID{"bayside"}
	treat := []consent.Purpose{"TREAT"}
	want := map[string]consent.Policy{
		"optin-treat-bayside.json": {Base: consent.Deny, Start: unix("2026-01-15T00:00:00Z"), End: unix("2031-01-14T23:59:59Z"),
			Provisions: []consent.Provision{{Type: consent.Permit, Actors: bayside, Purposes: treat}}},
		"pcf-deny-with-permits.json": {Base: consent.Deny, Provisions: []consent.Provision{
			{Type: consent.Permit, Actors: []consent.HospitalID{"bayside", "ada"}, Purposes: []consent.Purpose{"TREAT", "CAREMGT"}},
			{Type: consent.Permit, Actors: []consent.HospitalID{"city"}, Purposes: []consent.Purpose{"HPAYMT"},
				Classes: []consent.DataClass{"Claim", "ExplanationOfBenefit"}}}},
		"break-glass.json": {Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Purposes: []consent.Purpose{"ETREAT", "BTG"}}}},
		"deny-class.json": {Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Actors: bayside, Purposes: treat,
			Except: []consent.Provision{{Type: consent.Deny, Classes: []consent.DataClass{"Observation"}}}}}},
	}
	files, _ := filepath.Glob("../../testdata/consent/*.json")
	if len(files) != len(want) {
		t.Errorf("%d examples, %d expectations", len(files), len(want))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			pol, ok := want[filepath.Base(file)]
			if !ok {
				t.Fatal("no expectation")
			}
			g, err := mapConsent(t, readFile(t, file))
			if err != nil {
				t.Fatal(err)
			}
			if g.Patient != alice || !reflect.DeepEqual(g.Policy, pol) {
				t.Errorf("got %s %+v\nwant %s %+v", g.Patient, g.Policy, alice, pol)
			}
			if again := roundTrip(t, consent.Consent{ID: "00112233445566778899aabbccddeeff", Patient: g.Patient, Policy: g.Policy}); !reflect.DeepEqual(again, g) {
				t.Errorf("round trip: got %+v\nwant %+v", again, g)
			}
		})
	}
}

// roundTrip writes c as a FHIR Consent, checks it is valid R4, and maps it back.
func roundTrip(t interface{ Fatalf(string, ...any) }, c consent.Consent) consent.Grant {
	fc, err := fhirConsentOf(c)
	if err != nil {
		t.Fatalf("%v", err)
	}
	raw, err := json.Marshal(fc)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if _, err := fhir.Parse(raw, fhir.Limits{}); err != nil {
		t.Fatalf("the mapped-back Consent is not valid FHIR R4: %v\n%s", err, raw)
	}
	g, err := grantOf(raw)
	if err != nil {
		t.Fatalf("the mapped-back Consent does not map: %v\n%s", err, raw)
	}
	return g
}

// consentJSON is a valid FHIR Consent for alice with the given status, policyRule
// code and provision JSON ("" for none).
func consentJSON(status, rule, provision string) []byte {
	s := `{"resourceType":"Consent","status":"` + status + `",
	"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
	"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
	"patient":{"reference":"Patient/` + alice + `"},
	"policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"` + rule + `"}]}`
	if provision != "" {
		s += `,"provision":` + provision
	}
	return []byte(s + "}")
}

const (
	roleOK  = `"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"PRCP"}]}`
	bayside = `{` + roleOK + `,"reference":{"reference":"Organization/bayside"}}`
)

// TestConsentRejections: what the chain cannot enforce as written is rejected, at
// the element, with the reason.
func TestConsentRejections(t *testing.T) {
	permit := func(body string) string { return `{"provision":[{"type":"permit",` + body + `}]}` }
	tests := []struct {
		name      string
		raw       []byte
		path, msg string
	}{
		{"draft", consentJSON("draft", "OPTIN", ""), "Consent.status", "only an active Consent is enforced"},
		{"inactive", consentJSON("inactive", "OPTIN", ""), "Consent.status", "only an active Consent is enforced"},
		{"opt-in with restrictions", consentJSON("active", "OPTINR", ""), "Consent.policyRule", "policyRule 'OPTINR' cannot be enforced"},
		{"policyRule in another system", []byte(strings.Replace(string(consentJSON("active", "OPTIN", "")),
			"http://terminology.hl7.org/CodeSystem/v3-ActCode", "http://example.org/rules", 1)), "Consent.policyRule.coding[0]", "cannot be checked to mean the same"},
		{"policy by URI", []byte(strings.Replace(string(consentJSON("active", "OPTIN", "")), `"policyRule"`,
			`"policy":[{"uri":"http://example.org/policy"}],"policyRule"`, 1)), "Consent.policy", "cannot be enforced"},
		{"patient by local id", withPatient(t, consentJSON("active", "OPTIN", ""), "Patient/f001"), "Consent.patient.reference", "is not Patient/{patient ID}"},
		{"modifier extension", []byte(strings.Replace(string(consentJSON("active", "OPTIN", "")), `"status"`,
			`"modifierExtension":[{"url":"http://example.org/x","valueBoolean":true}],"status"`, 1)), "Consent.modifierExtension[0]", "extension 'http://example.org/x': a modifier extension changes the meaning"},
		{"root criteria without a type", consentJSON("active", "OPTIN", `{"actor":[`+bayside+`]}`), "Consent.provision", "names actor but has no type"},
		{"root of the base's type with criteria and exceptions", consentJSON("active", "OPTIN", `{"type":"deny","actor":[`+bayside+`],"provision":[{"type":"permit"}]}`),
			"Consent.provision", "the root deny names actor and holds nested provisions"},
		{"nested of its parent's type", consentJSON("active", "OPTIN", permit(`"actor":[`+bayside+`],"provision":[{"type":"permit"}]`)),
			"Consent.provision.provision[0].provision[0].type", "a permit inside a permit"},
		{"nested without a type", consentJSON("active", "OPTOUT", `{"provision":[{"actor":[`+bayside+`]}]}`), "Consent.provision.provision[0].type", "needs a type"},
		{"security label", consentJSON("active", "OPTIN", permit(`"securityLabel":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}]`)),
			"Consent.provision.provision[0].securityLabel", "cannot be enforced"},
		{"content code", consentJSON("active", "OPTIN", permit(`"code":[{"coding":[{"system":"http://loinc.org","code":"34133-9"}]}]`)),
			"Consent.provision.provision[0].code", "cannot be enforced"},
		{"data period", consentJSON("active", "OPTIN", permit(`"dataPeriod":{"start":"2020-01-01"}`)), "Consent.provision.provision[0].dataPeriod", "cannot be enforced"},
		{"action correct", consentJSON("active", "OPTIN", permit(`"action":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentaction","code":"correct"}]}]`)),
			"Consent.provision.provision[0].action[0]", "action 'correct' cannot be enforced"},
		{"action uncoded", consentJSON("active", "OPTIN", permit(`"action":[{"text":"look"}]`)), "Consent.provision.provision[0].action[0]", "only 'access'"},
		{"purpose in another system", consentJSON("active", "OPTIN", permit(`"purpose":[{"system":"http://example.org","code":"TREAT"}]`)),
			"Consent.provision.provision[0].purpose[0]", "is not http://terminology.hl7.org/CodeSystem/v3-ActReason"},
		{"unknown purpose", consentJSON("active", "OPTIN", permit(`"purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"FUN"}]`)),
			"Consent.provision.provision[0].purpose[0]", "purpose 'FUN' is not one the chain knows"},
		{"class as MIME type", consentJSON("active", "OPTIN", permit(`"class":[{"system":"urn:ietf:bcp:13","code":"application/hl7-cda+xml"}]`)),
			"Consent.provision.provision[0].class[0]", "class system 'urn:ietf:bcp:13' cannot be enforced"},
		{"class not a resource type", consentJSON("active", "OPTIN", permit(`"class":[{"system":"http://hl7.org/fhir/resource-types","code":"x"}]`)),
			"Consent.provision.provision[0]", "resource type"},
		{"data related", consentJSON("active", "OPTIN", permit(`"data":[{"meaning":"related","reference":{"reference":"DocumentReference/0123456789abcdef0123456789abcdef"}}]`)),
			"Consent.provision.provision[0].data[0].meaning", "meaning 'related'"},
		{"data not a record", consentJSON("active", "OPTIN", permit(`"data":[{"meaning":"instance","reference":{"reference":"Observation/1"}}]`)),
			"Consent.provision.provision[0].data[0].reference", "'Observation/1' is not a record"},
		{"actor a practitioner", consentJSON("active", "OPTIN", permit(`"actor":[{`+roleOK+`,"reference":{"reference":"Practitioner/13"}}]`)),
			"Consent.provision.provision[0].actor[0].reference", "is not a member hospital"},
		{"actor a custodian", consentJSON("active", "OPTIN", permit(`"actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"CST"}]},"reference":{"reference":"Organization/bayside"}}]`)),
			"Consent.provision.provision[0].actor[0].role", "role 'CST' is not a recipient"},
		{"actor not a hospital ID", consentJSON("active", "OPTIN", permit(`"actor":[{`+roleOK+`,"reference":{"reference":"Organization/StAda"}}]`)),
			"Consent.provision.provision[0]", `actor "StAda" is not a hospital ID`},
		{"end at the epoch", consentJSON("active", "OPTIN", `{"period":{"end":"1970-01-01T00:00:00Z"}}`), "Consent.provision.period.end", "cannot be represented"},
		// Extensions, wherever they are, and every element the chain cannot enforce.
		{"extension", top(`"extension":[{"url":"http://example.org/location-restriction","valueString":"ward 7"}]`),
			"Consent.extension[0]", "extension 'http://example.org/location-restriction': extensions are not enforced"},
		{"extension on a nested provision", consentJSON("active", "OPTIN", permit(`"extension":[{"url":"http://example.org/x","valueBoolean":true}]`)),
			"Consent.provision.provision[0].extension[0]", "extensions are not enforced"},
		{"modifier extension on a nested provision", consentJSON("active", "OPTIN", permit(`"modifierExtension":[{"url":"http://example.org/x","valueBoolean":true}]`)),
			"Consent.provision.provision[0].modifierExtension[0]", "a modifier extension changes the meaning"},
		{"modifier extension two levels down", consentJSON("active", "OPTIN", permit(`"provision":[{"type":"deny","modifierExtension":[{"url":"http://example.org/x","valueBoolean":true}]}]`)),
			"Consent.provision.provision[0].provision[0].modifierExtension[0]", "a modifier extension"},
		{"modifier extension on an actor", consentJSON("active", "OPTIN", permit(`"actor":[{"modifierExtension":[{"url":"http://example.org/x","valueBoolean":true}],`+roleOK+`,"reference":{"reference":"Organization/bayside"}}]`)),
			"Consent.provision.provision[0].actor[0].modifierExtension[0]", "a modifier extension"},
		{"extension on a purpose coding", consentJSON("active", "OPTIN", permit(`"purpose":[{"extension":[{"url":"http://example.org/x","valueBoolean":true}],"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}]`)),
			"Consent.provision.provision[0].purpose[0].extension[0]", "extensions are not enforced"},
		{"extension on a primitive", top(`"_status":{"extension":[{"url":"http://example.org/x","valueBoolean":true}]}`),
			"Consent.status.extension[0]", "extensions are not enforced"},
		{"extension on a period end", consentJSON("active", "OPTIN", `{"period":{"end":"2030","_end":{"extension":[{"url":"http://example.org/x","valueBoolean":true}]}}}`),
			"Consent.provision.period.end.extension[0]", "extensions are not enforced"},
		{"extension inside an identifier", top(`"identifier":[{"system":"urn:x","value":"1","extension":[{"url":"http://example.org/x","valueBoolean":true}]}]`),
			"Consent.identifier[0].extension[0]", "extensions are not enforced"},
		{"implicit rules", top(`"implicitRules":"http://example.org/rules"`), "Consent.implicitRules", "cannot be enforced"},
		{"security labels on the Consent", top(`"meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}]}`),
			"Consent.meta.security", "cannot be enforced"},
		{"narrative with more than the structure", top(`"text":{"status":"additional","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Only ward 7</div>"}`),
			"Consent.text.status", "may hold rules not in the structured content"},
		{"contained resource", top(`"contained":[{"resourceType":"Organization","id":"o1","name":"x"}]`), "Consent.contained", "not kept by the chain"},
		{"source document", top(`"sourceAttachment":{"contentType":"application/pdf","url":"http://example.org/form.pdf"}`), "Consent.sourceAttachment", "not a source document's text"},
		{"source reference", top(`"sourceReference":{"reference":"Consent/other"}`), "Consent.sourceReference", "not those of the source"},
		{"verification", top(`"verification":[{"verified":true}]`), "Consent.verification", "cannot be checked"},
		{"performer not the patient", top(`"performer":[{"reference":"RelatedPerson/peter"}]`), "Consent.performer[0]", "is not the patient"},
		{"research scope", []byte(strings.Replace(string(consentJSON("active", "OPTIN", "")), "patient-privacy", "research", 1)), "Consent.scope", "scope 'research' cannot be enforced"},
		{"scope in another system", []byte(strings.Replace(string(consentJSON("active", "OPTIN", "")), "http://terminology.hl7.org/CodeSystem/consentscope", "http://example.org/scope", 1)),
			"Consent.scope.coding[0]", "cannot be checked to mean the same"},
		{"role with a translation", consentJSON("active", "OPTIN", permit(`"actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"PRCP"},{"system":"http://example.org/roles","code":"reader"}]},"reference":{"reference":"Organization/bayside"}}]`)),
			"Consent.provision.provision[0].actor[0].role.coding[1]", "cannot be checked to mean the same"},
		{"actor by identifier too", consentJSON("active", "OPTIN", permit(`"actor":[{`+roleOK+`,"reference":{"reference":"Organization/bayside","identifier":{"system":"urn:x","value":"acme"}}}]`)),
			"Consent.provision.provision[0].actor[0].reference.identifier", "a logical identifier cannot be checked"},
		{"actor reference of another type", consentJSON("active", "OPTIN", permit(`"actor":[{`+roleOK+`,"reference":{"reference":"Organization/bayside","type":"Practitioner"}}]`)),
			"Consent.provision.provision[0].actor[0].reference.type", "must be Organization"},
		{"deny emergency", consentJSON("active", "OPTOUT", `{"provision":[{"type":"deny","purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"HMARKT"},{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"ETREAT"}]}]}`),
			"Consent.provision.provision[0].purpose[1]", "a consent cannot deny ETREAT"},
		{"deny break-glass, nested", consentJSON("active", "OPTIN", permit(`"provision":[{"type":"deny","purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"BTG"}]}]`)),
			"Consent.provision.provision[0].provision[0].purpose[0]", "a consent cannot deny BTG"},
		{"deny emergency at the root", consentJSON("active", "OPTOUT", `{"type":"deny","purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"ETREAT"}]}`),
			"Consent.provision.purpose[0]", "a consent cannot deny ETREAT"},
		{"too deep", consentJSON("active", "OPTIN", `{"provision":[{"type":"permit","provision":[{"type":"deny","provision":[{"type":"permit","provision":[{"type":"deny","provision":[{"type":"permit"}]}]}]}]}]}`),
			"Consent.provision", "nest deeper than 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mapConsent(t, tt.raw)
			wantMapError(t, err, tt.path, tt.msg)
		})
	}
}

// top adds members to the top of an OPTIN Consent with no provisions.
func top(members string) []byte {
	return []byte(strings.Replace(string(consentJSON("active", "OPTIN", "")), `"status"`, members+`,"status"`, 1))
}

// TestConsentShapes: the shapes that map, beyond the fixtures: IHE PCF's root deny
// with permit exceptions, a root that restates the base rule, and descriptive
// metadata, which is accepted and not kept.
func TestConsentShapes(t *testing.T) {
	treat := `{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}`
	permitTreat := consent.Provision{Type: consent.Permit, Actors: []consent.HospitalID{"bayside"}, Purposes: []consent.Purpose{"TREAT"}}
	tests := []struct {
		name string
		raw  []byte
		want consent.Policy
	}{
		{"PCF: root deny with a permit", consentJSON("active", "OPTIN", `{"type":"deny","period":{"start":"2026"},"provision":[{"type":"permit","actor":[`+bayside+`],"purpose":[`+treat+`]}]}`),
			consent.Policy{Base: consent.Deny, Start: unix("2026-01-01T00:00:00Z"), Provisions: []consent.Provision{permitTreat}}},
		{"root deny with criteria, nothing nested", consentJSON("active", "OPTIN", `{"type":"deny","actor":[`+bayside+`]}`),
			consent.Policy{Base: consent.Deny}},
		{"OPTOUT: root permit with a deny", consentJSON("active", "OPTOUT", `{"type":"permit","provision":[{"type":"deny","actor":[`+bayside+`]}]}`),
			consent.Policy{Base: consent.Permit, Provisions: []consent.Provision{{Type: consent.Deny, Actors: []consent.HospitalID{"bayside"}}}}},
		{"OPTOUT: root deny with a permit", consentJSON("active", "OPTOUT", `{"type":"deny","provision":[{"type":"permit","actor":[`+bayside+`],"purpose":[`+treat+`]}]}`),
			consent.Policy{Base: consent.Permit, Provisions: []consent.Provision{{Type: consent.Deny, Except: []consent.Provision{permitTreat}}}}},
		{"descriptive metadata", []byte(strings.Replace(string(consentJSON("active", "OPTIN", `{"provision":[{"id":"p1","type":"permit","actor":[{"id":"a1",`+roleOK+`,"reference":{"reference":"Organization/bayside","type":"Organization","display":"Bayside"}}],"purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT","display":"treatment","version":"2.0","userSelected":true}],"action":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentaction","code":"access","display":"Access"}],"text":"see"}]}]}`)),
			`"status"`, `"id":"mine","meta":{"versionId":"3","lastUpdated":"2025-01-01T00:00:00Z","profile":["http://example.org/p"],"tag":[{"code":"x"}]},"language":"en",
			"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Bayside may read for treatment</div>"},
			"identifier":[{"system":"urn:ietf:rfc:3986","value":"urn:uuid:0d3c3f3e-1d1b-4c1e-8f1a-2b1c3d4e5f60"}],
			"dateTime":"2025-11-24","organization":[{"reference":"Organization/st-ada","display":"St Ada"}],
			"performer":[{"reference":"Patient/`+alice+`"}],"_status":{"id":"s"},"status"`, 1)),
			consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{permitTreat}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := mapConsent(t, tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g.Policy, tt.want) {
				t.Errorf("got %+v\nwant %+v", g.Policy, tt.want)
			}
			// What is returned is the chain's policy, rendered: none of the metadata.
			fc, err := fhirConsentOf(consent.Consent{ID: "00112233445566778899aabbccddeeff", Patient: g.Patient, Policy: g.Policy})
			if err != nil {
				t.Fatal(err)
			}
			out, _ := json.Marshal(fc)
			for _, echo := range []string{"mine", "urn:uuid:", "Bayside may read", "st-ada", "display", "versionId", "2025-11-24"} {
				if strings.Contains(string(out), echo) {
					t.Errorf("the rendered Consent echoes %q: %s", echo, out)
				}
			}
		})
	}
}

func TestInstant(t *testing.T) {
	tests := []struct {
		in          string
		first, last string
	}{
		{"2016", "2016-01-01T00:00:00Z", "2016-12-31T23:59:59Z"},
		{"2016-02", "2016-02-01T00:00:00Z", "2016-02-29T23:59:59Z"},
		{"2016-02-10", "2016-02-10T00:00:00Z", "2016-02-10T23:59:59Z"},
		{"2016-02-10T10:20:30+02:00", "2016-02-10T08:20:30Z", "2016-02-10T08:20:30Z"},
		{"2016-02-10T10:20:30.999Z", "2016-02-10T10:20:30Z", "2016-02-10T10:20:30Z"},
	}
	for _, tt := range tests {
		first, err1 := instant(tt.in, false)
		last, err2 := instant(tt.in, true)
		if err1 != nil || err2 != nil || first != unix(tt.first) || last != unix(tt.last) {
			t.Errorf("instant(%q) = %d, %d (%v, %v); want %s, %s", tt.in, first, last, err1, err2, tt.first, tt.last)
		}
	}
	for _, bad := range []string{"2016-13", "16-01-01", "2016-02-10T10:20:30", "2016-12-31T23:59:60Z"} {
		if _, err := instant(bad, false); err == nil {
			t.Errorf("instant(%q): no error", bad)
		}
	}
}

// TestPolicyRoundTrip: policy → Consent → policy is the identity: any valid policy a
// Consent can express, written as a FHIR Consent, is valid R4 and maps back to the same
// policy. (Consent → policy → Consent → policy over generated Consents:
// TestConsentFixedPoint.)
func TestPolicyRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := rapid.SampledFrom([]consent.Rule{consent.Deny, consent.Permit}).Draw(t, "base")
		pol := consent.Policy{Base: base, Provisions: genProvisions(t, opposite(base), 1)}
		pol.Start, pol.End = genPeriod(t, "policy")
		if err := pol.Validate(); err != nil {
			t.Fatalf("generator made an invalid policy: %v", err)
		}
		c := consent.Consent{ID: "00112233445566778899aabbccddeeff", Patient: alice, Policy: pol,
			Time: rapid.Int64Range(0, 4e9).Draw(t, "time")}
		g := roundTrip(t, c)
		if g.Patient != alice || !reflect.DeepEqual(g.Policy, pol) {
			t.Fatalf("got %+v\nwant %+v", g.Policy, pol)
		}
	})
}

// purposesFor are the purposes a provision of type typ may name in a Consent: a deny
// may not name an emergency purpose (emergencyNotDenied).
func purposesFor(typ consent.Rule) []consent.Purpose {
	if typ == consent.Permit {
		return consent.Purposes()
	}
	var out []consent.Purpose
	for _, p := range consent.Purposes() {
		if p != "ETREAT" && p != "BTG" {
			out = append(out, p)
		}
	}
	return out
}

func opposite(r consent.Rule) consent.Rule {
	if r == consent.Deny {
		return consent.Permit
	}
	return consent.Deny
}

// genProvisions draws up to 2 provisions a level, 3 levels deep (consent.Policy.Validate
// checks the depth before looking at a level, so a 4th level is refused even empty).
func genProvisions(t *rapid.T, typ consent.Rule, depth int) []consent.Provision {
	if depth > 3 {
		return nil
	}
	n := rapid.IntRange(0, 2).Draw(t, "n")
	var out []consent.Provision
	for range n {
		p := consent.Provision{
			Type:     typ,
			Actors:   nilIfEmpty(rapid.SliceOfN(rapid.SampledFrom([]consent.HospitalID{"st-ada", "bayside", "f001", "a"}), 0, 3).Draw(t, "actors")),
			Purposes: nilIfEmpty(rapid.SliceOfN(rapid.SampledFrom(purposesFor(typ)), 0, 3).Draw(t, "purposes")),
			Classes:  nilIfEmpty(rapid.SliceOfN(rapid.SampledFrom([]consent.DataClass{"Observation", "Condition", "MedicationRequest"}), 0, 2).Draw(t, "classes")),
			Records: nilIfEmpty(rapid.SliceOfN(rapid.Custom(func(t *rapid.T) consent.RecordID {
				return consent.RecordID(hex.EncodeToString(rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "id")))
			}), 0, 2).Draw(t, "records")),
			Except: genProvisions(t, opposite(typ), depth+1),
		}
		p.Start, p.End = genPeriod(t, "provision")
		out = append(out, p)
	}
	return out
}

// genPeriod draws bounds in Unix seconds (0: open), from before 1970 to 2096.
func genPeriod(t *rapid.T, label string) (start, end int64) {
	start = rapid.OneOf(rapid.Just(int64(0)), rapid.Int64Range(-2e9, 4e9)).Draw(t, label+" start")
	if rapid.Bool().Draw(t, label+" open end") {
		return start, 0
	}
	end = rapid.Int64Range(start, 4e9).Draw(t, label+" end")
	if end == 0 { // 0 would mean open
		end = 1
	}
	return start, end
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// FuzzGrantOf: a Consent that passes fhir.Parse either maps, to a valid policy that
// round-trips, or is rejected with a mapping error; never anything else.
func FuzzGrantOf(f *testing.F) {
	for _, glob := range []string{"testdata/consent/*.json", "../../testdata/consent/*.json", "../../testdata/fhir/consent/*.json"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := fhir.Parse(raw, fhir.Limits{}); err != nil {
			return // the API answers these before mapping
		}
		g, err := grantOf(raw)
		if err != nil {
			var me *mapError
			if !errors.As(err, &me) {
				t.Fatalf("not a mapping error: %v", err)
			}
			return
		}
		if err := g.Policy.Validate(); err != nil {
			t.Fatalf("mapped to an invalid policy: %v", err)
		}
		if again := roundTrip(t, consent.Consent{ID: "00112233445566778899aabbccddeeff", Patient: g.Patient, Policy: g.Policy}); !reflect.DeepEqual(again, g) {
			t.Fatalf("round trip: got %+v\nwant %+v", again, g)
		}
	})
}
