package fhir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPHITerms(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testdata, "synthea", "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"))
	if err != nil {
		t.Fatal(err)
	}
	terms, err := PHITerms(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Kreiger", "Clemente", "1984-"} {
		if !slices.ContainsFunc(terms, func(s string) bool { return len(s) >= len(want) && s[:len(want)] == want }) {
			t.Errorf("terms %q lack %q", terms, want)
		}
	}
	if slices.Contains(terms, "") {
		t.Error("terms include an empty string (it would match everything)")
	}
	if _, err := PHITerms([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation"}}]}`)); err == nil {
		t.Error("a bundle without a Patient gave terms")
	}
}
