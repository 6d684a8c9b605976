package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/medledger/medledger/consent"
)

// The export of access-log events as FHIR R4 AuditEvents, after IHE Basic Audit Log
// Patterns (BALP, https://profiles.ihe.net/ITI/BALP/; source of the profiles:
// github.com/IHE/ITI.BasicAudit, input/fsh/AuthZ.fsh, Disclose.fsh, PatientCreate.fsh,
// PatientDelete.fsh). Each chain event kind maps to one pattern:
//
//	access-granted, access-denied  AuthZconsent: type DCM 110113 "Security Alert",
//	                               subtype BALP AuthZsubType AuthZ-Consent, action E;
//	                               outcome 0 (permit) or 4 (deny)
//	emergency-access               type DCM 110113, subtype DCM 110127 "Emergency
//	                               Override Started", action E, purposeOfEvent ETREAT
//	                               (as HL7's R4 example-breakglass-start)
//	key-released                   PrivacyDisclosure.Source: type DCM 110106 "Export",
//	                               subtype iso-21089-lifecycle disclose, action R
//	consent-granted / -revoked     Create / Update: type audit-event-type rest,
//	                               subtype restful-interaction create / update
//	record-registered / -erased    Create / Delete: type rest, subtype create / delete
//	emergency-reviewed             type DCM 110113, subtype medledger
//	                               emergency-reviewed (BALP has no review pattern)
//	any other kind                 type (KindSystem, kind): exported, not dropped
//
// Every resource carries the chain's kind as meta.tag (KindSystem), its log index as id
// and as a detail of the tx entity, and the chain as source.observer.
//
// Where BALP and the chain differ, the chain wins and no profile is claimed in
// meta.profile: the chain records no network addresses, users or client apps (BALP
// makes agent.network and the client agent mandatory), the chain itself is the
// observer of every event (BALP's disclosure pattern wants the releasing custodian),
// and a deny is outcome 4 "Minor failure" (R4: "often equivalent to an HTTP 400-class
// response"; the API answers 403) where BALP's deny example shows 8.

// Code systems the export uses, and medledger's own.
const (
	// KindSystem names the chain's audit event kinds (consent.AuditKind): every
	// exported AuditEvent has its kind as a meta.tag in this system.
	KindSystem = "urn:medledger:audit-kind"
	// ChainSystem names a consent chain by its chain ID (source.observer).
	ChainSystem = "urn:medledger:chain"
	// TxSystem names a chain tx by its TxID; GrantSystem an access decision by its
	// GrantID.
	TxSystem    = "urn:medledger:tx"
	GrantSystem = "urn:medledger:grant"

	systemDCM           = "http://dicom.nema.org/resources/ontology/DCM"
	systemEventType     = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	systemRestful       = "http://hl7.org/fhir/restful-interaction"
	systemLifecycle     = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
	systemAuthZ         = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
	systemActReason     = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	systemParticipation = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	systemRoleClass     = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
	systemSecurityRole  = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
	systemSCT           = "http://snomed.info/sct"
	systemEntityType    = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	systemObjectRole    = "http://terminology.hl7.org/CodeSystem/object-role"
	systemResourceType  = "http://hl7.org/fhir/resource-types"
	systemSourceType    = "http://terminology.hl7.org/CodeSystem/security-source-type"
)

