package auditor

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
	"github.com/medledger/medledger/fhir"
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
//	erasure-attested               Delete, per custodian: type rest, subtype delete and
//	                               iso-21089-lifecycle destroy, action D; the
//	                               custodian that destroyed its key or share is the
//	                               agent (CST, requestor)
//	custody-changed                Update: type rest, subtype update, action U; the
//	                               custodian that handed its custody over or left is
//	                               the source agent (DCM 110153, requestor), the new
//	                               custodians CST agents
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

// medledger's own code systems (the standard ones are fhir's System constants).
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
)

var (
	typeSecurityAlert = fhir.Coding{System: fhir.SystemDCM, Code: "110113", Display: "Security Alert"}
	typeExport        = fhir.Coding{System: fhir.SystemDCM, Code: "110106", Display: "Export"}
	typeRest          = fhir.Coding{System: fhir.SystemAuditEventType, Code: "rest", Display: "Restful Operation"}

	subAuthZConsent     = fhir.Coding{System: fhir.SystemBALPAuthZ, Code: "AuthZ-Consent", Display: "Authorization Decision using Roles and Consent"}
	subEmergencyStarted = fhir.Coding{System: fhir.SystemDCM, Code: "110127", Display: "Emergency Override Started"}
	subDisclose         = fhir.Coding{System: fhir.SystemLifecycle, Code: "disclose", Display: "Disclose Record Lifecycle Event"}
	subCreate           = fhir.Coding{System: fhir.SystemRestfulInteraction, Code: "create", Display: "create"}
	subUpdate           = fhir.Coding{System: fhir.SystemRestfulInteraction, Code: "update", Display: "update"}
	subDelete           = fhir.Coding{System: fhir.SystemRestfulInteraction, Code: "delete", Display: "delete"}
	subDestroy          = fhir.Coding{System: fhir.SystemLifecycle, Code: "destroy", Display: "Destroy/Delete Record Lifecycle Event"}
	subReviewed         = fhir.Coding{System: KindSystem, Code: string(consent.AuditEmergencyReviewed), Display: "Emergency access reviewed"}

	agentRecipient   = fhir.Coding{System: fhir.SystemParticipationType, Code: "IRCP", Display: "information recipient"}
	agentCustodian   = fhir.Coding{System: fhir.SystemParticipationType, Code: "CST", Display: "custodian"}
	agentVerifier    = fhir.Coding{System: fhir.SystemParticipationType, Code: "VRF", Display: "verifier"}
	agentPatient     = fhir.Coding{System: fhir.SystemRoleClass, Code: "PAT", Display: "patient"}
	agentAuthServer  = fhir.Coding{System: fhir.SystemSecurityRoleType, Code: "authserver", Display: "authorization server"}
	agentSource      = fhir.Coding{System: fhir.SystemDCM, Code: "110153", Display: "Source Role ID"}
	agentDestination = fhir.Coding{System: fhir.SystemDCM, Code: "110152", Display: "Destination Role ID"}
	agentAdvocate    = fhir.Coding{System: fhir.SystemSNOMED, Code: "429577009", Display: "Patient Advocate"}

	entityPerson       = fhir.Coding{System: fhir.SystemAuditEntityType, Code: "1", Display: "Person"}
	entitySystemObject = fhir.Coding{System: fhir.SystemAuditEntityType, Code: "2", Display: "System Object"}
	entityConsent      = fhir.Coding{System: fhir.SystemResourceTypes, Code: "Consent", Display: "Consent"}
	rolePatient        = fhir.Coding{System: fhir.SystemObjectRole, Code: "1", Display: "Patient"}
	roleReport         = fhir.Coding{System: fhir.SystemObjectRole, Code: "3", Display: "Report"}
	roleDomainResource = fhir.Coding{System: fhir.SystemObjectRole, Code: "4", Display: "Domain Resource"}

	sourceSecurityServer = fhir.Coding{System: fhir.SystemSecuritySourceType, Code: "6", Display: "Security Server"}
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
var ErrUnmappable = errors.New("auditor: event cannot be exported as a FHIR AuditEvent")

// ToFHIR returns event e as a FHIR R4 AuditEvent (JSON) shaped after IHE BALP, with id
// the event's log index. It fails with ErrUnmappable, never with a thinner resource.
func ToFHIR(e consent.AuditEvent, c Chain) ([]byte, error) {
	r, err := c.resource(e)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("auditor: encode AuditEvent %d: %w", e.Index, err)
	}
	return b, nil
}

