package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
)

// The translation between a FHIR R4 Consent and the chain's consent.Policy. It happens
// here, at the API edge, so that a change in FHIR parsing can never fork the chain; and
// it is strict: whatever the chain cannot enforce exactly as written is rejected with
// the path of the element and the reason, never read more widely (or approximately) to
// fit.
//
// FHIR Consent → consent.Policy:
//
//   - First every element of the Consent, at any depth, is checked against the table
//     in consentelems.go: it is mapped (below), descriptive (accepted, not kept, never
//     echoed) or refused as not-supported with its path. Every extension and modifier
//     extension, anywhere, is refused, as are implicitRules, contained, meta.security,
//     a narrative of status 'additional', sourceAttachment, sourceReference, policy
//     (policies by URI), verification, and in a provision securityLabel, code and
//     dataPeriod (the chain knows when a record was registered, not when its data was
//     recorded). An element the table does not know is refused too.
//   - status must be "active" (only an active consent is enforced); scope consentscope
//     patient-privacy (research, treatment and advance-directive consents say
//     something else); patient "Patient/{patient ID}" (64 lowercase hex: the patient's
//     Ed25519 public key, which must sign the grant); each performer, if any, the
//     patient (the chain verifies the patient's signature, no one else's consent).
//   - policyRule, in system v3-ActCode: OPTIN → base deny (nothing is shared unless a
//     provision permits it), OPTOUT → base permit (shared unless a provision denies
//     it). Anything else (OPTINR, OPTOUTE, other systems, none) cannot be enforced and
//     is rejected.
//   - A CodeableConcept the mapping reads (scope, policyRule, actor.role, action) may
//     hold codings only in the system it reads: a translation into another system
//     cannot be checked to mean the same, so it is refused.
//   - The root provision (Consent.provision) gives the consent's period
//     (Policy.Start/End). If it has no type it may name no criteria, and its nested
//     provisions are the exceptions to the base rule (Provisions). If its type is the
//     base rule's own (IHE PCF's "deny everything, except …" under OPTIN), it restates
//     the base: its nested provisions are the exceptions to the base rule; with
//     criteria it may hold none (they would be exceptions only within its criteria,
//     which the chain cannot represent as one rule). If its type is the opposite, it is
//     itself the one exception to the base rule (Provisions[0], with its criteria) and
//     its nested provisions are the exceptions to it (its Except). Below that, every
//     nested provision needs a type, becomes an Except of its parent, and its type must
//     be the opposite of its parent's: a provision of the same type as its parent says
//     nothing the chain can represent.
//   - Criteria: actor[] → Actors, each with reference "Organization/{hospital ID}"
//     and a recipient role (v3-ParticipationType PRCP or IRCP: the chain's actors are
//     the hospitals that receive records; an actor in another role, such as CST
//     custodian, describes something else and is rejected). purpose[] in system
//     v3-ActReason → Purposes (one of consent.Purposes()). class[] in system
//     http://hl7.org/fhir/resource-types → Classes. data[] with meaning "instance"
//     and reference "DocumentReference/{record ID}" → Records (other meanings are
//     rejected). period → Start/End of a nested provision.
//   - A deny may not name ETREAT or BTG: emergency (break-glass) access is granted by
//     the chain's emergency rule, with a coded reason and a review, whatever a consent
//     says, so a consent cannot deny it. A permit naming them (IHE PCF's break-glass:
//     deny everything except ETREAT/BTG) states what holds and maps.
//   - action[] is accepted only when every action is consentaction "access": access
//     is the one action the chain decides, so a provision about access is enforced
//     exactly; any other action (correct, disclose, …) is rejected.
//   - Times: a dateTime (with its offset) is that instant; a date without a time, or a
//     partial date (year, year-month), is read in UTC: a start at the first second it
//     names, an end at the last (period end "2016-01-01" is 2016-01-01T23:59:59Z).
//     Fractions of a second are dropped: the chain counts whole seconds. An end at
//     the Unix epoch itself cannot be represented (0 means "open") and is rejected.
//   - Finally the policy must pass consent.Policy.Validate (the chain's own rules:
//     depth, count, ID shapes).
//
// consent.Consent → FHIR Consent (every answer of the API about a consent: the 201 of
// POST /fhir/Consent, GET, search, $revoke, $prepare's preview) is rendered from the
// chain's policy alone, never echoed from the input: status (inactive once revoked),
// scope patient-privacy, category LOINC 59284-0, patient and performer the patient,
// dateTime the block time of the grant, policyRule from the base, a root provision
// without a type holding the period and the policy's provisions, each with action
// access. So policy → FHIR → policy is the identity, and FHIR → policy → FHIR →
// policy a fixed point.