var (
	typeSecurityAlert = coding{systemDCM, "110113", "Security Alert"}
	typeExport        = coding{systemDCM, "110106", "Export"}
	typeRest          = coding{systemEventType, "rest", "Restful Operation"}

	subAuthZConsent     = coding{systemAuthZ, "AuthZ-Consent", "Authorization Decision using Roles and Consent"}
	subEmergencyStarted = coding{systemDCM, "110127", "Emergency Override Started"}
	subDisclose         = coding{systemLifecycle, "disclose", "Disclose Record Lifecycle Event"}
	subCreate           = coding{systemRestful, "create", "create"}
	subUpdate           = coding{systemRestful, "update", "update"}
	subDelete           = coding{systemRestful, "delete", "delete"}
	subReviewed         = coding{KindSystem, string(consent.AuditEmergencyReviewed), "Emergency access reviewed"}

	agentRecipient   = coding{systemParticipation, "IRCP", "information recipient"}
	agentCustodian   = coding{systemParticipation, "CST", "custodian"}
	agentVerifier    = coding{systemParticipation, "VRF", "verifier"}
	agentPatient     = coding{systemRoleClass, "PAT", "patient"}
	agentAuthServer  = coding{systemSecurityRole, "authserver", "authorization server"}
	agentSource      = coding{systemDCM, "110153", "Source Role ID"}
	agentDestination = coding{systemDCM, "110152", "Destination Role ID"}
	agentAdvocate    = coding{systemSCT, "429577009", "Patient Advocate"}

	entityPerson       = coding{systemEntityType, "1", "Person"}
	entitySystemObject = coding{systemEntityType, "2", "System Object"}
	entityConsent      = coding{systemResourceType, "Consent", "Consent"}
	rolePatient        = coding{systemObjectRole, "1", "Patient"}
	roleReport         = coding{systemObjectRole, "3", "Report"}
	roleDomainResource = coding{systemObjectRole, "4", "Domain Resource"}

	sourceSecurityServer = coding{systemSourceType, "6", "Security Server"}
)

// Outcomes (R4 audit-event-outcome).
const (
	outcomeSuccess      = "0"
	outcomeMinorFailure = "4"
)

// Chain is what an export knows beyond the events: the chain's ID and the registered
// names of its hospitals (a hospital without a name is shown by its ID).
type Chain struct {
	ID    string
	Names map[consent.HospitalID]string
}

// NewChain is the Chain of a chain ID and its hospital registry.
func NewChain(id string, hospitals []consent.Hospital) Chain {
	c := Chain{ID: id, Names: make(map[consent.HospitalID]string, len(hospitals))}
	for _, h := range hospitals {
		c.Names[h.ID] = h.Name
	}
	return c
}

// ErrUnmappable is an event that cannot be exported faithfully: an ID of the wrong
// shape, or a field its kind needs missing. The chain never logs one; an error wrapping
// it means a corrupt or forged event.
var ErrUnmappable = errors.New("audit: event cannot be exported as a FHIR AuditEvent")

// ToFHIR returns event e as a FHIR R4 AuditEvent (JSON) shaped after IHE BALP, with id
// the event's log index. It fails with ErrUnmappable, never with a thinner resource.
func ToFHIR(e consent.AuditEvent, c Chain) ([]byte, error) {
	r, err := c.resource(e)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode AuditEvent %d: %w", e.Index, err)
	}
	return b, nil
}

// The R4 AuditEvent shapes the export writes (only the elements it uses).
type (
	resource struct {
		ResourceType   string    `json:"resourceType"`
		ID             string    `json:"id"`
		Meta           meta      `json:"meta"`
		Type           coding    `json:"type"`
		Subtype        []coding  `json:"subtype,omitempty"`
		Action         string    `json:"action,omitempty"`
		Recorded       string    `json:"recorded"`
		Outcome        string    `json:"outcome,omitempty"`
		OutcomeDesc    string    `json:"outcomeDesc,omitempty"`
		PurposeOfEvent []concept `json:"purposeOfEvent,omitempty"`
		Agent          []agent   `json:"agent"`
		Source         source    `json:"source"`
		Entity         []entity  `json:"entity,omitempty"`
	}
	meta struct {
		Tag []coding `json:"tag"`
	}
	coding struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display,omitempty"`
	}
	concept struct {
		Coding []coding `json:"coding,omitempty"`
		Text   string   `json:"text,omitempty"`
	}
	identifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	reference struct {
		Reference  string      `json:"reference,omitempty"`
		Identifier *identifier `json:"identifier,omitempty"`
		Display    string      `json:"display,omitempty"`
	}
	agent struct {
		Type         *concept  `json:"type,omitempty"`
		Who          reference `json:"who"`
		Requestor    bool      `json:"requestor"` // required in R4, even when false
		PurposeOfUse []concept `json:"purposeOfUse,omitempty"`
	}
	source struct {
		Site     string    `json:"site,omitempty"`
		Observer reference `json:"observer"`
		Type     []coding  `json:"type"`
	}
	entity struct {
		What        reference `json:"what"`
		Type        *coding   `json:"type,omitempty"`
		Role        *coding   `json:"role,omitempty"`
		Description string    `json:"description,omitempty"`
		Detail      []detail  `json:"detail,omitempty"`
	}
	detail struct {
		Type        string `json:"type"`
		ValueString string `json:"valueString"`
	}
)

