package fhir

import (
	"errors"
	"strings"
	"testing"
)

// Malformed JSON stops the parse with one fatal issue: where, and at what
// FHIR path.
func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name, src string
		path      string
		line, col int
		msg       string
	}{
		{"empty input", ``, "", 1, 1, "unexpected end of input"},
		{"only space", " \n ", "", 2, 2, "unexpected end of input"},
		{"bare word", `Patient`, "", 1, 1, "unexpected 'P'"},
		{"unterminated object", `{"resourceType":"Patient"`, "Patient", 1, 26, "expected ',' or '}'"},
		{"bracket for brace", "{\"resourceType\":\"Patient\",\n \"name\":[{\"given\":[\"A\"]]}", "Patient.name[0]", 2, 24, "unexpected ']'"},
		{"trailing comma", `{"resourceType":"Patient","id":"a",}`, "Patient", 1, 36, "expected a property name"},
		{"single quotes", `{'resourceType':'Patient'}`, "", 1, 2, "expected a property name"},
		{"missing colon", `{"resourceType" "Patient"}`, "", 1, 17, "expected ':'"},
		{"trailing dot", `{"resourceType":"Observation","valueQuantity":{"value":925.}}`, "Observation.valueQuantity.value", 1, 60, "a digit must follow the decimal point"},
		{"leading zero", `{"resourceType":"Observation","valueInteger":01}`, "Observation.valueInteger", 1, 47, "leading zeros"},
		{"bad exponent", `{"resourceType":"Observation","valueInteger":1e}`, "Observation.valueInteger", 1, 48, "exponent"},
		{"NaN", `{"resourceType":"Observation","valueDecimal":NaN}`, "Observation.valueDecimal", 1, 46, "unexpected 'N'"},
		{"comment", "{\"resourceType\":\"Patient\", // c\n}", "Patient", 1, 28, "expected a property name"},
		{"raw newline in string", "{\"resourceType\":\"Patient\",\"id\":\"a\nb\"}", "Patient.id", 1, 34, "control character"},
		{"bad escape", `{"resourceType":"Patient","id":"a\qb"}`, "Patient.id", 1, 34, `invalid escape '\q'`},
		{"short unicode escape", `{"resourceType":"Patient","id":"\u12"}`, "Patient.id", 1, 33, `four hex digits`},
		{"invalid UTF-8", "{\"resourceType\":\"Patient\",\"id\":\"a\xffb\"}", "Patient.id", 1, 34, "invalid UTF-8"},
		{"unterminated string", `{"resourceType":"Patient","id":"abc`, "Patient.id", 1, 36, "unterminated string"},
		{"trailing data", `{"resourceType":"Patient"} {}`, "", 1, 28, "after the end of the top-level JSON value"},
		{"two values", "{\"resourceType\":\"Patient\"}\n[]", "", 2, 1, "after the end"},
		{"stray hash in array", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"A\"}\n#]}", "Patient.name", 2, 1, "unexpected '#'"},
		{"path before resourceType", `{"id":"a","name":[{"given":[1 2]}],"resourceType":"Patient"}`, "name[0].given", 1, 31, "expected ',' or ']'"},
		{"non-ASCII column", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Müller\" x}]}", "Patient.name[0]", 1, 54, "unexpected 'x'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := parseIssues(t, tc.src, Limits{})
			if len(got) != 1 {
				t.Fatalf("got:%s\nwant one fatal issue", describe(got))
			}
			is := got[0]
			if is.Severity != "fatal" || is.Code != "structure" || is.Path != tc.path ||
				is.Line != tc.line || is.Column != tc.col || !strings.Contains(is.Message, tc.msg) {
				t.Errorf("got:%s\nwant fatal structure %s @%d:%d %q…", describe(got), tc.path, tc.line, tc.col, tc.msg)
			}
		})
	}
}

// Well-formed JSON with escapes decodes to the right values.
func TestStringEscapes(t *testing.T) {
	r := mustParse(t, `{"resourceType":"Patient","id":"a\u002db","name":[{"family":"\"Q\" \\ \/ \u00e9 \ud83d\ude00 tab\there"}]}`)
	if r.ID != "a-b" {
		t.Errorf("got id %q, want %q", r.ID, "a-b")
	}
}