// fhirConsent is the part of a FHIR R4 Consent the mapping reads or writes. What it
// does not read has been refused or accepted as descriptive by checkElements first
// (consentelems.go), so nothing is dropped unseen.
type fhirConsent struct {
	ResourceType string                 `json:"resourceType"`
	ID           string                 `json:"id,omitempty"`
	Status       string                 `json:"status"`
	Scope        *fhir.CodeableConcept  `json:"scope,omitempty"`
	Category     []fhir.CodeableConcept `json:"category,omitempty"`
	Patient      *fhir.Reference        `json:"patient,omitempty"`
	DateTime     string                 `json:"dateTime,omitempty"`
	Performer    []fhir.Reference       `json:"performer,omitempty"`
	PolicyRule   *fhir.CodeableConcept  `json:"policyRule,omitempty"`
	Provision    *fhirProvision         `json:"provision,omitempty"`
}

type fhirProvision struct {
	Type      string                 `json:"type,omitempty"`
	Period    *fhir.Period           `json:"period,omitempty"`
	Actor     []fhirActor            `json:"actor,omitempty"`
	Action    []fhir.CodeableConcept `json:"action,omitempty"`
	Purpose   []fhir.Coding          `json:"purpose,omitempty"`
	Class     []fhir.Coding          `json:"class,omitempty"`
	Data      []fhirData             `json:"data,omitempty"`
	Provision []fhirProvision        `json:"provision,omitempty"`
}

type fhirActor struct {
	Role      *fhir.CodeableConcept `json:"role,omitempty"`
	Reference *fhir.Reference       `json:"reference,omitempty"`
}

type fhirData struct {
	Meaning   string          `json:"meaning,omitempty"`
	Reference *fhir.Reference `json:"reference,omitempty"`
}

// mapError is a Consent that cannot be mapped faithfully: where, why, and the
// OperationOutcome issue type.
type mapError struct {
	Path string // FHIRPath-style, e.g. Consent.provision.provision[0].actor[1].role
	Code string // issue type: not-supported, value, required, business-rule, invalid
	Msg  string
}

func (e *mapError) Error() string { return "consent: " + e.Path + ": " + e.Msg }

func (e *mapError) issue() fhir.Issue {
	return fhir.Issue{Severity: "error", Code: e.Code, Path: e.Path, Message: e.Msg}
}

func unmappable(path, format string, args ...any) *mapError {
	return &mapError{Path: path, Code: "not-supported", Msg: fmt.Sprintf(format, args...)}
}

func badValue(path, format string, args ...any) *mapError {
	return &mapError{Path: path, Code: "value", Msg: fmt.Sprintf(format, args...)}
}

// grantOf maps a FHIR Consent (JSON that passed fhir.Parse) to the grant it
// expresses: its patient and the policy in the chain's form.
func grantOf(raw []byte) (consent.Grant, error) {
	var c fhirConsent
	if err := json.Unmarshal(raw, &c); err != nil {
		return consent.Grant{}, &mapError{Path: "Consent", Code: "structure", Msg: "not a Consent: " + err.Error()}
	}
	if c.ResourceType != "Consent" {
		return consent.Grant{}, badValue("resourceType", "resourceType is '%s'; a Consent is required", c.ResourceType)
	}
	if err := checkElements(raw); err != nil {
		return consent.Grant{}, err
	}
	return c.grant()
}

