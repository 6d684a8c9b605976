package fhir

import (
	"strings"
	"testing"
)

// ruleCase is a small resource and the issue it must produce, or none when
// code is "".
type ruleCase struct {
	name, src       string
	path, code, msg string
}

func runRules(t *testing.T, tests []ruleCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := parseIssues(t, tc.src, Limits{})
			if tc.code == "" {
				if len(got) > 0 {
					t.Fatalf("got:%s\nwant no issues", describe(got))
				}
				return
			}
			if !hasIssue(got, tc.path, tc.code, tc.msg) {
				t.Errorf("got:%s\nwant %s at %q with %q", describe(got), tc.code, tc.path, tc.msg)
			}
		})
	}
}

func TestSchemaRules(t *testing.T) {
	runRules(t, []ruleCase{
		{"minimal patient", `{"resourceType":"Patient"}`, "", "", ""},
		{"unknown property", `{"resourceType":"Patient","nmae":[]}`, "Patient", "structure", "unrecognized property 'nmae'"},
		{"unknown nested property", `{"resourceType":"Patient","name":[{"famly":"A"}]}`, "Patient.name[0]", "structure", "unrecognized property 'famly'"},
		{"object for array", `{"resourceType":"Patient","name":{"family":"A"}}`, "Patient.name", "structure", "must be an array, not an object"},
		{"array for single", `{"resourceType":"Patient","gender":["male"]}`, "Patient.gender", "structure", "must be a single value"},
		{"number for string", `{"resourceType":"Patient","name":[{"family":7}]}`, "Patient.name[0].family", "structure", "must be a string (FHIR string), not a number"},
		{"string for boolean", `{"resourceType":"Patient","active":"true"}`, "Patient.active", "structure", "must be true or false"},
		{"string for decimal", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"1.5"}}`, "Observation.valueQuantity.value", "structure", "must be a JSON number"},
		{"fraction for integer", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueInteger":1.5}`, "Observation.valueInteger", "value", "'1.5' is not a valid FHIR integer"},
		{"numbers in range", `{"resourceType":"Patient","multipleBirthInteger":1,"contact":[{"name":{"text":"a"},"period":{"start":"2020"}}],"photo":[{"size":0,"contentType":"image/png"}]}`, "", "", ""},
		{"integer range", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueInteger":2147483648}`, "Observation.valueInteger", "value", "out of range for FHIR integer"},
		{"negative unsignedInt", `{"resourceType":"Patient","photo":[{"size":-1}]}`, "Patient.photo[0].size", "value", "out of range for FHIR unsignedInt"},
		{"zero positiveInt", `{"resourceType":"Patient","telecom":[{"system":"phone","value":"1","rank":0}]}`, "Patient.telecom[0].rank", "value", "not a valid FHIR positiveInt"},
		{"enum", `{"resourceType":"Patient","gender":"M"}`, "Patient.gender", "value", "'M' is not an allowed code; allowed: male, female, other, unknown"},
		{"date pattern", `{"resourceType":"Patient","birthDate":"1980-13-01"}`, "Patient.birthDate", "value", "not a valid FHIR date"},
		{"calendar date", `{"resourceType":"Patient","birthDate":"2023-02-29"}`, "Patient.birthDate", "value", "not a calendar date"},
		{"leap day", `{"resourceType":"Patient","birthDate":"2024-02-29"}`, "", "", ""},
		{"dateTime without timezone", `{"resourceType":"Patient","deceasedDateTime":"2020-01-01T10:00:00"}`, "Patient.deceasedDateTime", "value", "has a time but no timezone"},
		{"dateTime with timezone", `{"resourceType":"Patient","deceasedDateTime":"2020-01-01T10:00:00.123+05:30"}`, "", "", ""},
		{"long value is quoted short", `{"resourceType":"Patient","gender":"` + strings.Repeat("x", 100) + `"}`, "Patient.gender", "value", "'" + strings.Repeat("x", 64) + "…'"},
		{"id too long", `{"resourceType":"Patient","id":"` + strings.Repeat("a", 65) + `"}`, "Patient.id", "too-long", "65 characters"},
		{"contained id", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"a_b"}]}`, "Patient.contained[0].id", "value", "'a_b' is not a valid id"},
		{"contained unknown type", `{"resourceType":"Patient","contained":[{"resourceType":"Nope","id":"a"}]}`, "Patient.contained[0]", "invalid", "unknown resource type 'Nope'"},
		{"contained without type", `{"resourceType":"Patient","contained":[{"id":"a"}]}`, "Patient.contained[0]", "required", "missing 'resourceType'"},
		{"missing required complex", `{"resourceType":"Observation","status":"final"}`, "Observation", "required", "missing required element 'code'"},
		{"companion object shape", `{"resourceType":"Patient","_birthDate":{"value":"x"}}`, "Patient._birthDate", "structure", "unrecognized property 'value'"},
		{"companion object", `{"resourceType":"Patient","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}}`, "", "", ""},
		{"non-breaking space in string (ECMA \\s)", `{"resourceType":"Patient","name":[{"family":"A\u00a0B"}]}`, "Patient.name[0].family", "value", "whitespace other than"},
		{"space in uri", `{"resourceType":"Patient","identifier":[{"system":"http://a b"}]}`, "Patient.identifier[0].system", "value", "whitespace is not allowed"},
		{"double space in code", `{"resourceType":"Patient","language":"en  US"}`, "Patient.language", "value", "not a valid code"},
	})
}

