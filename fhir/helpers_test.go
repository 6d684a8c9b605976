package fhir

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// testdata is the shared FHIR test data, relative to this package.
const testdata = "../testdata/fhir"

// readDir returns the JSON files of a testdata folder, by base name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testdata, dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no JSON files in %s/%s: %v", testdata, dir, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = data
	}
	return out
}

// issuesOf returns the issues of a *ValidationError; other errors fail.
func issuesOf(t *testing.T, err error) []Issue {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return ve.Issues
}

// describe lists issues one per line for failure messages.
func describe(issues []Issue) string {
	var b strings.Builder
	for _, is := range issues {
		b.WriteString("\n\t" + is.Severity + " " + is.Code + " " + is.Path + " @" +
			strconv.Itoa(is.Line) + ":" + strconv.Itoa(is.Column) + " " + is.Message)
	}
	if b.Len() == 0 {
		return " (none)"
	}
	return b.String()
}

// mustParse parses src (a test literal) and fails on any issue.
func mustParse(t *testing.T, src string) *Resource {
	t.Helper()
	r, err := Parse([]byte(src), Limits{})
	if err != nil {
		t.Fatalf("Parse(%s): got issues%s, want none", src, describe(issuesOf(t, err)))
	}
	return r
}

// parseIssues parses src and returns its issues (none if valid).
func parseIssues(t *testing.T, src string, lim Limits) []Issue {
	t.Helper()
	_, err := Parse([]byte(src), lim)
	return issuesOf(t, err)
}

// hasIssue reports whether some issue has the path, code and a message
// containing msg.
func hasIssue(issues []Issue, path, code, msg string) bool {
	for _, is := range issues {
		if is.Path == path && is.Code == code && strings.Contains(is.Message, msg) {
			return true
		}
	}
	return false
}