func (c *fhirConsent) grant() (consent.Grant, error) {
	if c.Status != "active" {
		return consent.Grant{}, &mapError{Path: "Consent.status", Code: "business-rule",
			Msg: fmt.Sprintf("status is '%s'; only an active Consent is enforced: set status to active", c.Status)}
	}
	if err := privacyScope(c.Scope); err != nil {
		return consent.Grant{}, err
	}
	patient, err := patientRef(c.Patient)
	if err != nil {
		return consent.Grant{}, err
	}
	for i, p := range c.Performer {
		if p.Reference != "Patient/"+string(patient) {
			return consent.Grant{}, unmappable(fmt.Sprintf("Consent.performer[%d]", i),
				"'%s' is not the patient: the chain holds a consent the patient signed with their own key, so its only performer is the patient (Patient/{patient ID}); a consent given by someone else cannot be represented", consent.Truncate(p.Reference, 100))
		}
	}
	pol, err := c.policy()
	if err != nil {
		return consent.Grant{}, err
	}
	if err := pol.Validate(); err != nil {
		return consent.Grant{}, &mapError{Path: "Consent.provision", Code: "business-rule", Msg: err.Error()}
	}
	return consent.Grant{Patient: patient, Policy: pol}, nil
}

func patientRef(r *fhir.Reference) (consent.PatientID, error) {
	const path = "Consent.patient"
	if r == nil || r.Reference == "" {
		return "", &mapError{Path: path, Code: "required", Msg: "a Consent names its patient: Patient/{patient ID}, the hex of the patient's Ed25519 public key"}
	}
	id, ok := strings.CutPrefix(r.Reference, "Patient/")
	if !ok || !consent.PatientID(id).Valid() {
		return "", badValue(path+".reference", "'%s' is not Patient/{patient ID}: a patient ID is the 64 lowercase hex digits of the patient's Ed25519 public key", r.Reference)
	}
	return consent.PatientID(id), nil
}

// privacyScope checks scope: a privacy consent (consentscope patient-privacy) is the
// one kind the chain holds; research, treatment and advance-directive consents say
// something else.
func privacyScope(cc *fhir.CodeableConcept) error {
	const path = "Consent.scope"
	codes, err := codesOnlyIn(cc, fhir.SystemConsentScope, path)
	if err != nil {
		return err
	}
	if len(codes) == 0 {
		return &mapError{Path: path, Code: "required", Msg: "scope must be coded " + fhir.SystemConsentScope + " patient-privacy: the chain holds privacy consents"}
	}
	for _, c := range codes {
		if c != "patient-privacy" {
			return unmappable(path, "scope '%s' cannot be enforced: the chain holds privacy consents (patient-privacy), which decide who may access records", consent.Truncate(c, 40))
		}
	}
	return nil
}

// codesOnlyIn returns cc's codes, all of which must be in system: a coding in another
// system claims to mean the same, which the chain cannot check.
func codesOnlyIn(cc *fhir.CodeableConcept, system, path string) ([]string, error) {
	if cc == nil {
		return nil, nil
	}
	for i, cd := range cc.Coding {
		if cd.System != system {
			return nil, unmappable(fmt.Sprintf("%s.coding[%d]", path, i),
				"a coding in system '%s' cannot be checked to mean the same as the %s coding the chain reads: give only codings in %s", consent.Truncate(cd.System, 100), system, system)
		}
	}
	return cc.CodesIn(system), nil
}

// baseRule reads policyRule: OPTIN or OPTOUT in v3-ActCode.
func baseRule(cc *fhir.CodeableConcept) (consent.Rule, error) {
	const path = "Consent.policyRule"
	codes, err := codesOnlyIn(cc, fhir.SystemActCode, path)
	if err != nil {
		return 0, err
	}
	if len(codes) == 0 {
		return 0, &mapError{Path: path, Code: "required", Msg: "a policyRule coding in " + fhir.SystemActCode + " (OPTIN or OPTOUT) is required: it is the consent's base rule"}
	}
	slices.Sort(codes)
	if codes = slices.Compact(codes); len(codes) > 1 {
		return 0, badValue(path, "policyRule has the conflicting codes %s", strings.Join(codes, ", "))
	}
	switch codes[0] {
	case "OPTIN":
		return consent.Deny, nil
	case "OPTOUT":
		return consent.Permit, nil
	}
	return 0, unmappable(path, "policyRule '%s' cannot be enforced: use OPTIN (nothing shared unless a provision permits) or OPTOUT (shared unless a provision denies)", codes[0])
}

