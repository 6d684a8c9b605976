package fhir

// DocumentReference is an R4 DocumentReference with the elements medledger writes for a
// record: its identifiers, status, categories, subject, custodian and where to fetch it.
// ResourceType is "DocumentReference".
type DocumentReference struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Identifier   []Identifier      `json:"identifier"`
	Status       string            `json:"status"`
	Category     []CodeableConcept `json:"category,omitempty"`
	Subject      *Reference        `json:"subject"`
	Custodian    *Reference        `json:"custodian,omitempty"`
	Content      []DocumentContent `json:"content"`
}

// DocumentContent is a DocumentReference.content.
type DocumentContent struct {
	Attachment Attachment `json:"attachment"`
}

// Attachment is an R4 Attachment given by URL.
type Attachment struct {
	ContentType string `json:"contentType"`
	URL         string `json:"url"`
}
