package fhir

// AuditEvent is an R4 AuditEvent with the elements medledger's access-log export
// writes (after IHE Basic Audit Log Patterns). ResourceType is "AuditEvent"; NewAuditEvent
// sets it.
type AuditEvent struct {
	ResourceType   string            `json:"resourceType"`
	ID             string            `json:"id"`
	Meta           *Meta             `json:"meta,omitempty"`
	Type           Coding            `json:"type"`
	Subtype        []Coding          `json:"subtype,omitempty"`
	Action         string            `json:"action,omitempty"`
	Recorded       string            `json:"recorded"`
	Outcome        string            `json:"outcome,omitempty"`
	OutcomeDesc    string            `json:"outcomeDesc,omitempty"`
	PurposeOfEvent []CodeableConcept `json:"purposeOfEvent,omitempty"`
	Agent          []AuditAgent      `json:"agent"`
	Source         AuditSource       `json:"source"`
	Entity         []AuditEntity     `json:"entity,omitempty"`
}

// AuditEvent outcomes (R4 audit-event-outcome) medledger writes.
const (
	AuditOutcomeSuccess      = "0"
	AuditOutcomeMinorFailure = "4"
)

// NewAuditEvent is an AuditEvent with its id and recorded instant set.
func NewAuditEvent(id, recorded string) *AuditEvent {
	return &AuditEvent{ResourceType: "AuditEvent", ID: id, Recorded: recorded}
}

// AuditAgent is an AuditEvent.agent. Requestor is written even when false: R4
// requires it.
type AuditAgent struct {
	Type         *CodeableConcept  `json:"type,omitempty"`
	Who          Reference         `json:"who"`
	Requestor    bool              `json:"requestor"`
	PurposeOfUse []CodeableConcept `json:"purposeOfUse,omitempty"`
}

// AuditSource is an AuditEvent.source.
type AuditSource struct {
	Site     string    `json:"site,omitempty"`
	Observer Reference `json:"observer"`
	Type     []Coding  `json:"type"`
}

// AuditEntity is an AuditEvent.entity.
type AuditEntity struct {
	What        Reference     `json:"what"`
	Type        *Coding       `json:"type,omitempty"`
	Role        *Coding       `json:"role,omitempty"`
	Description string        `json:"description,omitempty"`
	Detail      []AuditDetail `json:"detail,omitempty"`
}

// AuditDetail is an AuditEvent.entity.detail with a string value.
type AuditDetail struct {
	Type        string `json:"type"`
	ValueString string `json:"valueString"`
}
