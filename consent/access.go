package consent

import (
	"strconv"
)

// requester checks that the tx is signed by the named hospital's registered key.
func (a *action) requester(id HospitalID) (*Hospital, error) {
	h, err := getHospital(a.st, id)
	if err != nil {
		return nil, err
	}
	if string(h.Operator) != string(a.tx.Signer) {
		return nil, reject(CodeUnauthorized, "tx for %s is not signed with its registered key", id)
	}
	return h, nil
}

// request decides an access request on chain: a grant naming the consent that
// permits it, or a denial with its reason. Both are recorded.
func (a *action) request(r Request) ([]Event, error) {
	h, err := a.requester(r.Requester)
	if err != nil {
		return nil, err
	}
	if !IsPurpose(r.Purpose) {
		return nil, reject(CodeInvalid, "purpose %q is not a known v3 PurposeOfUse code", Truncate(string(r.Purpose), 20))
	}
	if r.Purpose == "ETREAT" || r.Purpose == "BTG" {
		return nil, reject(CodeInvalid, "emergency access goes through an emergency tx, with a coded reason")
	}
	rec, err := GetRecord(a.st, r.Record)
	if err != nil {
		return nil, err
	}
	if a.check {
		// A request is accepted whatever the decision (a denial is recorded too), so
		// CheckTx leaves the decision, which reads all the patient's consents, to
		// the block.
		return nil, nil
	}
	d := Decision{ID: GrantID(a.id), Record: rec.ID, Patient: rec.Patient, Requester: h.ID,
		Purpose: r.Purpose, Height: a.block.Height, Time: a.block.Time.Unix()}
	if d.Reason, err = recordReason(a.st, rec); err != nil {
		return nil, err
	}
	if d.Reason == "" {
		d.Granted, d.Consent, d.Reason, err = decideAccess(a.st, rec, Access{
			Actor: h.ID, Purpose: r.Purpose, Record: rec.ID, Classes: rec.Classes, Time: a.block.Time.Unix()})
		if err != nil {
			return nil, err
		}
	}
	if d.Granted {
		d.Expires = d.Time + a.params.GrantValidity
	}
	return a.putDecision(d, rec)
}

// decideAccess decides acc under the patient's consents in ID order (Decide): the
// first in force that permits wins; otherwise the denial gives the most telling reason.
func decideAccess(r Reader, rec *Record, acc Access) (bool, ConsentID, string, error) {
	consents, err := Consents(r, rec.Patient)
	if err != nil {
		return false, "", "", err
	}
	granted, by, reason := Decide(consents, acc)
	return granted, by, reason, nil
}

// emergency grants break-glass access with a coded reason, flagged for review: it
// joins the review queue (review.go). A record not yet available (recordReason) is
// denied instead: break-glass overrides consent, not custody.
func (a *action) emergency(e Emergency) ([]Event, error) {
	h, err := a.requester(e.Requester)
	if err != nil {
		return nil, err
	}
	if !IsEmergencyReason(e.Reason) {
		return nil, reject(CodeInvalid, "emergency reason %q is not one of %v", Truncate(e.Reason, 40), emergencyReasons)
	}
	rec, err := GetRecord(a.st, e.Record)
	if err != nil {
		return nil, err
	}
	if rec.Erased != 0 {
		return nil, reject(CodeErased, "record %s was erased at height %d", rec.ID, rec.Erased)
	}
	t := a.block.Time.Unix()
	d := Decision{ID: GrantID(a.id), Record: rec.ID, Patient: rec.Patient, Requester: h.ID,
		Purpose: "ETREAT", Height: a.block.Height, Time: t}
	if a.check {
		return nil, nil // accepted whatever the decision, as a request
	}
	if d.Reason, err = recordReason(a.st, rec); err != nil || d.Reason != "" {
		if err != nil {
			return nil, err
		}
		// Break-glass cannot release a key that is not there: a denial (purpose
		// ETREAT, the record's reason), recorded like a request's, not for review.
		return a.putDecision(d, rec)
	}
	d.Granted, d.Emergency, d.Expires = true, e.Reason, t+a.params.GrantValidity
	if err := a.st.Set([]byte(keyEmergency+heightKey(d.Height)+"/"+string(d.ID)), []byte{}); err != nil {
		return nil, err
	}
	if err := a.st.Set([]byte(queueKey(keyUnreviewed, &d)), []byte{}); err != nil {
		return nil, err
	}
	return a.putDecision(d, rec)
}

