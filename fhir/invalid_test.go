package fhir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// invalidCase is one entry of testdata/fhir/invalid-index.json.
type invalidCase struct {
	File      string `json:"file"`
	ValidJSON bool   `json:"valid_json"`
	Errors    []struct {
		Severity   string  `json:"severity"`
		Code       string  `json:"code"`
		Text       string  `json:"text"`
		Expression *string `json:"expression"`
	} `json:"hl7_validator_errors"`
}

// comment matches a FHIRPath comment: "Location.contained[0]/*Organization/org_1*/.id".
var comment = regexp.MustCompile(`/\*.*?\*/`)

// wantPaths returns the HL7 validator's expressions, comments stripped.
func (c invalidCase) wantPaths() []string {
	var out []string
	for _, e := range c.Errors {
		if e.Expression != nil {
			out = append(out, comment.ReplaceAllString(*e.Expression, ""))
		}
	}
	return out
}

func loadInvalidIndex(t *testing.T) []invalidCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata, "invalid-index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct{ Cases []invalidCase }
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Cases) == 0 {
		t.Fatal("invalid-index.json lists no cases")
	}
	return index.Cases
}

// Every invalid case is rejected. Well-formed ones get an issue at one of
// the paths the HL7 validator reports; malformed ones a fatal syntax issue
// with a position (and, where HL7 gives one, its path).
func TestInvalidIndex(t *testing.T) {
	for _, c := range loadInvalidIndex(t) {
		t.Run(c.File, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(testdata, "invalid", c.File))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data, Limits{})
			if err == nil {
				t.Fatalf("Parse accepted %s; want rejection at %q", c.File, c.wantPaths())
			}
			got := issuesOf(t, err)
			checkIssueShape(t, got)
			want := c.wantPaths()
			if !c.ValidJSON {
				checkSyntaxIssue(t, got, want)
				return
			}
			if !slices.ContainsFunc(got, func(is Issue) bool { return slices.Contains(want, is.Path) }) {
				t.Errorf("no issue at an expected path\ngot:%s\nwant one of: %q", describe(got), want)
			}
		})
	}
}

func checkSyntaxIssue(t *testing.T, got []Issue, want []string) {
	t.Helper()
	if len(got) != 1 || got[0].Severity != "fatal" || got[0].Code != "structure" || got[0].Line == 0 {
		t.Fatalf("got:%s\nwant one fatal structure issue with a line", describe(got))
	}
	if len(want) > 0 && !slices.Contains(want, got[0].Path) {
		t.Errorf("got path %q, want one of %q", got[0].Path, want)
	}
}

// checkIssueShape: issues are ordered by position, each has a known
// severity and code, a message and a position.
func checkIssueShape(t *testing.T, issues []Issue) {
	t.Helper()
	codes := []string{"structure", "invalid", "required", "value", "invariant", "too-long", "too-costly"}
	for i, is := range issues {
		if (is.Severity != "error" && is.Severity != "fatal") || !slices.Contains(codes, is.Code) || is.Message == "" || is.Line == 0 {
			t.Errorf("malformed issue %+v", is)
		}
		if i > 0 && (is.Line < issues[i-1].Line || is.Line == issues[i-1].Line && is.Column < issues[i-1].Column) {
			t.Errorf("issues out of input order:%s", describe(issues))
		}
	}
}
