package fhir

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParseBundle parses and validates the largest Synthea bundle in
// testdata (Cleo_Friesen, 1.5 MB).
func BenchmarkParseBundle(b *testing.B) {
	data := largestSynthea(b)
	if _, err := ParseBundle(data, Limits{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBundle(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func largestSynthea(tb testing.TB) []byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(testdata, "synthea", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no Synthea bundles in %s: %v", testdata, err)
	}
	var best []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if len(data) > len(best) {
			best = data
		}
	}
	return best
}