// policy maps policyRule and the provision tree; see the rules at the top of the file.
func (c *fhirConsent) policy() (consent.Policy, error) {
	base, err := baseRule(c.PolicyRule)
	if err != nil {
		return consent.Policy{}, err
	}
	pol := consent.Policy{Base: base}
	root := c.Provision
	if root == nil {
		return pol, nil
	}
	const path = "Consent.provision"
	p, err := criteria(root, path)
	if err != nil {
		return consent.Policy{}, err
	}
	// The root's period is the consent's.
	pol.Start, pol.End, p.Start, p.End = p.Start, p.End, 0, 0
	if root.Type == "" {
		if named := criteriaNamed(p); named != "" {
			return consent.Policy{}, unmappable(path, "the root provision names %s but has no type: give it a type (permit or deny, the opposite of the base rule) or move the criteria into a nested provision", named)
		}
		pol.Provisions, err = exceptions(root.Provision, base, path)
		return pol, err
	}
	if sameRule(root.Type, base) {
		return rootOfBase(pol, p, root, path)
	}
	if p.Type, err = ruleOf(root.Type, base, path); err != nil {
		return consent.Policy{}, err
	}
	if err := emergencyNotDenied(p, path); err != nil {
		return consent.Policy{}, err
	}
	if p.Except, err = exceptions(root.Provision, p.Type, path); err != nil {
		return consent.Policy{}, err
	}
	pol.Provisions = []consent.Provision{p}
	return pol, nil
}

func sameRule(typ string, r consent.Rule) bool {
	var t consent.Rule
	return t.UnmarshalText([]byte(typ)) == nil && t == r
}

// rootOfBase maps a root provision of the base rule's own type: IHE PCF's "deny
// everything, except …" under OPTIN (or "permit everything, except …" under OPTOUT).
// Without criteria it restates the base rule, and its nested provisions are the
// exceptions to the base. With criteria and no nested provisions it is wholly inside
// the base rule and changes nothing. With both, its exceptions would apply only within
// its criteria: the chain has no rule for that, so it is refused.
func rootOfBase(pol consent.Policy, p consent.Provision, root *fhirProvision, path string) (consent.Policy, error) {
	named := criteriaNamed(p)
	if named != "" && len(root.Provision) > 0 {
		return consent.Policy{}, unmappable(path, "the root %s names %s and holds nested provisions: those would apply only within its %s, which the chain cannot represent as one rule; give the root no criteria and state each nested provision's criteria in full (the base rule, %s, already %ss everything not excepted)",
			root.Type, named, named, baseCode(pol.Base), root.Type)
	}
	var err error
	pol.Provisions, err = exceptions(root.Provision, pol.Base, path)
	return pol, err
}

func baseCode(r consent.Rule) string {
	if r == consent.Permit {
		return "OPTOUT"
	}
	return "OPTIN"
}

// emergencyNotDenied refuses a deny naming an emergency purpose: break-glass access
// (ETREAT, BTG) is granted by the chain's emergency rule, with a coded reason and a
// review, whatever the patient's consents say, so a consent cannot deny it.
func emergencyNotDenied(p consent.Provision, path string) error {
	if p.Type != consent.Deny {
		return nil
	}
	for i, pu := range p.Purposes {
		if pu == "ETREAT" || pu == "BTG" {
			return unmappable(fmt.Sprintf("%s.purpose[%d]", path, i),
				"a consent cannot deny %s: emergency (break-glass) access is granted by the chain's emergency rule, with a coded reason and flagged for review, whatever the consent says; remove the purpose", pu)
		}
	}
	return nil
}