func TestFHIRJSONRules(t *testing.T) {
	runRules(t, []ruleCase{
		{"empty string", `{"resourceType":"Patient","name":[{"family":""}]}`, "Patient.name[0].family", "invalid", "empty or whitespace-only string"},
		{"whitespace string", `{"resourceType":"Patient","name":[{"family":" \t "}]}`, "Patient.name[0].family", "invalid", "empty or whitespace-only"},
		{"empty uri", `{"resourceType":"Patient","identifier":[{"system":""}]}`, "Patient.identifier[0].system", "invalid", "empty"},
		{"empty code", `{"resourceType":"Patient","gender":""}`, "Patient.gender", "value", "not an allowed code"},
		{"empty array", `{"resourceType":"Patient","name":[]}`, "Patient.name", "invalid", "empty array"},
		{"empty object", `{"resourceType":"Patient","maritalStatus":{}}`, "Patient.maritalStatus", "invalid", "empty object"},
		{"null property", `{"resourceType":"Patient","active":null}`, "Patient.active", "invalid", "null is not allowed"},
		{"null item alone", `{"resourceType":"Patient","name":[{"given":["a",null]}]}`, "Patient.name[0].given[1]", "invalid", "'_given' array has a value"},
		{"null item with companion", `{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,{"id":"g"}]}]}`, "", "", ""},
		{"null in both", `{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,null]}]}`, "Patient.name[0]._given[1]", "invalid", "null is allowed"},
		{"control character", `{"resourceType":"Patient","name":[{"family":"a\u0001b"}]}`, "Patient.name[0].family", "invalid", "control character U+0001"},
		{"tab and newline", `{"resourceType":"Patient","name":[{"text":"a\tb\r\nc"}]}`, "", "", ""},
		{"base64", `{"resourceType":"Patient","photo":[{"data":"Zm9v YmFy\nYQ=="}]}`, "", "", ""},
		{"bad base64", `{"resourceType":"Patient","photo":[{"data":"Zm9v!"}]}`, "Patient.photo[0].data", "value", "not valid base64"},
		{"base64 length", `{"resourceType":"Patient","photo":[{"data":"Zm9vY"}]}`, "Patient.photo[0].data", "value", "not valid base64"},
		{"base64 data after padding", `{"resourceType":"Patient","photo":[{"data":"Zg==Zg=="}]}`, "Patient.photo[0].data", "value", "not valid base64"},
		{"inline base64 choice", `{"resourceType":"Patient","extension":[{"url":"http://x","valueBase64Binary":"Zm9v=A=="}]}`, "Patient.extension[0].valueBase64Binary", "value", "not valid base64"},
	})
}

