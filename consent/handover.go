package consent

import "slices"

// Hand-over. A custodian of a threshold record may hand its custody over to another
// member (a hospital retiring its store, moving custody closer to the patient's care,
// or one that lost its share): the record is re-shared (reshare.go) to its other
// custodians and the named member, or one the chain chooses, in its place. Only the
// custodian itself may hand its custody over; a custodian that is gone for good is
// replaced by the leave vote. The custodian keeps its share, and releases it, until the
// new sharing is in force, and it deals it again like the others (a custodian that lost
// its share does not deal: the others must be k).

// handOver starts the re-sharing of h.Record without its signing custodian.
func (a *action) handOver(h HandOver) ([]Event, error) {
	c, err := a.requester(h.Custodian)
	if err != nil {
		return nil, err
	}
	rec, err := GetRecord(a.st, h.Record)
	if err != nil {
		return nil, err
	}
	switch {
	case rec.Erased != 0:
		return nil, reject(CodeErased, "record %s was erased at height %d", rec.ID, rec.Erased)
	case !slices.Contains(rec.Custodians, c.ID):
		return nil, reject(CodeUnauthorized, "%s is not a custodian of record %s", c.ID, rec.ID)
	case !rec.Shared():
		return nil, reject(CodeInvalid, "record %s's key is held whole by %s: there is no share to hand over", rec.ID, c.ID)
	case h.To == c.ID:
		return nil, reject(CodeInvalid, "%s cannot hand its custody over to itself", c.ID)
	}
	if h.To != "" {
		if _, err := getHospital(a.st, h.To); err != nil {
			return nil, err
		}
		if slices.Contains(rec.Custodians, h.To) {
			return nil, reject(CodeInvalid, "%s is a custodian of record %s already", h.To, rec.ID)
		}
	}
	if rs, err := GetReshare(a.st, rec.ID); err != nil || rs != nil {
		if err != nil {
			return nil, err
		}
		return nil, reject(CodeInvalid, "record %s is being re-shared (to epoch %d); hand it over once that is done", rec.ID, rs.Epoch)
	}
	ev, err := a.startReshare(rec, c.ID, h.To)
	if err != nil {
		return nil, err
	}
	rs, err := GetReshare(a.st, rec.ID)
	switch {
	case err != nil:
		return nil, err
	case rs == nil:
		return nil, reject(CodeNoCustody, "fewer than %d custodians of record %s hold a verified share to deal: it cannot be re-shared", rec.Threshold, rec.ID)
	case len(rs.To) < len(rec.Custodians):
		return nil, reject(CodeInvalid, "every member is a custodian of record %s: there is no member to hand custody over to", rec.ID)
	}
	ev.Attrs = append(ev.Attrs, Attr{Key: "out", Value: string(c.ID)}, Attr{Key: "in", Value: string(rs.To[slices.IndexFunc(rs.To, func(x HospitalID) bool {
		return !slices.Contains(rec.Custodians, x)
	})])})
	return []Event{ev}, nil
}
