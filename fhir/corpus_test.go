package fhir

import (
	"bytes"
	"testing"
)

// Every Synthea bundle in testdata is a valid R4 Bundle.
func TestSyntheaBundlesAccepted(t *testing.T) {
	for name, data := range readDir(t, "synthea") {
		t.Run(name, func(t *testing.T) {
			b, err := ParseBundle(data, Limits{})
			if err != nil {
				t.Fatalf("ParseBundle: got issues%s, want none", describe(issuesOf(t, err)))
			}
			if b.Type != "Bundle" || (b.BundleType != "transaction" && b.BundleType != "batch") {
				t.Errorf("got Type %q BundleType %q, want Bundle transaction|batch", b.Type, b.BundleType)
			}
			if !bytes.Equal(b.Raw, data) {
				t.Error("Raw differs from the input bytes")
			}
		})
	}
}

// The HL7 R4 Consent and AuditEvent examples are published valid R4.
func TestHL7ExamplesAccepted(t *testing.T) {
	for _, c := range []struct{ dir, typ string }{{"consent", "Consent"}, {"auditevent", "AuditEvent"}} {
		for name, data := range readDir(t, c.dir) {
			t.Run(name, func(t *testing.T) {
				r, err := Parse(data, Limits{})
				if err != nil {
					t.Fatalf("Parse: got issues%s, want none", describe(issuesOf(t, err)))
				}
				if r.Type != c.typ || r.ID == "" {
					t.Errorf("got Type %q ID %q, want %s with an id", r.Type, r.ID, c.typ)
				}
			})
		}
	}
}