func TestNarrativeRules(t *testing.T) {
	pat := func(div string) string {
		return `{"resourceType":"Patient","text":{"status":"generated","div":"` + div + `"}}`
	}
	const x = `<div xmlns=\"http://www.w3.org/1999/xhtml\">`
	runRules(t, []ruleCase{
		{"plain", pat(x + `<p class=\"on\">on=1 <b>bold</b></p><a href=\"#x\">b</a></div>`), "", "", ""},
		{"not a div", pat(`<p>x</p>`), "Patient.text.div", "invalid", "single <div>"},
		{"divx", pat(`<divx>x</divx>`), "Patient.text.div", "invalid", "single <div>"},
		{"unclosed", pat(x + `x`), "Patient.text.div", "invalid", "end with </div>"},
		{"script", pat(x + `<SCRIPT>x</SCRIPT></div>`), "Patient.text.div", "invalid", "<SCRIPT> is not allowed"},
		{"iframe", pat(x + `<iframe src=\"x\"/></div>`), "Patient.text.div", "invalid", "<iframe>"},
		{"object", pat(x + `<object/></div>`), "Patient.text.div", "invalid", "<object>"},
		{"embed", pat(x + `<embed/></div>`), "Patient.text.div", "invalid", "<embed>"},
		{"form", pat(x + `<form></form></div>`), "Patient.text.div", "invalid", "<form>"},
		{"event handler", pat(x + `<p class=\"a\" onClick = \"x()\">a</p></div>`), "Patient.text.div", "invalid", "'onClick' is not allowed"},
		{"javascript url", pat(x + `<a href=\"JavaScript:x()\">a</a></div>`), "Patient.text.div", "invalid", "javascript:"},
		{"handler inside quotes is text", pat(x + `<p title=\"a onclick=b\">a</p></div>`), "", "", ""},
		{"not a string", `{"resourceType":"Patient","text":{"status":"generated","div":1}}`, "Patient.text.div", "structure", "must be a string"},
	})
}

func TestRequiredElements(t *testing.T) {
	const subj = `"subject":{"reference":"Patient/p"}`
	runRules(t, []ruleCase{
		{"primitive", `{"resourceType":"Observation","code":{"text":"x"}}`, "Observation", "required", "missing required element 'status'"},
		{"primitive by companion", `{"resourceType":"Observation","_status":{"extension":[{"url":"http://x","valueString":"y"}]},"code":{"text":"x"}}`, "", "", ""},
		{"choice", `{"resourceType":"MedicationRequest","status":"active","intent":"order",` + subj + `}`, "MedicationRequest", "required", "missing required element 'medication[x]'"},
		{"choice present", `{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationReference":{"reference":"Medication/m"},` + subj + `}`, "", "", ""},
		{"immunization occurrence", `{"resourceType":"Immunization","status":"completed","vaccineCode":{"text":"x"},"patient":{"reference":"Patient/p"}}`, "Immunization", "required", "'occurrence[x]'"},
		{"immunization", `{"resourceType":"Immunization","status":"completed","vaccineCode":{"text":"x"},"patient":{"reference":"Patient/p"},"occurrenceString":"May"}`, "", "", ""},
		{"bundle type", `{"resourceType":"Bundle"}`, "Bundle", "required", "'type'"},
		{"extension url", `{"resourceType":"Patient","extension":[{"valueString":"x"}]}`, "Patient.extension[0]", "required", "'url'"},
		{"versioned extension", `{"resourceType":"Patient","extension":[{"url":"http://x|1","valueString":"x"}]}`, "Patient.extension[0].url", "value", "must not contain a version"},
		{"nested extension url", `{"resourceType":"Patient","name":[{"extension":[{"extension":[{"valueString":"x"}],"url":"http://x"}]}]}`, "Patient.name[0].extension[0].extension[0]", "required", "'url'"},
		{"consent", `{"resourceType":"Consent","status":"active","scope":{"text":"x"}}`, "Consent", "required", "'category'"},
		{"contained resource", `{"resourceType":"Patient","contained":[{"resourceType":"Observation","id":"o","code":{"text":"x"}}]}`, "Patient.contained[0]", "required", "'status'"},
	})
}