// builder assembles one event's resource.
type builder struct {
	c Chain
	e consent.AuditEvent
	r *resource
}

func (c Chain) resource(e consent.AuditEvent) (*resource, error) {
	if err := c.check(&e); err != nil {
		return nil, fmt.Errorf("%w: event %d: %s", ErrUnmappable, e.Index, err)
	}
	b := &builder{c: c, e: e, r: &resource{
		ResourceType: "AuditEvent",
		ID:           strconv.FormatUint(e.Index, 10),
		Meta:         meta{Tag: []coding{{System: KindSystem, Code: string(e.Kind)}}},
		Recorded:     time.Unix(e.Time, 0).UTC().Format(time.RFC3339),
		Source:       source{Site: c.ID, Observer: c.chainRef(), Type: []coding{sourceSecurityServer}},
	}}
	switch e.Kind {
	case consent.AuditAccessGranted, consent.AuditAccessDenied:
		b.decision()
	case consent.AuditEmergency:
		b.emergency()
	case consent.AuditKeyReleased:
		b.release()
	case consent.AuditConsentGranted, consent.AuditConsentRevoked:
		b.consentChange()
	case consent.AuditRecordRegistered, consent.AuditRecordErased:
		b.recordChange()
	case consent.AuditEmergencyReviewed:
		b.review()
	default:
		b.other()
	}
	return b.r, nil
}

// decision is an access decision: BALP AuthZconsent.
func (b *builder) decision() {
	e := b.e
	b.r.Type, b.r.Subtype, b.r.Action = typeSecurityAlert, []coding{subAuthZConsent}, "E"
	if e.Kind == consent.AuditAccessGranted {
		b.r.Outcome, b.r.OutcomeDesc = outcomeSuccess, "permitted"
		if e.Consent != "" {
			b.r.OutcomeDesc = "permitted by consent " + string(e.Consent)
		}
	} else {
		b.r.Outcome, b.r.OutcomeDesc = outcomeMinorFailure, "denied"
		if e.Reason != "" {
			b.r.OutcomeDesc = "denied: " + e.Reason
		}
	}
	b.purpose()
	b.hospital(e.Hospital, agentRecipient, true, true)
	b.custodians("")
	b.chainAgent(agentAuthServer)
	b.patientEntity()
	b.recordEntity(roleDomainResource)
	b.consentEntity(entityConsent, nil)
	b.grantEntity(nil)
	b.txEntity()
}

// emergency is break-glass access: Security Alert, Emergency Override Started, ETREAT.
func (b *builder) emergency() {
	e := b.e
	b.r.Type, b.r.Subtype, b.r.Action = typeSecurityAlert, []coding{subEmergencyStarted}, "E"
	b.r.Outcome = outcomeSuccess
	b.r.OutcomeDesc = "break-glass access granted and flagged for review"
	if e.Reason != "" {
		b.r.OutcomeDesc += "; reason " + e.Reason
	}
	if b.e.Purpose == "" {
		b.e.Purpose = "ETREAT"
	}
	b.purpose()
	b.hospital(e.Hospital, agentRecipient, true, true)
	b.custodians("")
	b.chainAgent(agentAuthServer)
	b.patientEntity()
	b.recordEntity(roleDomainResource)
	var ds []detail
	if e.Reason != "" {
		ds = append(ds, detail{Type: "emergency-reason", ValueString: e.Reason})
	}
	b.grantEntity(ds)
	b.txEntity()
}

