package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// An OperationOutcome is valid R4 (our own Parse accepts it) and carries
// each issue's expression, diagnostics and position.
func TestOperationOutcome(t *testing.T) {
	_, err := Parse([]byte(`{"resourceType":"Patient","birthDate":"not a date","gender":"M"}`), Limits{})
	issues := OutcomeFromError(err)
	if len(issues) != 2 {
		t.Fatalf("got %d issues, want 2", len(issues))
	}
	doc := OperationOutcome(issues...)
	r, err := Parse(doc, Limits{})
	if err != nil {
		t.Fatalf("Parse(OperationOutcome): %v\n%s", err, doc)
	}
	if r.Type != "OperationOutcome" {
		t.Fatalf("got %s, want OperationOutcome", r.Type)
	}
	var oo struct {
		Issue []struct {
			Severity, Code, Diagnostics string
			Expression                  []string
			Extension                   []struct {
				URL          string
				ValueInteger int
			}
		}
	}
	if err := json.Unmarshal(doc, &oo); err != nil {
		t.Fatal(err)
	}
	for i, is := range issues {
		got := oo.Issue[i]
		if got.Severity != is.Severity || got.Code != is.Code || got.Diagnostics != is.Message ||
			!slices.Equal(got.Expression, []string{is.Path}) || len(got.Extension) != 2 ||
			got.Extension[0].ValueInteger != is.Line || got.Extension[1].ValueInteger != is.Column {
			t.Errorf("issue %d: got %+v, want %+v", i, got, is)
		}
	}
}

// Whatever the issues hold, the outcome stays valid R4.
func TestOperationOutcomeSanitizes(t *testing.T) {
	for _, issues := range [][]Issue{
		nil,
		{{}},
		{{Severity: "bad", Code: "nonsense", Path: " ", Message: "\x00\x01 \u00a0"}},
		{{Severity: "warning", Code: "security", Path: "a\nb", Message: "line1\nline2\t\xff <script>"}},
	} {
		doc := OperationOutcome(issues...)
		if _, err := Parse(doc, Limits{}); err != nil {
			t.Errorf("OperationOutcome(%+v) is invalid: %v\n%s", issues, err, doc)
		}
	}
}

func TestOutcomeFromError(t *testing.T) {
	if got := OutcomeFromError(nil); got != nil {
		t.Errorf("nil: got %+v, want none", got)
	}
	got := OutcomeFromError(fmt.Errorf("store: %w", errors.New("disk full")))
	if len(got) != 1 || got[0].Code != "exception" || got[0].Severity != "error" || got[0].Message != "store: disk full" {
		t.Errorf("plain error: got %+v", got)
	}
	ve := &ValidationError{Issues: []Issue{{Severity: "error", Code: "value", Path: "Patient.id", Message: "m"}}}
	got = OutcomeFromError(fmt.Errorf("wrapped: %w", ve))
	if !slices.Equal(got, ve.Issues) {
		t.Errorf("wrapped ValidationError: got %+v, want %+v", got, ve.Issues)
	}
}

func TestValidationErrorText(t *testing.T) {
	tests := []struct {
		issues []Issue
		want   string
	}{
		{nil, "fhir: invalid resource"},
		{[]Issue{{Path: "Patient.id", Message: "bad"}}, "fhir: Patient.id: bad"},
		{[]Issue{{Message: "malformed"}, {}, {}}, "fhir: malformed (and 2 more)"},
	}
	for _, tc := range tests {
		if got := (&ValidationError{Issues: tc.issues}).Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	if !errors.Is(&ValidationError{}, ErrInvalid) || errors.Is(&ValidationError{}, ErrTooLarge) {
		t.Error("ValidationError must match ErrInvalid, and ErrTooLarge only for too-costly issues")
	}
}
