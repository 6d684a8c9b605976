package consent

import (
	"bytes"
	"slices"
	"strconv"
)

// Hand-over. A custodian of a threshold record may hand its custody over to another
// member (a hospital retiring its store, moving custody closer to the patient's care,
// or one that lost its share): the record is re-shared (reshare.go) to its other
// custodians and the named member, or one the chain chooses, in its place. Only the
// custodian itself may hand its custody over; a custodian that is gone for good is
// replaced by the leave vote. The custodian keeps its share, and releases it, until the
// new sharing is in force, and it deals it again like the others; the chain counts it
// among the k dealers a re-sharing needs. One that lost its share cannot deal: if fewer
// than k others can, the re-sharing waits, and the custodian may withdraw its hand-over
// (HandOver.Withdraw) until the switch. A leave that starts a hand-over again when no
// member is left to take its place drops the hand-over rather than the custodian.

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
	case h.Withdraw && h.To != "":
		return nil, reject(CodeInvalid, "a withdrawal names no member to hand over to")
	case h.Withdraw:
		return a.withdrawHandOver(c, rec)
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
	state, _ := attrOf(ev, "state")
	switch {
	case err != nil:
		return nil, err
	case state == "unchanged":
		return nil, reject(CodeInvalid, "no member is free to take %s's custody of record %s (every other one is a custodian already)", c.ID, rec.ID)
	case rs == nil:
		return nil, reject(CodeNoCustody, "fewer than %d custodians of record %s hold a verified share to deal: it cannot be re-shared", rec.Threshold, rec.ID)
	case rs.Out != c.ID:
		return nil, reject(CodeInvalid, "no member is free to take %s's custody of record %s (every other one is a custodian already)", c.ID, rec.ID)
	}
	in := h.To
	if in == "" { // the chain's choice: the first new custodian in its order
		fresh := slices.DeleteFunc(slices.Clone(rs.To), func(x HospitalID) bool { return slices.Contains(rec.Custodians, x) })
		slices.SortFunc(fresh, func(x, y HospitalID) int { return bytes.Compare(placeKey(rec.ID, x), placeKey(rec.ID, y)) })
		in = fresh[0]
	}
	ev.Attrs = append(ev.Attrs, Attr{Key: "out", Value: string(c.ID)}, Attr{Key: "in", Value: string(in)})
	return []Event{ev}, nil
}

// withdrawHandOver ends h.Custodian's hand-over of h.Record before the switch (say, it
// has lost its share, and fewer than k others can deal): the re-sharing is dropped and
// the record stays with its custodians. New custodians that took shares of it destroy
// them (node/reshare.go).
func (a *action) withdrawHandOver(c *Hospital, rec *Record) ([]Event, error) {
	rs, err := GetReshare(a.st, rec.ID)
	switch {
	case err != nil:
		return nil, err
	case rs == nil || rs.Out != c.ID:
		return nil, reject(CodeInvalid, "%s has no hand-over of record %s in progress", c.ID, rec.ID)
	case rs.Switched:
		return nil, reject(CodeInvalid, "the hand-over of record %s is done: it switched at epoch %d", rec.ID, rs.Epoch)
	}
	ev := Event{Type: "reshare", Attrs: []Attr{{Key: "record", Value: string(rec.ID), Index: true},
		{Key: "epoch", Value: strconv.FormatUint(uint64(rs.Epoch), 10)}, {Key: "out", Value: string(c.ID)}, {Key: "state", Value: "withdrawn"}}}
	return []Event{ev}, a.st.Delete([]byte(keyReshare + string(rec.ID)))
}

// attrOf is the value of ev's attribute key.
func attrOf(ev Event, key string) (string, bool) {
	for _, a := range ev.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}
