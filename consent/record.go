package consent

import (
	"slices"
	"strconv"
)

const maxClasses = 64

// registerRecord registers a record; the signer must be one of its custodians.
func (a *action) registerRecord(r RegisterRecord) ([]Event, error) {
	signer, err := a.signerHospital()
	if err != nil {
		return nil, err
	}
	switch {
	case !r.Record.Valid():
		return nil, reject(CodeInvalid, "record ID must be 32 lowercase hex digits")
	case !ValidCID(r.CID):
		return nil, reject(CodeInvalid, "CID must be a base32 CIDv1")
	case !r.Patient.Valid():
		return nil, reject(CodeInvalid, "patient ID must be 64 lowercase hex digits (the patient's public key)")
	case len(r.Classes) == 0 || len(r.Classes) > maxClasses:
		return nil, reject(CodeInvalid, "a record names 1-%d data classes", maxClasses)
	case len(r.Custodians) == 0 || len(r.Custodians) > 16:
		return nil, reject(CodeInvalid, "a record names 1-16 custodians")
	case !slices.Contains(r.Custodians, signer.ID):
		return nil, reject(CodeUnauthorized, "%s registers a record it is not a custodian of", signer.ID)
	}
	for _, c := range r.Classes {
		if err := CheckClass(c); err != nil {
			return nil, reject(CodeInvalid, "data class %q is not a FHIR resource type%s", Truncate(string(c), 40), err.(*NameError).Hint())
		}
	}
	if err := checkCustody(r); err != nil {
		return nil, err
	}
	for _, c := range r.Custodians {
		if _, err := getHospital(a.st, c); err != nil {
			return nil, err
		}
	}
	if b, err := a.st.Get([]byte(keyRecord + string(r.Record))); err != nil || b != nil {
		if err != nil {
			return nil, err
		}
		return nil, reject(CodeDuplicate, "record %s is already registered", r.Record)
	}
	rec := Record{ID: r.Record, CID: r.CID, Patient: r.Patient, Classes: sortedUnique(r.Classes),
		Custodians: sortedUnique(r.Custodians), Height: a.block.Height,
		Threshold: r.Threshold, Commitments: r.Commitments}
	if err := setValue(a.st, keyRecord+string(r.Record), rec); err != nil {
		return nil, err
	}
	if err := a.st.Set([]byte(keyPatRecord+string(r.Patient)+"/"+string(r.Record)), []byte{}); err != nil {
		return nil, err
	}
	if rec.Shared() {
		if err := indexCustodians(a.st, rec.ID, nil, rec.Custodians); err != nil {
			return nil, err
		}
	}
	if err := a.audit(AuditEvent{Kind: AuditRecordRegistered, Patient: rec.Patient, Record: rec.ID,
		Hospital: signer.ID, Custodians: rec.Custodians}); err != nil {
		return nil, err
	}
	attrs := []Attr{
		{Key: "id", Value: string(r.Record), Index: true},
		{Key: "patient", Value: string(r.Patient)},
		{Key: "custodian", Value: string(signer.ID)},
	}
	if rec.Shared() {
		attrs = append(attrs, Attr{Key: "threshold", Value: strconv.Itoa(rec.Threshold)})
	}
	return []Event{{Type: "record", Attrs: attrs}}, nil
}

// GetRecord returns a record (erased ones too: Erased says when), or a *Rejection
// (CodeUnknownRecord) if there is none.
func GetRecord(r Reader, id RecordID) (*Record, error) {
	var rec Record
	ok, err := getValue(r, keyRecord+string(id), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, reject(CodeUnknownRecord, "no record %q", Truncate(string(id), 40))
	}
	return &rec, nil
}

// erase marks a record erased; only its patient may.
func (a *action) erase(e Erase) ([]Event, error) {
	rec, err := GetRecord(a.st, e.Record)
	if err != nil {
		return nil, err
	}
	if err := a.signerIsPatient(rec.Patient); err != nil {
		return nil, err
	}
	if rec.Erased != 0 {
		return nil, reject(CodeErased, "record %s was erased at height %d", rec.ID, rec.Erased)
	}
	rec.Erased = a.block.Height
	rs, err := GetReshare(a.st, rec.ID)
	if err != nil {
		return nil, err
	}
	if rs != nil && !rs.Switched {
		for _, x := range rs.Accepted {
			if !slices.Contains(rec.Custodians, x.Custodian) {
				rec.Holders = append(rec.Holders, x.Custodian)
			}
		}
	}
	if err := setValue(a.st, keyRecord+string(rec.ID), rec); err != nil {
		return nil, err
	}
	if err := a.st.Delete([]byte(keyReshare + string(rec.ID))); err != nil { // nothing left to re-share
		return nil, err
	}
	if err := indexCustodians(a.st, rec.ID, rec.Custodians, nil); err != nil {
		return nil, err
	}
	if err := a.audit(AuditEvent{Kind: AuditRecordErased, Patient: rec.Patient, Record: rec.ID, Custodians: rec.holders()}); err != nil {
		return nil, err
	}
	return []Event{{Type: "erase", Attrs: []Attr{
		{Key: "record", Value: string(rec.ID), Index: true},
		{Key: "patient", Value: string(rec.Patient)},
	}}}, nil
}

// holders are the hospitals that may hold the record's key or a share of it: its
// custodians and, for a record erased during a re-sharing, the new custodians that
// had taken their shares (Holders).
func (r *Record) holders() []HospitalID {
	return append(slices.Clone(r.Custodians), r.Holders...)
}
