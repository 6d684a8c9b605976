package fhir

import (
	"encoding/json"
	"strings"
	"testing"
)

// validR4 marshals v and fails unless the result is valid R4 with no empty string.
func validR4(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b, Limits{}); err != nil {
		t.Fatalf("not valid R4: %v\n%s", err, b)
	}
	if strings.Contains(string(b), `""`) {
		t.Errorf("%s has an empty string", b)
	}
	return b
}

// The shapes, filled as their callers fill them, are valid R4.
func TestShapesValidR4(t *testing.T) {
	doc := DocumentReference{ResourceType: "DocumentReference", ID: "0123456789abcdef0123456789abcdef",
		Identifier: []Identifier{{Type: &CodeableConcept{Text: "IPFS CID"}, System: SystemURI, Value: "ipfs://bafy"}},
		Status:     "current", Category: []CodeableConcept{Concept(SystemResourceTypes, "Observation")},
		Subject: &Reference{Reference: "Patient/p"}, Custodian: &Reference{Reference: "Organization/ada"},
		Content: []DocumentContent{{Attachment: Attachment{ContentType: "application/fhir+json", URL: "/records/x"}}}}
	validR4(t, doc)

	empty := NewSearchSet("http://localhost/fhir/DocumentReference?patient=p")
	empty.SetTotal(0)
	if b := validR4(t, empty); !strings.Contains(string(b), `"total":0`) {
		t.Errorf("an empty searchset %s has no total 0", b)
	}
	page := NewSearchSet("http://localhost/fhir/DocumentReference?patient=p")
	page.AddMatch("http://localhost/fhir/DocumentReference/x", doc)
	page.AddLink("next", "http://localhost/fhir/DocumentReference?patient=p&_cursor=1")
	if b := validR4(t, page); strings.Contains(string(b), `"total"`) {
		t.Errorf("a page of unknown total %s has a total", b)
	}

	validR4(t, CapabilityStatement{ResourceType: "CapabilityStatement", Status: "active", Date: "2026-03-01T09:30:00Z",
		Kind: "instance", Software: CapabilitySoftware{Name: "medledger"},
		Implementation: CapabilityImplementation{Description: "a node"}, FHIRVersion: "4.0.1", Format: []string{"json"},
		Rest: []CapabilityRest{{Mode: "server", Resource: []CapabilityResource{{Type: "Consent",
			Interaction: Interactions("create", "search-type"),
			SearchParam: []CapabilitySearchParam{{Name: "patient", Type: "reference"}}}}}}})

	validR4(t, Parameters{ResourceType: "Parameters", Parameter: []Parameter{{Name: "reason", ValueCode: "life-threatening"},
		{Name: "resource", Resource: json.RawMessage(`{"resourceType":"Basic","code":{"text":"x"}}`)}}})
}