// release is a custodian releasing a record's key: BALP PrivacyDisclosure.Source.
func (b *builder) release() {
	e := b.e
	b.r.Type, b.r.Subtype, b.r.Action = typeExport, []coding{subDisclose}, "R"
	b.r.Outcome = outcomeSuccess
	b.r.OutcomeDesc = "record key released to " + string(e.Recipient)
	b.purpose()
	b.hospital(e.Hospital, agentSource, false, false)
	b.hospital(e.Recipient, agentDestination, true, true)
	if e.Consent != "" { // the patient authorised the disclosure by that consent
		b.agent(agentAdvocate, reference{Reference: "Patient/" + string(e.Patient)}, false, false)
	}
	b.chainAgent(agentAuthServer)
	b.patientEntity()
	b.recordEntity(roleReport)
	b.consentEntity(entityConsent, nil)
	b.grantEntity(nil)
	b.txEntity()
}

// consentChange is a patient granting (create) or revoking (update) a consent.
func (b *builder) consentChange() {
	sub, action, desc := subCreate, "C", "consent granted"
	if b.e.Kind == consent.AuditConsentRevoked {
		sub, action, desc = subUpdate, "U", "consent revoked"
	}
	b.r.Type, b.r.Subtype, b.r.Action = typeRest, []coding{sub}, action
	b.r.Outcome, b.r.OutcomeDesc = outcomeSuccess, desc
	b.agent(agentPatient, reference{Reference: "Patient/" + string(b.e.Patient)}, true, false)
	b.chainAgent(agentDestination)
	b.patientEntity()
	b.consentEntity(entitySystemObject, &roleDomainResource)
	b.txEntity()
}

// recordChange is a custodian registering a record (create) or the patient erasing it
// (delete).
func (b *builder) recordChange() {
	e := b.e
	b.r.Type, b.r.Outcome = typeRest, outcomeSuccess
	if e.Kind == consent.AuditRecordRegistered {
		b.r.Subtype, b.r.Action, b.r.OutcomeDesc = []coding{subCreate}, "C", "record registered"
		b.hospital(e.Hospital, agentCustodian, true, false)
		b.custodians(e.Hospital)
	} else {
		b.r.Subtype, b.r.Action, b.r.OutcomeDesc = []coding{subDelete}, "D", "record erased: its custodians destroy its key"
		b.agent(agentPatient, reference{Reference: "Patient/" + string(e.Patient)}, true, false)
		b.custodians("")
	}
	b.chainAgent(agentDestination)
	b.patientEntity()
	b.recordEntity(roleDomainResource)
	b.txEntity()
}

// review is a privacy officer's review of an emergency access.
func (b *builder) review() {
	e := b.e
	b.r.Type, b.r.Subtype, b.r.Action = typeSecurityAlert, []coding{subReviewed}, "E"
	b.r.Outcome = outcomeSuccess
	b.r.OutcomeDesc = "emergency access " + string(e.Grant) + " reviewed"
	var ds []detail
	if e.Reason != "" {
		b.r.OutcomeDesc += ": " + e.Reason
		ds = append(ds, detail{Type: "review-outcome", ValueString: e.Reason})
	}
	b.hospital(e.Hospital, agentVerifier, true, false)
	b.custodians(e.Hospital)
	b.chainAgent(agentAuthServer)
	b.patientEntity()
	b.recordEntity(roleDomainResource)
	b.grantEntity(ds)
	b.txEntity()
}

// other is a kind this package does not know yet: exported with what it has.
func (b *builder) other() {
	e := b.e
	b.r.Type = coding{System: KindSystem, Code: string(e.Kind)}
	b.purpose()
	b.hospital(e.Hospital, coding{}, true, true)
	b.hospital(e.Recipient, agentDestination, false, false)
	b.custodians(e.Hospital)
	b.chainAgent(coding{})
	b.patientEntity()
	b.recordEntity(roleDomainResource)
	b.consentEntity(entityConsent, nil)
	b.grantEntity(nil)
	b.txEntity()
}