// A duplicate property is an error at the path of the object that holds it,
// at any depth, whichever property comes first; validation goes on.
func TestDuplicateKeys(t *testing.T) {
	tests := []struct {
		name, src, path string
	}{
		{"top level", `{"resourceType":"Patient","active":true,"active":false}`, "Patient"},
		{"nested", `{"resourceType":"Patient","name":[{"family":"A"},{"family":"B","given":["C"],"family":"D"}]}`, "Patient.name[1]"},
		{"in a contained resource", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o","id":"p"}]}`, "Patient.contained[0]"},
		{"before resourceType", `{"id":"a","id":"b","resourceType":"Patient"}`, "Patient"},
		{"resourceType itself", `{"resourceType":"Patient","resourceType":"Patient"}`, "Patient"},
		{"escaped spelling", `{"resourceType":"Patient","active":true,"\u0061ctive":true}`, "Patient"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := parseIssues(t, tc.src, Limits{})
			if !hasIssue(got, tc.path, "structure", "duplicate property") {
				t.Errorf("got:%s\nwant a duplicate-property issue at %s", describe(got), tc.path)
			}
		})
	}
	// Many keys switch the duplicate check to a map; it must still work.
	var b strings.Builder
	b.WriteString(`{"resourceType":"Parameters","parameter":[{"name":"a","part":[{"name":"b"}],"valueString":"x"`)
	for i := 0; i < 40; i++ {
		b.WriteString(`,"valueString":"x"`)
	}
	b.WriteString("}]}")
	got := parseIssues(t, b.String(), Limits{})
	if n := len(got); n != 40 || !hasIssue(got, "Parameters.parameter[0]", "structure", "duplicate property 'valueString'") {
		t.Errorf("got %d issues:%s\nwant 40 duplicates at Parameters.parameter[0]", n, describe(got))
	}
}

func TestLimits(t *testing.T) {
	deep := `{"resourceType":"Patient","extension":[` + strings.Repeat(`{"url":"http://x","extension":[`, 25) +
		`{"url":"http://x","valueString":"x"}` + strings.Repeat(`]}`, 25) + `]}`
	t.Run("depth within default", func(t *testing.T) { // 53 levels
		mustParse(t, deep)
	})
	t.Run("MaxDepth", func(t *testing.T) {
		got := parseIssues(t, deep, Limits{MaxDepth: 20})
		if len(got) != 1 || got[0].Code != "too-costly" || got[0].Severity != "fatal" || got[0].Line != 1 {
			t.Errorf("got:%s\nwant one fatal too-costly issue", describe(got))
		}
	})
	t.Run("MaxDepth deeper than the cap", func(t *testing.T) {
		src := strings.Repeat("[", 200000)
		got := parseIssues(t, src, Limits{MaxDepth: 1 << 30})
		if len(got) != 1 || got[0].Code != "too-costly" {
			t.Errorf("got:%s\nwant one too-costly issue", describe(got))
		}
	})
	t.Run("MaxBytes", func(t *testing.T) {
		src := `{"resourceType":"Patient","id":"a"}`
		mustParseWith(t, src, Limits{MaxBytes: int64(len(src))})
		_, err := Parse([]byte(src), Limits{MaxBytes: int64(len(src) - 1)})
		got := issuesOf(t, err)
		if len(got) != 1 || got[0].Code != "too-costly" || !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrInvalid) {
			t.Errorf("got %v:%s\nwant one too-costly issue matching ErrTooLarge", err, describe(got))
		}
	})
}

func mustParseWith(t *testing.T, src string, lim Limits) {
	t.Helper()
	if _, err := Parse([]byte(src), lim); err != nil {
		t.Fatalf("Parse: got %v, want success", err)
	}
}

// The top level must be an object naming a known resource type.
func TestTopLevel(t *testing.T) {
	tests := []struct {
		name, src, code, msg string
	}{
		{"array", `[{"resourceType":"Patient"}]`, "structure", "must be an object"},
		{"string", `"Patient"`, "structure", "must be an object"},
		{"null", `null`, "structure", "must be an object"},
		{"no resourceType", `{"id":"a"}`, "required", "missing 'resourceType'"},
		{"resourceType not a string", `{"resourceType":7}`, "structure", "'resourceType' must be a string"},
		{"unknown type", `{"resourceType":"Patients"}`, "invalid", "unknown resource type 'Patients'"},
		{"abstract type", `{"resourceType":"DomainResource"}`, "invalid", "unknown resource type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := parseIssues(t, tc.src, Limits{})
			if !hasIssue(got, "", tc.code, tc.msg) {
				t.Errorf("got:%s\nwant %s issue at the document: %q", describe(got), tc.code, tc.msg)
			}
		})
	}
}