// exceptions maps nested provisions, each an exception to parent.
func exceptions(ps []fhirProvision, parent consent.Rule, path string) ([]consent.Provision, error) {
	var out []consent.Provision
	for i := range ps {
		ppath := fmt.Sprintf("%s.provision[%d]", path, i)
		p, err := criteria(&ps[i], ppath)
		if err != nil {
			return nil, err
		}
		if ps[i].Type == "" {
			return nil, &mapError{Path: ppath + ".type", Code: "required", Msg: "a nested provision needs a type: permit or deny"}
		}
		if p.Type, err = ruleOf(ps[i].Type, parent, ppath); err != nil {
			return nil, err
		}
		if err := emergencyNotDenied(p, ppath); err != nil {
			return nil, err
		}
		if p.Except, err = exceptions(ps[i].Provision, p.Type, ppath); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ruleOf reads a provision's type, which must be the opposite of its parent's rule.
func ruleOf(typ string, parent consent.Rule, path string) (consent.Rule, error) {
	var r consent.Rule
	if err := r.UnmarshalText([]byte(typ)); err != nil {
		return 0, badValue(path+".type", "type '%s' is not permit or deny", typ)
	}
	if r == parent {
		return 0, unmappable(path+".type", "a %s inside a %s makes no exception to it and cannot be represented: a provision must be the opposite of the rule it is nested in (for the root provision, the base rule: OPTIN is deny, OPTOUT permit)", r, parent)
	}
	return r, nil
}

// criteria maps one provision's criteria and period (not its type or nested
// provisions), after rejecting what cannot be enforced.
func criteria(fp *fhirProvision, path string) (consent.Provision, error) {
	if err := enforceable(fp, path); err != nil {
		return consent.Provision{}, err
	}
	var p consent.Provision
	var err error
	if fp.Period != nil {
		if p.Start, p.End, err = bounds(fp.Period, path+".period"); err != nil {
			return consent.Provision{}, err
		}
	}
	for i, a := range fp.Actor {
		id, err := actor(a, fmt.Sprintf("%s.actor[%d]", path, i))
		if err != nil {
			return consent.Provision{}, err
		}
		p.Actors = append(p.Actors, id)
	}
	for i, cd := range fp.Purpose {
		ipath := fmt.Sprintf("%s.purpose[%d]", path, i)
		if cd.System != fhir.SystemActReason {
			return consent.Provision{}, badValue(ipath, "purpose system '%s' is not %s (v3 PurposeOfUse)", cd.System, fhir.SystemActReason)
		}
		if !consent.IsPurpose(consent.Purpose(cd.Code)) {
			return consent.Provision{}, badValue(ipath, "purpose '%s' is not one the chain knows: %s", cd.Code, joinPurposes())
		}
		p.Purposes = append(p.Purposes, consent.Purpose(cd.Code))
	}
	for i, cd := range fp.Class {
		if cd.System != fhir.SystemResourceTypes {
			return consent.Provision{}, unmappable(fmt.Sprintf("%s.class[%d]", path, i),
				"class system '%s' cannot be enforced: the chain knows a record's FHIR resource types (%s)", cd.System, fhir.SystemResourceTypes)
		}
		p.Classes = append(p.Classes, consent.DataClass(cd.Code))
	}
	for i, d := range fp.Data {
		id, err := data(d, fmt.Sprintf("%s.data[%d]", path, i))
		if err != nil {
			return consent.Provision{}, err
		}
		p.Records = append(p.Records, id)
	}
	// The chain's own checks of a provision's criteria, reported at this path.
	probe := consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{{
		Type: consent.Permit, Actors: p.Actors, Purposes: p.Purposes, Start: p.Start, End: p.End,
		Classes: p.Classes, Records: p.Records}}}
	if err := probe.Validate(); err != nil {
		return consent.Provision{}, badValue(path, "%v", err)
	}
	return p, nil
}

// enforceable rejects the actions of a provision the chain cannot enforce (what else a
// provision holds that the chain cannot enforce, checkElements refused).
func enforceable(fp *fhirProvision, path string) error {
	for i, a := range fp.Action {
		apath := fmt.Sprintf("%s.action[%d]", path, i)
		codes, err := codesOnlyIn(&a, fhir.SystemConsentAction, apath)
		if err != nil {
			return err
		}
		if len(codes) == 0 {
			return unmappable(apath, "an action must be coded in %s; only 'access' can be enforced", fhir.SystemConsentAction)
		}
		for _, code := range codes {
			if code != "access" {
				return unmappable(apath,
					"action '%s' cannot be enforced: the chain decides access to records only; remove it, or state the provision for action 'access'", code)
			}
		}
	}
	return nil
}

func actor(a fhirActor, path string) (consent.HospitalID, error) {
	roles, err := codesOnlyIn(a.Role, fhir.SystemParticipationType, path+".role")
	if err != nil {
		return "", err
	}
	if len(roles) == 0 {
		return "", unmappable(path+".role", "the actor's role must be coded in %s as PRCP or IRCP (a recipient): the chain's actors are the hospitals that receive records", fhir.SystemParticipationType)
	}
	for _, r := range roles {
		if r != "PRCP" && r != "IRCP" {
			return "", unmappable(path+".role", "role '%s' is not a recipient: the chain's actors are the hospitals that receive records (PRCP or IRCP)", r)
		}
	}
	ref := ""
	if a.Reference != nil {
		ref = a.Reference.Reference
	}
	id, ok := strings.CutPrefix(ref, "Organization/")
	if !ok {
		return "", unmappable(path+".reference", "'%s' is not a member hospital: the chain's actors are Organization/{hospital ID}", ref)
	}
	return consent.HospitalID(id), nil
}

func data(d fhirData, path string) (consent.RecordID, error) {
	if d.Meaning != "instance" {
		return "", unmappable(path+".meaning", "meaning '%s' cannot be enforced: the chain knows records, not what they relate to; use meaning 'instance' with DocumentReference/{record ID}", d.Meaning)
	}
	ref := ""
	if d.Reference != nil {
		ref = d.Reference.Reference
	}
	id, ok := strings.CutPrefix(ref, "DocumentReference/")
	if !ok || !consent.RecordID(id).Valid() {
		return "", unmappable(path+".reference", "'%s' is not a record: a record is DocumentReference/{record ID} (32 lowercase hex digits)", ref)
	}
	return consent.RecordID(id), nil
}

// criteriaNamed names the criteria p has ("" if none).
func criteriaNamed(p consent.Provision) string {
	var named []string
	for _, c := range []struct {
		name string
		n    int
	}{{"actor", len(p.Actors)}, {"purpose", len(p.Purposes)}, {"class", len(p.Classes)}, {"data", len(p.Records)}} {
		if c.n > 0 {
			named = append(named, c.name)
		}
	}
	return strings.Join(named, ", ")
}

func joinPurposes() string { return joinCodes(consent.Purposes()) }

// bounds reads a FHIR period as Unix seconds (0: open).
func bounds(p *fhir.Period, path string) (start, end int64, err error) {
	if p.Start != "" {
		t, err := instant(p.Start, false)
		if err != nil {
			return 0, 0, badValue(path+".start", "%v", err)
		}
		start = t
	}
	if p.End != "" {
		t, err := instant(p.End, true)
		if err != nil {
			return 0, 0, badValue(path+".end", "%v", err)
		}
		if t == 0 {
			return 0, 0, badValue(path+".end", "an end at 1970-01-01T00:00:00Z cannot be represented (the chain reads 0 as no end)")
		}
		end = t
	}
	return start, end, nil
}

// instant reads a FHIR date or dateTime as Unix seconds: the first second it names, or
// with last the last one (see the rules at the top of the file).
func instant(s string, last bool) (int64, error) {
	if strings.Contains(s, "T") {
		if len(s) >= 19 && s[17:19] == "60" {
			return 0, fmt.Errorf("'%s': a leap second cannot be represented", s)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, fmt.Errorf("'%s' is not a FHIR dateTime with a time zone", s)
		}
		return t.Unix(), nil
	}
	for _, f := range []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
	} {
		if len(s) != len(f.layout) {
			continue
		}
		t, err := time.Parse(f.layout, s)
		if err != nil {
			break
		}
		if last {
			return f.next(t).Unix() - 1, nil
		}
		return t.Unix(), nil
	}
	return 0, fmt.Errorf("'%s' is not a FHIR date or dateTime", s)
}