// builder assembles one event's resource.
type builder struct {
	c Chain
	e consent.AuditEvent
	r *fhir.AuditEvent
}

func (c Chain) resource(e consent.AuditEvent) (*fhir.AuditEvent, error) {
	if err := c.check(&e); err != nil {
		return nil, fmt.Errorf("%w: event %d: %s", ErrUnmappable, e.Index, err)
	}
	r := fhir.NewAuditEvent(strconv.FormatUint(e.Index, 10), time.Unix(e.Time, 0).UTC().Format(time.RFC3339))
	r.Meta = &fhir.Meta{Tag: []fhir.Coding{{System: KindSystem, Code: string(e.Kind)}}}
	r.Source = fhir.AuditSource{Site: c.ID, Observer: c.chainRef(), Type: []fhir.Coding{sourceSecurityServer}}
	b := &builder{c: c, e: e, r: r}
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
	case consent.AuditErasureAttested:
		b.shredded()
	case consent.AuditCustodyChanged:
		b.custodyChange()
	default:
		b.other()
	}
	return b.r, nil
}

// decision is an access decision: BALP AuthZconsent.
func (b *builder) decision() {
	e := b.e
	b.r.Type, b.r.Subtype, b.r.Action = typeSecurityAlert, []fhir.Coding{subAuthZConsent}, "E"
	if e.Kind == consent.AuditAccessGranted {
		b.r.Outcome, b.r.OutcomeDesc = fhir.AuditOutcomeSuccess, "permitted"
		if e.Consent != "" {
			b.r.OutcomeDesc = "permitted by consent " + string(e.Consent)
		}
	} else {
		b.r.Outcome, b.r.OutcomeDesc = fhir.AuditOutcomeMinorFailure, "denied"
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
	b.r.Type, b.r.Subtype, b.r.Action = typeSecurityAlert, []fhir.Coding{subEmergencyStarted}, "E"
	b.r.Outcome = fhir.AuditOutcomeSuccess
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
	var ds []fhir.AuditDetail
	if e.Reason != "" {
		ds = append(ds, fhir.AuditDetail{Type: "emergency-reason", ValueString: e.Reason})
	}
	b.grantEntity(ds)
	b.txEntity()
}

// release is a custodian releasing a record's key: BALP PrivacyDisclosure.Source.
func (b *builder) release() {
	e := b.e
	b.r.Type, b.r.Subtype, b.r.Action = typeExport, []fhir.Coding{subDisclose}, "R"
	b.r.Outcome = fhir.AuditOutcomeSuccess
	b.r.OutcomeDesc = "record key released to " + string(e.Recipient)
	b.purpose()
	b.hospital(e.Hospital, agentSource, false, false)
	b.hospital(e.Recipient, agentDestination, true, true)
	if e.Consent != "" { // the patient authorised the disclosure by that consent
		b.agent(agentAdvocate, fhir.Reference{Reference: "Patient/" + string(e.Patient)}, false, false)
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
	b.r.Type, b.r.Subtype, b.r.Action = typeRest, []fhir.Coding{sub}, action
	b.r.Outcome, b.r.OutcomeDesc = fhir.AuditOutcomeSuccess, desc
	b.agent(agentPatient, fhir.Reference{Reference: "Patient/" + string(b.e.Patient)}, true, false)
	b.chainAgent(agentDestination)
	b.patientEntity()
	b.consentEntity(entitySystemObject, &roleDomainResource)
	b.txEntity()
}

// recordChange is a custodian registering a record (create) or the patient erasing it
// (delete).
func (b *builder) recordChange() {
	e := b.e
	b.r.Type, b.r.Outcome = typeRest, fhir.AuditOutcomeSuccess
	if e.Kind == consent.AuditRecordRegistered {
		b.r.Subtype, b.r.Action, b.r.OutcomeDesc = []fhir.Coding{subCreate}, "C", "record registered"
		b.hospital(e.Hospital, agentCustodian, true, false)
		b.custodians(e.Hospital)
	} else {
		b.r.Subtype, b.r.Action, b.r.OutcomeDesc = []fhir.Coding{subDelete}, "D", "record erased: its custodians destroy its key"
		b.agent(agentPatient, fhir.Reference{Reference: "Patient/" + string(e.Patient)}, true, false)
		b.custodians("")
	}
	b.lifecycleTail()
}

// shredded is one custodian attesting that it destroyed its key (or share) of an
// erased record and unpinned its ciphertext: crypto-shredding, per custodian.
func (b *builder) shredded() {
	e := b.e
	b.r.Type, b.r.Subtype, b.r.Action = typeRest, []fhir.Coding{subDelete, subDestroy}, "D"
	b.r.Outcome = fhir.AuditOutcomeSuccess
	b.r.OutcomeDesc = "custodian " + string(e.Hospital) + " destroyed its key (or key share) of the erased record"
	b.hospital(e.Hospital, agentCustodian, true, false)
	b.custodians(e.Hospital)
	b.lifecycleTail()
}

// custodyChange is a record's key re-shared to new custodians, after a custodian
// handed its custody over or left the consortium: who holds the key from now on.
func (b *builder) custodyChange() {
	e := b.e
	b.r.Type, b.r.Subtype, b.r.Action = typeRest, []fhir.Coding{subUpdate}, "U"
	b.r.Outcome = fhir.AuditOutcomeSuccess
	b.r.OutcomeDesc = "record's key re-shared to new custodians"
	switch {
	case e.Reason == "hand-over" && e.Hospital != "":
		b.r.OutcomeDesc += " after custodian " + string(e.Hospital) + " handed its custody over"
	case e.Hospital != "":
		b.r.OutcomeDesc += " after custodian " + string(e.Hospital) + " left the consortium"
	}
	if e.Hospital != "" { // the former custodian: the source, no longer a custodian
		b.hospital(e.Hospital, agentSource, true, false)
	}
	b.custodians(e.Hospital)
	b.lifecycleTail()
}

// lifecycleTail ends a record lifecycle event (registered, erased, shredded, custody
// changed): the chain as destination, the patient, the record and the tx.
func (b *builder) lifecycleTail() {
	b.chainAgent(agentDestination)
	b.patientEntity()
	b.recordEntity(roleDomainResource)
	b.txEntity()
}

// review is a privacy officer's review of an emergency access.
func (b *builder) review() {
	e := b.e
	b.r.Type, b.r.Subtype, b.r.Action = typeSecurityAlert, []fhir.Coding{subReviewed}, "E"
	b.r.Outcome = fhir.AuditOutcomeSuccess
	b.r.OutcomeDesc = "emergency access " + string(e.Grant) + " reviewed"
	var ds []fhir.AuditDetail
	if e.Reason != "" {
		b.r.OutcomeDesc += ": " + e.Reason
		ds = append(ds, fhir.AuditDetail{Type: "review-outcome", ValueString: e.Reason})
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
	b.r.Type = fhir.Coding{System: KindSystem, Code: string(e.Kind)}
	b.purpose()
	b.hospital(e.Hospital, fhir.Coding{}, true, true)
	b.hospital(e.Recipient, agentDestination, false, false)
	b.custodians(e.Hospital)
	b.chainAgent(fhir.Coding{})
	b.patientEntity()
	b.recordEntity(roleDomainResource)
	b.consentEntity(entityConsent, nil)
	b.grantEntity(nil)
	b.txEntity()
}

func (b *builder) purpose() {
	if b.e.Purpose != "" {
		b.r.PurposeOfEvent = []fhir.CodeableConcept{purposeConcept(b.e.Purpose)}
	}
}

func purposeConcept(p consent.Purpose) fhir.CodeableConcept {
	return fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemActReason, Code: string(p)}}, Text: PurposeStatement(p)}
}

