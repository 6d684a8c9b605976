package demo

import (
	"bytes"
	"strings"
	"testing"

	"github.com/medledger/medledger"
	"github.com/medledger/medledger/fhir"
)

// TestDemo runs the whole demo through the real stack and checks that every step
// behaved and that the narration itself leaks no PHI.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := Run(t.Context(), &out, Config{Dir: t.TempDir()}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "All 6 steps behaved as expected.") {
		t.Fatalf("demo output lacks its verdict:\n%s", out.String())
	}
	for _, name := range medledger.SampleBundles {
		b, _ := medledger.SampleData.ReadFile(name)
		terms, err := fhir.PHITerms(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, term := range terms {
			if strings.Contains(out.String(), term) {
				t.Errorf("demo output contains PHI %q", term)
			}
		}
	}
}
