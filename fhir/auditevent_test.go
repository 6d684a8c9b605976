package fhir

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// An AuditEvent built from the shapes is valid R4; requestor is written even when
// false (R4 requires it; the schema does not check it) and empty elements are omitted.
func TestAuditEventShape(t *testing.T) {
	ae := NewAuditEvent("7", "2026-03-01T09:30:00Z")
	ae.Type = Coding{System: SystemDCM, Code: "110106", Display: "Export"}
	ae.Agent = []AuditAgent{{Who: Ref("Organization", "ada")}}
	ae.Source = AuditSource{Observer: Reference{Identifier: &Identifier{System: "urn:x", Value: "c"}},
		Type: []Coding{{System: SystemSecuritySourceType, Code: "6"}}}
	ae.Entity = []AuditEntity{{What: Ref("Patient", "p"), Detail: []AuditDetail{{Type: "height", ValueString: "1"}}}}
	b, err := json.Marshal(ae)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b, Limits{}); err != nil {
		t.Fatalf("not valid R4: %v\n%s", err, b)
	}
	for _, want := range []string{`"requestor":false`, `"resourceType":"AuditEvent"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s has no %s", b, want)
		}
	}
	if strings.Contains(string(b), `""`) {
		t.Errorf("%s has an empty string", b)
	}
}

func TestCodesIn(t *testing.T) {
	c := CodeableConcept{Coding: []Coding{{System: "a", Code: "1"}, {System: "b", Code: "2"}, {System: "a", Code: "3"}}}
	if got := c.CodesIn("a"); !slices.Equal(got, []string{"1", "3"}) {
		t.Errorf("CodesIn(a) = %v, want [1 3]", got)
	}
	var nilc *CodeableConcept
	if got := nilc.CodesIn("a"); got != nil {
		t.Errorf("nil CodesIn = %v, want nil", got)
	}
	if got := Concept("s", "c"); len(got.Coding) != 1 || got.Coding[0] != (Coding{System: "s", Code: "c"}) {
		t.Errorf("Concept = %+v", got)
	}
}