// fhirConsentOf writes a consent from chain state as a FHIR R4 Consent.
func fhirConsentOf(c consent.Consent) (*fhirConsent, error) {
	out := &fhirConsent{
		ResourceType: "Consent",
		ID:           string(c.ID),
		Status:       "active",
		Scope:        &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemConsentScope, Code: "patient-privacy"}}},
		Category:     []fhir.CodeableConcept{fhir.Concept(fhir.SystemLOINC, "59284-0")}, // Patient Consent
		Patient:      &fhir.Reference{Reference: "Patient/" + string(c.Patient)},
		Performer:    []fhir.Reference{{Reference: "Patient/" + string(c.Patient)}}, // the chain checked the patient's signature
	}
	if c.Revoked != 0 {
		out.Status = "inactive"
	}
	var err error
	if c.Time != 0 {
		if out.DateTime, err = dateTime(c.Time); err != nil {
			return nil, err
		}
	}
	rule := "OPTIN"
	if c.Policy.Base == consent.Permit {
		rule = "OPTOUT"
	}
	out.PolicyRule = &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemActCode, Code: rule}}}
	if c.Policy.Start == 0 && c.Policy.End == 0 && len(c.Policy.Provisions) == 0 {
		return out, nil
	}
	root := &fhirProvision{}
	if root.Period, err = periodOf(c.Policy.Start, c.Policy.End); err != nil {
		return nil, err
	}
	if root.Provision, err = fhirProvisions(c.Policy.Provisions); err != nil {
		return nil, err
	}
	out.Provision = root
	return out, nil
}