func TestPeriodRule(t *testing.T) {
	period := func(start, end string) string {
		return `{"resourceType":"Patient","name":[{"period":{"start":"` + start + `","end":"` + end + `"}}]}`
	}
	const p = "Patient.name[0].period"
	runRules(t, []ruleCase{
		{"ordered dates", period("2020-01-01", "2020-01-02"), "", "", ""},
		{"equal dates", period("2020-01-01", "2020-01-01"), "", "", ""},
		{"start after end", period("2020-01-02", "2020-01-01"), p, "invariant", "per-1: start '2020-01-02' is after end"},
		{"year before dateTime", period("2019", "2020-01-01T00:00:00Z"), "", "", ""},
		{"same year, different precision", period("2020", "2020-06"), p, "invariant", "cannot be ordered"},
		{"date vs dateTime same day", period("2023-06-21", "2023-06-21T06:20:00Z"), p, "invariant", "cannot be ordered"},
		{"date vs dateTime next day", period("2023-06-21", "2023-06-22T00:00:00Z"), "", "", ""},
		{"dateTime vs date earlier day", period("2023-06-22T00:00:00Z", "2023-06-21"), p, "invariant", "is after end"},
		{"timezones normalised", period("2020-01-01T10:00:00+02:00", "2020-01-01T09:00:00Z"), "", "", ""},
		{"timezones after", period("2020-01-01T10:00:00-02:00", "2020-01-01T11:00:00Z"), p, "invariant", "is after end"},
		{"fractions", period("2020-01-01T10:00:00.5Z", "2020-01-01T10:00:00.25Z"), p, "invariant", "is after end"},
		{"many fraction digits", period("2020-01-01T10:00:00.1234567891Z", "2020-01-01T10:00:00.1234567890Z"), "", "", ""},
		{"leap second", period("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"), "", "", ""},
		{"start only", `{"resourceType":"Patient","name":[{"period":{"start":"2020"}}]}`, "", "", ""},
	})
}

func TestRiskAssessmentRule(t *testing.T) {
	ra := func(p string) string {
		return `{"resourceType":"RiskAssessment","status":"final","subject":{"reference":"Patient/1"},"prediction":[{"probabilityDecimal":` + p + `}]}`
	}
	const p = "RiskAssessment.prediction[0]"
	runRules(t, []ruleCase{
		{"100", ra("100"), "", "", ""},
		{"1e2", ra("1e2"), "", "", ""},
		{"100.000", ra("100.000"), "", "", ""},
		{"0.5", ra("0.5"), "", "", ""},
		{"-3", ra("-3"), "", "", ""},
		{"101.0", ra("101.0"), p, "invariant", "ras-2"},
		{"just above 100", ra("100.000000000000000001"), p, "invariant", "ras-2"},
		{"1.0001E2", ra("1.0001E2"), p, "invariant", "ras-2"},
		{"huge exponent", ra("1e999999999999"), p, "invariant", "ras-2"},
		{"tiny", ra("1e-999999999999"), "", "", ""},
	})
}

func TestReferenceRules(t *testing.T) {
	ref := func(r string) string {
		return `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"` + r + `"}}`
	}
	const p = "Observation.subject.reference"
	runRules(t, []ruleCase{
		{"relative", ref("Patient/123"), "", "", ""},
		{"versioned", ref("Patient/123/_history/2"), "", "", ""},
		{"absolute", ref("https://example.org/fhir/Patient/123"), "", "", ""},
		{"urn:uuid", ref("urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b"), "", "", ""},
		{"urn:oid", ref("urn:oid:1.2.840.10008"), "", "", ""},
		{"conditional", ref("Patient?identifier=https://github.com/synthetichealth/synthea|abc"), "", "", ""},
		{"unknown type", ref("Patients/123"), p, "value", "not a valid reference"},
		{"bad id", ref("Patient/a_b"), p, "value", "not a valid reference"},
		{"too many parts", ref("fhir/Patient/123"), p, "value", "not a valid reference"},
		{"bad uuid", ref("urn:uuid:1234"), p, "value", "not a valid reference"},
		{"bad oid", ref("urn:oid:1.02"), p, "value", "not a valid reference"},
		{"empty query", ref("Patient?"), p, "value", "not a valid reference"},
		{"dangling local", ref("#nope"), "Observation.subject", "invariant", "ref-1"},
		{"container", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"contained":[{"resourceType":"Patient","id":"p","link":[{"other":{"reference":"#"},"type":"seealso"}]}],"subject":{"reference":"#p"}}`, "", "", ""},
		{"contained to contained", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"contained":[{"resourceType":"Patient","id":"p","managingOrganization":{"reference":"#o"}},{"resourceType":"Organization","id":"o"}],"subject":{"reference":"#p"}}`, "", "", ""},
		{"local refs do not cross entries", `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b","resource":{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o"}]}},{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2c","resource":{"resourceType":"Patient","managingOrganization":{"reference":"#o"}}}]}`, "Bundle.entry[1].resource.managingOrganization", "invariant", "ref-1"},
	})
}