func (b *builder) purpose() {
	if b.e.Purpose != "" {
		b.r.PurposeOfEvent = []concept{purposeConcept(b.e.Purpose)}
	}
}

func purposeConcept(p consent.Purpose) concept {
	return concept{Coding: []coding{{System: systemActReason, Code: string(p)}}, Text: PurposeStatement(p)}
}

// agent adds an agent of type typ (none if typ is zero).
func (b *builder) agent(typ coding, who reference, requestor, purpose bool) {
	a := agent{Who: who, Requestor: requestor}
	if typ != (coding{}) {
		a.Type = &concept{Coding: []coding{typ}}
	}
	if purpose && b.e.Purpose != "" {
		a.PurposeOfUse = []concept{purposeConcept(b.e.Purpose)}
	}
	b.r.Agent = append(b.r.Agent, a)
}

// hospital adds hospital h (if set) as an agent.
func (b *builder) hospital(h consent.HospitalID, typ coding, requestor, purpose bool) {
	if h != "" {
		b.agent(typ, b.c.orgRef(h), requestor, purpose)
	}
}

// custodians adds the record's custodians but skip, as custodian agents.
func (b *builder) custodians(skip consent.HospitalID) {
	for _, h := range b.e.Custodians {
		if h != skip {
			b.hospital(h, agentCustodian, false, false)
		}
	}
}

func (b *builder) chainAgent(typ coding) { b.agent(typ, b.c.chainRef(), false, false) }

func (b *builder) patientEntity() {
	b.r.Entity = append(b.r.Entity, entity{What: reference{Reference: "Patient/" + string(b.e.Patient)},
		Type: &entityPerson, Role: &rolePatient})
}

func (b *builder) recordEntity(role coding) {
	if b.e.Record != "" {
		b.r.Entity = append(b.r.Entity, entity{What: reference{Reference: "DocumentReference/" + string(b.e.Record)},
			Type: &entitySystemObject, Role: &role, Description: "encrypted FHIR record"})
	}
}

func (b *builder) consentEntity(typ coding, role *coding) {
	if b.e.Consent != "" {
		b.r.Entity = append(b.r.Entity, entity{What: reference{Reference: "Consent/" + string(b.e.Consent)},
			Type: &typ, Role: role})
	}
}

func (b *builder) grantEntity(ds []detail) {
	if b.e.Grant != "" {
		b.r.Entity = append(b.r.Entity, entity{What: reference{Identifier: &identifier{System: GrantSystem, Value: string(b.e.Grant)}},
			Type: &entitySystemObject, Description: "access decision on the consent chain", Detail: ds})
	}
}

// txEntity names the tx that caused the event, with its height and the event's log
// index: what a verifier needs to find it on the chain and prove its inclusion.
func (b *builder) txEntity() {
	ds := []detail{
		{Type: "height", ValueString: strconv.FormatInt(int64(b.e.Height), 10)},
		{Type: "log-index", ValueString: strconv.FormatUint(b.e.Index, 10)},
	}
	what := reference{Display: "consent chain tx"}
	if b.e.Tx != "" {
		what = reference{Identifier: &identifier{System: TxSystem, Value: string(b.e.Tx)}}
	}
	b.r.Entity = append(b.r.Entity, entity{What: what, Type: &entitySystemObject,
		Description: "consent chain transaction", Detail: ds})
}

func (c Chain) chainRef() reference {
	return reference{Identifier: &identifier{System: ChainSystem, Value: c.ID}, Display: "medledger consent chain " + c.ID}
}

func (c Chain) orgRef(h consent.HospitalID) reference {
	return reference{Reference: "Organization/" + string(h), Display: cleanText(c.Names[h])}
}