// putDecision records a decision on rec and appends it to the access log.
func (a *action) putDecision(d Decision, rec *Record) ([]Event, error) {
	if err := setValue(a.st, keyDecision+string(d.ID), d); err != nil {
		return nil, err
	}
	e := AuditEvent{Kind: AuditAccessDenied, Patient: d.Patient, Record: d.Record, Hospital: d.Requester,
		Custodians: rec.Custodians, Purpose: d.Purpose, Consent: d.Consent, Grant: d.ID, Reason: d.Reason}
	switch {
	case d.Emergency != "":
		e.Kind, e.Reason = AuditEmergency, d.Emergency
	case d.Granted:
		e.Kind = AuditAccessGranted
	}
	if err := a.audit(e); err != nil {
		return nil, err
	}
	verdict := "denied"
	if d.Granted {
		verdict = "granted"
	}
	attrs := []Attr{
		{Key: "grant", Value: string(d.ID), Index: true},
		{Key: "record", Value: string(d.Record)},
		{Key: "patient", Value: string(d.Patient)},
		{Key: "requester", Value: string(d.Requester)},
		{Key: "decision", Value: verdict},
		{Key: "purpose", Value: string(d.Purpose)},
	}
	if d.Reason != "" {
		attrs = append(attrs, Attr{Key: "reason", Value: d.Reason})
	}
	if d.Emergency != "" {
		attrs = append(attrs, Attr{Key: "emergency", Value: d.Emergency})
	}
	// The consent that permitted and the release deadline let the requester learn its
	// decision from its own tx's result, without reading the chain's state.
	if d.Consent != "" {
		attrs = append(attrs, Attr{Key: "consent", Value: string(d.Consent)})
	}
	if d.Expires != 0 {
		attrs = append(attrs, Attr{Key: "expires", Value: strconv.FormatInt(d.Expires, 10)})
	}
	return []Event{{Type: "access", Attrs: attrs}}, nil
}

// GetDecision returns an access decision.
func GetDecision(r Reader, id GrantID) (*Decision, error) {
	var d Decision
	ok, err := getValue(r, keyDecision+string(id), &d)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, reject(CodeUnknownGrant, "no access grant %q", Truncate(string(id), 40))
	}
	return &d, nil
}

// MaxReleases bounds the key releases one custodian may record for one grant. A
// requester may ask again (a lost answer, a dropped connection), and each answer is a
// key that leaves and so is logged; the bound keeps a grant from growing the log
// without end.
const MaxReleases = 8

// receipt records a custodian's key release for a grant before the key leaves it
// (the custodian answers only once it has committed this tx). It is accepted only
// while the release check holds at this block's time: the grant is granted and
// unexpired, its consent not revoked, the record not erased. A revocation committed
// before it therefore wins on every custodian, however far behind it was.
func (a *action) receipt(r Receipt) ([]Event, error) {
	h, err := a.requester(r.Custodian)
	if err != nil {
		return nil, err
	}
	d, err := GetDecision(a.st, r.Grant)
	if err != nil {
		return nil, err
	}
	d, rec, err := CheckRelease(a.st, r.Grant, d.Requester, a.block.Time.Unix())
	if err != nil {
		return nil, err
	}
	if err := CheckCustodian(a.st, rec, h.ID); err != nil {
		return nil, err
	}
	prefix := keyReceipt + string(d.ID) + "/" + string(h.ID) + "/"
	n := 0
	if err := scan(a.st, prefix, func(string, []byte) (bool, error) { n++; return n < MaxReleases, nil }); err != nil {
		return nil, err
	}
	if n >= MaxReleases {
		return nil, reject(CodeDuplicate, "grant %s was released %d times by %s, the most a grant allows", d.ID, n, h.ID)
	}
	if err := setValue(a.st, prefix+string(a.id), ReceiptEntry{Grant: d.ID, Custodian: h.ID, Height: a.block.Height}); err != nil {
		return nil, err
	}
	if err := a.audit(AuditEvent{Kind: AuditKeyReleased, Patient: d.Patient, Record: d.Record, Hospital: h.ID,
		Recipient: d.Requester, Purpose: d.Purpose, Consent: d.Consent, Grant: d.ID}); err != nil {
		return nil, err
	}
	return []Event{{Type: "key-release", Attrs: []Attr{
		{Key: "grant", Value: string(d.ID), Index: true},
		{Key: "custodian", Value: string(h.ID)},
		{Key: "patient", Value: string(d.Patient)},
	}}}, nil
}