func TestBundleRules(t *testing.T) {
	bundle := func(typ string, entries ...string) string {
		return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`
	}
	entry := func(fullURL, rt, id string) string {
		return `{"fullUrl":"` + fullURL + `","resource":{"resourceType":"` + rt + `","id":"` + id + `"}}`
	}
	versioned := func(fullURL, v string) string {
		return `{"fullUrl":"` + fullURL + `","resource":{"resourceType":"Patient","id":"a","meta":{"versionId":"` + v + `"}}}`
	}
	historic := func(fullURL string) string {
		return `{"fullUrl":"` + fullURL + `","resource":{"resourceType":"Patient","id":"a"},"request":{"method":"PUT","url":"Patient/a"},"response":{"status":"200"}}`
	}
	const u1, u2 = "urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b", "urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2c"
	runRules(t, []ruleCase{
		{"ok", bundle("collection", entry(u1, "Patient", "a"), entry(u2, "Patient", "b")), "", "", ""},
		{"relative fullUrl", bundle("collection", entry("Patient/a", "Patient", "a")), "Bundle.entry[0]", "value", "not absolute"},
		{"empty fullUrl", bundle("collection", entry("", "Patient", "a")), "Bundle.entry[0].fullUrl", "invalid", "empty"},
		{"duplicate fullUrl", bundle("collection", entry(u1, "Patient", "a"), entry(u1, "Patient", "b")), "Bundle.entry[1]", "invalid", "also used by entry[0]"},
		{"duplicate id", bundle("collection", entry(u1, "Patient", "a"), entry(u2, "Patient", "a")), "Bundle.entry[1]", "invalid", "Patient/a is also in entry[0]"},
		{"same id, other type", bundle("collection", entry(u1, "Patient", "a"), entry(u2, "Group", "a")), "", "", ""},
		{"versions differ", bundle("collection", versioned(u1, "1"), versioned(u1, "2")), "", "", ""},
		{"history", bundle("history", historic(u1), historic(u1)), "", "", ""},
		{"nested bundle", `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"` + u1 + `","resource":` +
			bundle("collection", entry("x", "Patient", "a")) + `}]}`, "Bundle.entry[0].resource.entry[0]", "value", "not absolute"},
	})
}

// Issues are all collected, up to the cap, in input order.
func TestIssueCollection(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"resourceType":"Patient","name":[`)
	for i := 0; i < 300; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"family":""}`)
	}
	b.WriteString(`],"gender":"x"}`)
	got := parseIssues(t, b.String(), Limits{})
	if len(got) != maxIssues || got[0].Path != "Patient.name[0].family" || got[99].Path != "Patient.name[99].family" {
		t.Errorf("got %d issues, first %q, last %q; want %d from name[0] to name[99]", len(got), got[0].Path, got[len(got)-1].Path, maxIssues)
	}
	got = parseIssues(t, `{"resourceType":"Observation","status":"x","valueQuantity":{"value":"1"},"category":[],"zz":1}`, Limits{})
	want := []string{"Observation", "Observation.status", "Observation.valueQuantity.value", "Observation.category", "Observation"}
	var paths []string
	for _, is := range got {
		paths = append(paths, is.Path)
	}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("got paths %q, want %q (input order)%s", paths, want, describe(got))
	}
}

// R4 is FHIR 4.0.1; the published schema's enums stop at 4.0.0.
func TestFHIRVersion401(t *testing.T) {
	for _, v := range []string{"4.0.0", "4.0.1"} {
		doc := `{"resourceType":"CapabilityStatement","status":"active","date":"2026-01-01","kind":"instance","fhirVersion":"` + v + `","format":["json"]}`
		if _, err := Parse([]byte(doc), Limits{}); err != nil {
			t.Errorf("fhirVersion %s: %v", v, err)
		}
	}
	doc := `{"resourceType":"CapabilityStatement","status":"active","date":"2026-01-01","kind":"instance","fhirVersion":"4.0.2","format":["json"]}`
	if _, err := Parse([]byte(doc), Limits{}); err == nil {
		t.Error("fhirVersion 4.0.2 accepted")
	}
}
