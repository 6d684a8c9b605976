package fhir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input panics; every verdict is a *ValidationError with
// well-formed issues whose OperationOutcome is itself valid; an accepted
// input parses again to the same resource.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testdata, "invalid", "*.json"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b",` +
		`"resource":{"resourceType":"Patient","id":"p","name":[{"given":["A",null],"_given":[null,{"id":"x"}]}],` +
		`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data, Limits{MaxDepth: 32})
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Issues) == 0 || len(ve.Issues) > maxIssues {
				t.Fatalf("got %v, want a *ValidationError with 1..%d issues", err, maxIssues)
			}
			if _, err := Parse(OperationOutcome(ve.Issues...), Limits{}); err != nil {
				t.Fatalf("OperationOutcome of the issues is invalid: %v", err)
			}
			return
		}
		again, err := Parse(r.Raw, Limits{MaxDepth: 32})
		if err != nil || again.Type != r.Type || again.ID != r.ID {
			t.Fatalf("accepted once, then got %v / %+v", err, again)
		}
	})
}
