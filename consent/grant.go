package consent

import (
	"errors"
	"fmt"
	"slices"
)

// grant records a patient's consent. Every name its policy uses must be in the
// chain's vocabularies at this block (CheckNames): a hospital registered now (one
// still being voted on is refused; the patient grants again once it is registered),
// an FHIR R4 resource type, a record registered for this patient.
func (a *action) grant(g Grant) ([]Event, error) {
	if !g.Patient.Valid() {
		return nil, reject(CodeInvalid, "patient ID must be 64 lowercase hex digits")
	}
	if err := a.signerIsPatient(g.Patient); err != nil {
		return nil, err
	}
	if err := g.Policy.Validate(); err != nil {
		return nil, reject(CodeInvalid, "policy: %v", err)
	}
	if g.Policy.End != 0 && g.Policy.End < a.block.Time.Unix() {
		return nil, reject(CodeInvalid, "policy: ends in the past")
	}
	if err := CheckNames(g.Patient, g.Policy, StateRegistry(a.st)); err != nil {
		var ne *NameError
		if errors.As(err, &ne) {
			return nil, ne.rejection()
		}
		return nil, err
	}
	if a.check {
		return nil, nil // accepted; what follows only writes
	}
	c := Consent{ID: ConsentID(a.id), Patient: g.Patient, Policy: g.Policy, Height: a.block.Height, Time: a.block.Time.Unix()}
	if err := setValue(a.st, keyConsent+string(c.ID), c); err != nil {
		return nil, err
	}
	ids, err := consentIDs(a.st, c.Patient)
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearch(ids, c.ID)
	if err := a.st.Set([]byte(keyPatCons+string(c.Patient)), encodeIDs(slices.Insert(ids, i, c.ID))); err != nil {
		return nil, err
	}
	if err := a.audit(AuditEvent{Kind: AuditConsentGranted, Patient: c.Patient, Consent: c.ID}); err != nil {
		return nil, err
	}
	return []Event{consentEvent("grant", c)}, nil
}

// revoke revokes a consent; only its patient may. It takes effect for every request
// decided after this block.
func (a *action) revoke(r Revoke) ([]Event, error) {
	c, err := GetConsent(a.st, r.Consent)
	if err != nil {
		return nil, err
	}
	if err := a.signerIsPatient(c.Patient); err != nil {
		return nil, err
	}
	if c.Revoked != 0 {
		return nil, reject(CodeDuplicate, "consent %s was revoked at height %d", c.ID, c.Revoked)
	}
	c.Revoked = a.block.Height
	if err := setValue(a.st, keyConsent+string(c.ID), c); err != nil {
		return nil, err
	}
	if err := a.audit(AuditEvent{Kind: AuditConsentRevoked, Patient: c.Patient, Consent: c.ID}); err != nil {
		return nil, err
	}
	return []Event{consentEvent("revoke", *c)}, nil
}

func consentEvent(typ string, c Consent) Event {
	return Event{Type: typ, Attrs: []Attr{
		{Key: "consent", Value: string(c.ID), Index: true},
		{Key: "patient", Value: string(c.Patient)},
	}}
}

// GetConsent returns a consent (revoked ones too: Revoked says when), or a *Rejection
// (CodeUnknownConsent) if there is none.
func GetConsent(r Reader, id ConsentID) (*Consent, error) {
	var c Consent
	ok, err := getValue(r, keyConsent+string(id), &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, reject(CodeUnknownConsent, "no consent %q", Truncate(string(id), 40))
	}
	return &c, nil
}

// Consents returns a patient's consents, in consent ID order.
func Consents(r Reader, p PatientID) ([]Consent, error) {
	ids, err := consentIDs(r, p)
	if err != nil {
		return nil, err
	}
	out := make([]Consent, 0, len(ids))
	for _, id := range ids {
		c, err := GetConsent(r, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, nil
}

// consentIDs returns the IDs of a patient's consents, ascending. They are stored as
// one value, the IDs back to back (each is idLen hex digits): no decoder's limit on a
// list's length applies, however many consents a patient gives.
func consentIDs(r Reader, p PatientID) ([]ConsentID, error) {
	b, err := r.Get([]byte(keyPatCons + string(p)))
	if err != nil {
		return nil, err
	}
	if len(b)%idLen != 0 {
		return nil, fmt.Errorf("consent: state %s%s: %d bytes, not a list of IDs", keyPatCons, p, len(b))
	}
	ids := make([]ConsentID, 0, len(b)/idLen)
	for ; len(b) > 0; b = b[idLen:] {
		ids = append(ids, ConsentID(b[:idLen]))
	}
	return ids, nil
}

func encodeIDs(ids []ConsentID) []byte {
	b := make([]byte, 0, len(ids)*idLen)
	for _, id := range ids {
		b = append(b, id...)
	}
	return b
}
