package consent

import "slices"

// CheckRelease decides, against committed state r at block time now (Unix seconds),
// whether a custodian may release a record's key to requester for grant: the grant
// must be committed and granted, name this requester, not have expired, its consent
// must not have been revoked since and must still permit the access at now (its
// period may have ended), and the record must not be erased. It returns the
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
		return nil, nil, reject(CodeUnauthorized, "grant %s is not for %s", d.ID, Truncate(string(requester), 40))
	case now > d.Expires:
		return nil, nil, reject(CodeExpired, "grant %s expired at %d", d.ID, d.Expires)
	}
	rec, err := GetRecord(r, d.Record)
	if err != nil {
		return nil, nil, err
	}
	if rec.Erased != 0 {
		return nil, nil, reject(CodeErased, "record %s was erased at height %d", rec.ID, rec.Erased)
	}
	if d.Consent != "" {
		c, err := GetConsent(r, d.Consent)
		if err != nil {
			return nil, nil, err
		}
		if c.Revoked != 0 {
			return nil, nil, reject(CodeNotGranted, "consent %s was revoked at height %d", c.ID, c.Revoked)
		}
		// The consent must still permit this access now: its period (or the permitting
		// provision's) may have ended since the grant. Only time differs from when the
		// grant was decided, so a refusal here is an expiry.
		if ok, why := c.Policy.Evaluate(Access{Actor: d.Requester, Purpose: d.Purpose, Record: rec.ID,
			Classes: rec.Classes, Time: now}); !ok {
			return nil, nil, reject(CodeExpired, "consent %s no longer permits this access (%s)", c.ID, why)
		}
	}
	return d, rec, nil
}

// CheckCustodian decides, against committed state r, whether hospital h may release
// its key of rec: it must be one of rec's custodians, still a member, and, for a record in threshold
// custody, must have accepted custody on the chain (so its share verified against the
// record's commitments); else a *Rejection (unauthorized, no-custody). Custodians call
// it with CheckRelease before every release; the chain checks it on every receipt.
func CheckCustodian(r Reader, rec *Record, h HospitalID) error {
	if !slices.Contains(rec.Custodians, h) {
		return reject(CodeUnauthorized, "%s is not a custodian of record %s", h, rec.ID)
	}
	if _, err := getHospital(r, h); err != nil {
		return reject(CodeUnauthorized, "%s is not a member of the consortium: it left", h)
	}
	if !rec.Shared() {
		return nil
	}
	ok, err := hasAccepted(r, rec, h)
	if err != nil {
		return err
	}
	if !ok {
		return reject(CodeNoCustody, "%s has not accepted custody of record %s: it releases no share before its share has verified", h, rec.ID)
	}
	return nil
}

// BlockTime returns the time of the last applied block (Unix seconds).
func BlockTime(r Reader) (int64, error) {
	_, t, err := meta(r)
	return t, err
}