// agent adds an agent of type typ (none if typ is zero).
func (b *builder) agent(typ fhir.Coding, who fhir.Reference, requestor, purpose bool) {
	a := fhir.AuditAgent{Who: who, Requestor: requestor}
	if typ != (fhir.Coding{}) {
		a.Type = &fhir.CodeableConcept{Coding: []fhir.Coding{typ}}
	}
	if purpose && b.e.Purpose != "" {
		a.PurposeOfUse = []fhir.CodeableConcept{purposeConcept(b.e.Purpose)}
	}
	b.r.Agent = append(b.r.Agent, a)
}

// hospital adds hospital h (if set) as an agent.
func (b *builder) hospital(h consent.HospitalID, typ fhir.Coding, requestor, purpose bool) {
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

func (b *builder) chainAgent(typ fhir.Coding) { b.agent(typ, b.c.chainRef(), false, false) }

func (b *builder) patientEntity() {
	b.r.Entity = append(b.r.Entity, fhir.AuditEntity{What: fhir.Reference{Reference: "Patient/" + string(b.e.Patient)},
		Type: &entityPerson, Role: &rolePatient})
}

func (b *builder) recordEntity(role fhir.Coding) {
	if b.e.Record != "" {
		b.r.Entity = append(b.r.Entity, fhir.AuditEntity{What: fhir.Reference{Reference: "DocumentReference/" + string(b.e.Record)},
			Type: &entitySystemObject, Role: &role, Description: "encrypted FHIR record"})
	}
}

func (b *builder) consentEntity(typ fhir.Coding, role *fhir.Coding) {
	if b.e.Consent != "" {
		b.r.Entity = append(b.r.Entity, fhir.AuditEntity{What: fhir.Reference{Reference: "Consent/" + string(b.e.Consent)},
			Type: &typ, Role: role})
	}
}

func (b *builder) grantEntity(ds []fhir.AuditDetail) {
	if b.e.Grant != "" {
		b.r.Entity = append(b.r.Entity, fhir.AuditEntity{What: fhir.Reference{Identifier: &fhir.Identifier{System: GrantSystem, Value: string(b.e.Grant)}},
			Type: &entitySystemObject, Description: "access decision on the consent chain", Detail: ds})
	}
}

// txEntity names the tx that caused the event, with its height and the event's log
// index: what a verifier needs to find it on the chain and prove its inclusion.
func (b *builder) txEntity() {
	ds := []fhir.AuditDetail{
		{Type: "height", ValueString: strconv.FormatInt(int64(b.e.Height), 10)},
		{Type: "log-index", ValueString: strconv.FormatUint(b.e.Index, 10)},
	}
	what := fhir.Reference{Display: "consent chain tx"}
	if b.e.Tx != "" {
		what = fhir.Reference{Identifier: &fhir.Identifier{System: TxSystem, Value: string(b.e.Tx)}}
	}
	b.r.Entity = append(b.r.Entity, fhir.AuditEntity{What: what, Type: &entitySystemObject,
		Description: "consent chain transaction", Detail: ds})
}

func (c Chain) chainRef() fhir.Reference {
	return fhir.Reference{Identifier: &fhir.Identifier{System: ChainSystem, Value: c.ID}, Display: "medledger consent chain " + c.ID}
}

func (c Chain) orgRef(h consent.HospitalID) fhir.Reference {
	return fhir.Reference{Reference: "Organization/" + string(h), Display: cleanText(c.Names[h])}
}

var (
	kindPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	purposePattern = regexp.MustCompile(`^[A-Z]{1,32}$`)
	reasonPattern  = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
)

// maxRecorded is the last second a FHIR instant can hold (9999-12-31T23:59:59Z).
const maxRecorded = 253402300799

// check rejects what the export would have to drop or could not write as valid FHIR:
// IDs of the wrong shape, and fields an event's kind needs.
func (c Chain) check(e *consent.AuditEvent) error {
	if !consent.ValidChainID(c.ID) {
		return fmt.Errorf("chain ID %q is not a chain ID: 1-49 lowercase letters, digits and dashes", consent.Truncate(c.ID, 80))
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
		ok          bool
	}{
		{"patient", string(e.Patient), e.Patient.Valid()},
		{"record", string(e.Record), e.Record == "" || e.Record.Valid()},
		{"consent", string(e.Consent), e.Consent == "" || e.Consent.Valid()},
		{"grant", string(e.Grant), e.Grant == "" || e.Grant.Valid()},
		{"tx", string(e.Tx), e.Tx == "" || e.Tx.Valid()},
		{"hospital", string(e.Hospital), e.Hospital == "" || e.Hospital.Valid()},
		{"recipient", string(e.Recipient), e.Recipient == "" || e.Recipient.Valid()},
		{"purpose", string(e.Purpose), e.Purpose == "" || purposePattern.MatchString(string(e.Purpose))},
		{"reason", e.Reason, e.Reason == "" || reasonPattern.MatchString(e.Reason)},
	}
	for _, ch := range checks {
		if !ch.ok {
			return fmt.Errorf("%s %q has the wrong shape", ch.name, consent.Truncate(ch.value, 80))
		}
	}
	for _, h := range e.Custodians {
		if !h.Valid() {
			return fmt.Errorf("custodian %q is not a hospital ID", consent.Truncate(string(h), 80))
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
	consent.AuditErasureAttested:   {fRecord, fHospital},
	consent.AuditCustodyChanged:    {fRecord},
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