var (
	patientPattern  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	idPattern       = regexp.MustCompile(`^[0-9a-f]{32}$`) // RecordID, ConsentID, GrantID, TxID
	hospitalPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	kindPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	purposePattern  = regexp.MustCompile(`^[A-Z]{1,32}$`)
	reasonPattern   = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	chainIDPattern  = regexp.MustCompile(`^[\x21-\x7e]{1,64}$`) // printable ASCII, no spaces
)

// maxRecorded is the last second a FHIR instant can hold (9999-12-31T23:59:59Z).
const maxRecorded = 253402300799

// check rejects what the export would have to drop or could not write as valid FHIR:
// IDs of the wrong shape, and fields an event's kind needs.
func (c Chain) check(e *consent.AuditEvent) error {
	if !chainIDPattern.MatchString(c.ID) {
		return fmt.Errorf("chain ID %q is not 1-64 printable ASCII characters", c.ID)
	}
	if !kindPattern.MatchString(string(e.Kind)) {
		return fmt.Errorf("kind %q is not a code", e.Kind)
	}
	if e.Time <= 0 || e.Time > maxRecorded {
		return fmt.Errorf("block time %d is out of range", e.Time)
	}
	if err := checkIDs(e); err != nil {
		return err
	}
	for _, f := range required[e.Kind] {
		if f.empty(e) {
			return fmt.Errorf("a %s event needs its %s", e.Kind, f.name)
		}
	}
	return nil
}

func checkIDs(e *consent.AuditEvent) error {
	checks := []struct {
		name, value string
		re          *regexp.Regexp
	}{
		{"patient", string(e.Patient), patientPattern},
		{"record", string(e.Record), idPattern},
		{"consent", string(e.Consent), idPattern},
		{"grant", string(e.Grant), idPattern},
		{"tx", string(e.Tx), idPattern},
		{"hospital", string(e.Hospital), hospitalPattern},
		{"recipient", string(e.Recipient), hospitalPattern},
		{"purpose", string(e.Purpose), purposePattern},
		{"reason", e.Reason, reasonPattern},
	}
	for _, ch := range checks {
		if (ch.value != "" || ch.name == "patient") && !ch.re.MatchString(ch.value) {
			return fmt.Errorf("%s %q has the wrong shape", ch.name, truncate(ch.value, 80))
		}
	}
	for _, h := range e.Custodians {
		if !hospitalPattern.MatchString(string(h)) {
			return fmt.Errorf("custodian %q is not a hospital ID", truncate(string(h), 80))
		}
	}
	return nil
}

// field is an event field a kind requires.
type field struct {
	name  string
	empty func(*consent.AuditEvent) bool
}

var (
	fRecord    = field{"record", func(e *consent.AuditEvent) bool { return e.Record == "" }}
	fHospital  = field{"hospital", func(e *consent.AuditEvent) bool { return e.Hospital == "" }}
	fRecipient = field{"recipient", func(e *consent.AuditEvent) bool { return e.Recipient == "" }}
	fGrant     = field{"grant", func(e *consent.AuditEvent) bool { return e.Grant == "" }}
	fConsent   = field{"consent", func(e *consent.AuditEvent) bool { return e.Consent == "" }}
)

// required lists, per known kind, the fields without which its pattern is not met.
var required = map[consent.AuditKind][]field{
	consent.AuditAccessGranted:     {fRecord, fHospital, fGrant},
	consent.AuditAccessDenied:      {fRecord, fHospital, fGrant},
	consent.AuditEmergency:         {fRecord, fHospital, fGrant},
	consent.AuditKeyReleased:       {fRecord, fHospital, fRecipient, fGrant},
	consent.AuditConsentGranted:    {fConsent},
	consent.AuditConsentRevoked:    {fConsent},
	consent.AuditRecordRegistered:  {fRecord, fHospital},
	consent.AuditRecordErased:      {fRecord},
	consent.AuditEmergencyReviewed: {fHospital, fGrant},
}

// cleanText makes a registry name a valid FHIR string: valid UTF-8, no control
// characters, trimmed ("" stays "", and is then omitted).
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// truncate shortens s to at most n bytes for a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
