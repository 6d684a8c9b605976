package demo

import (
	"strings"
	"testing"

	"github.com/medledger/medledger"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/nodetest"
)

// TestDemo runs the whole demo through the real stack and checks that every step
// behaved and that the narration itself leaks no PHI.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	var out, logs nodetest.SyncBuffer
	if err := Run(t.Context(), &out, Config{Dir: t.TempDir(), Logs: &logs}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "All 13 steps behaved as expected.") {
		t.Fatalf("demo output lacks its verdict:\n%s", out.String())
	}
	if !strings.Contains(logs.String(), `"key released"`) {
		t.Fatal("the nodes logged no key release")
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
			if strings.Contains(logs.String(), term) {
				t.Errorf("the nodes' logs contain PHI %q", term)
			}
		}
	}
}
