package consent

// CheckRelease decides, against committed state r at block time now (Unix seconds),
// whether a custodian may release a record's key to requester for grant: the grant
// must be committed and granted, name this requester, not have expired, its consent
// must not have been revoked since, and the record must not be erased. It returns the
// decision and the record, or a *Rejection saying which check failed. Custodians call
// it before every key release (DESIGN invariant 3).
func CheckRelease(r Reader, grant GrantID, requester HospitalID, now int64) (*Decision, *Record, error) {
	d, err := GetDecision(r, grant)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case !d.Granted:
		return nil, nil, reject(CodeNotGranted, "grant %s was denied (%s)", d.ID, d.Reason)
	case d.Requester != requester:
		return nil, nil, reject(CodeUnauthorized, "grant %s is not for %s", d.ID, truncate(string(requester), 40))
	case now > d.Expires:
		return nil, nil, reject(CodeExpired, "grant %s expired at %d", d.ID, d.Expires)
	}
	if d.Consent != "" {
		c, err := getConsent(r, d.Consent)
		if err != nil {
			return nil, nil, err
		}
		if c.Revoked != 0 {
			return nil, nil, reject(CodeNotGranted, "consent %s was revoked at height %d", c.ID, c.Revoked)
		}
	}
	rec, err := getRecord(r, d.Record)
	if err != nil {
		return nil, nil, err
	}
	if rec.Erased != 0 {
		return nil, nil, reject(CodeErased, "record %s was erased at height %d", rec.ID, rec.Erased)
	}
	return d, rec, nil
}

// BlockTime returns the time of the last applied block (Unix seconds).
func BlockTime(r Reader) (int64, error) {
	_, t, err := meta(r)
	return t, err
}