func fhirProvisions(ps []consent.Provision) ([]fhirProvision, error) {
	var out []fhirProvision
	for _, p := range ps {
		fp := fhirProvision{Type: p.Type.String(), Action: []fhir.CodeableConcept{fhir.Concept(fhir.SystemConsentAction, "access")}}
		var err error
		if fp.Period, err = periodOf(p.Start, p.End); err != nil {
			return nil, err
		}
		for _, a := range p.Actors {
			fp.Actor = append(fp.Actor, fhirActor{
				Role:      &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemParticipationType, Code: "PRCP"}}},
				Reference: &fhir.Reference{Reference: "Organization/" + string(a)},
			})
		}
		for _, pu := range p.Purposes {
			fp.Purpose = append(fp.Purpose, fhir.Coding{System: fhir.SystemActReason, Code: string(pu)})
		}
		for _, c := range p.Classes {
			fp.Class = append(fp.Class, fhir.Coding{System: fhir.SystemResourceTypes, Code: string(c)})
		}
		for _, r := range p.Records {
			fp.Data = append(fp.Data, fhirData{Meaning: "instance", Reference: &fhir.Reference{Reference: "DocumentReference/" + string(r)}})
		}
		if fp.Provision, err = fhirProvisions(p.Except); err != nil {
			return nil, err
		}
		out = append(out, fp)
	}
	return out, nil
}

func periodOf(start, end int64) (*fhir.Period, error) {
	if start == 0 && end == 0 {
		return nil, nil
	}
	var p fhir.Period
	var err error
	if start != 0 {
		if p.Start, err = dateTime(start); err != nil {
			return nil, err
		}
	}
	if end != 0 {
		if p.End, err = dateTime(end); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// dateTime writes Unix seconds as a FHIR dateTime in UTC.
func dateTime(sec int64) (string, error) {
	t := time.Unix(sec, 0).UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return "", fmt.Errorf("api: time %d is outside FHIR's years 0001-9999", sec)
	}
	return t.Format(time.RFC3339), nil
}
