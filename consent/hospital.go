package consent

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

func (h Hospital) validate() error {
	switch {
	case !h.ID.Valid():
		return fmt.Errorf("hospital ID %q: use 1-32 lowercase letters, digits and dashes", Truncate(string(h.ID), 40))
	case strings.TrimSpace(h.Name) == "" || len(h.Name) > 128:
		return fmt.Errorf("hospital %s: name must be 1-128 characters", h.ID)
	case len(h.Operator) != 32 || len(h.Node) != 32 || len(h.Wrap) != 32:
		return fmt.Errorf("hospital %s: operator, node and wrap keys must be 32 bytes each", h.ID)
	case h.Power < 0 || h.Power > 1000:
		return fmt.Errorf("hospital %s: power must be 0-1000", h.ID)
	case len(h.Addrs) > 8:
		return fmt.Errorf("hospital %s: at most 8 addresses", h.ID)
	}
	return nil
}

func putHospital(st Store, h Hospital) error {
	if err := setValue(st, keyHospital+string(h.ID), h); err != nil {
		return err
	}
	return setValue(st, keyOperator+hex.EncodeToString(h.Operator), h.ID)
}

func getHospital(r Reader, id HospitalID) (*Hospital, error) {
	var h Hospital
	ok, err := getValue(r, keyHospital+string(id), &h)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, reject(CodeUnknownHospital, "no registered hospital %q", Truncate(string(id), 40))
	}
	return &h, nil
}

// Hospitals returns every registered hospital, by ID.
func Hospitals(r Reader) ([]Hospital, error) {
	var out []Hospital
	err := scan(r, keyHospital, func(_ string, v []byte) (bool, error) {
		var h Hospital
		if err := decMode.Unmarshal(v, &h); err != nil {
			return false, err
		}
		out = append(out, h)
		return true, nil
	})
	return out, err
}

// proposeHospital counts the signer's vote for a new member; at ≥ 2/3 of the
// members' power the hospital is registered.
func (a *action) proposeHospital(h Hospital) ([]Event, error) {
	voter, err := a.signerHospital()
	if err != nil {
		return nil, err
	}
	if err := h.validate(); err != nil {
		return nil, reject(CodeInvalid, "%v", err)
	}
	if _, err := getHospital(a.st, h.ID); err == nil {
		return nil, reject(CodeDuplicate, "hospital %s is already registered", h.ID)
	}
	var left Height
	if ok, err := getValue(a.st, keyLeft+string(h.ID), &left); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return nil, reject(CodeDuplicate, "hospital ID %s belonged to a hospital that left at height %d: IDs are not reused", h.ID, left)
	}
	var dup HospitalID
	if ok, err := getValue(a.st, keyOperator+hex.EncodeToString(h.Operator), &dup); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return nil, reject(CodeDuplicate, "operator key already belongs to %s", dup)
	}
	if err := keysUnused(a.st, h); err != nil {
		return nil, err
	}
	var p Proposal
	ok, err := getValue(a.st, keyProposal+string(h.ID), &p)
	if err != nil {
		return nil, err
	}
	if !ok {
		p.Hospital = h
	} else if !sameHospital(p.Hospital, h) {
		return nil, reject(CodeInvalid, "vote for %s differs from the pending proposal", h.ID)
	}
	if slices.Contains(p.Votes, voter.ID) {
		return nil, reject(CodeDuplicate, "%s already voted for %s", voter.ID, h.ID)
	}
	p.Votes = sortedUnique(append(p.Votes, voter.ID))
	passed, err := carried(a.st, p.Votes)
	if err != nil {
		return nil, err
	}
	ev := Event{Type: "hospital", Attrs: []Attr{{Key: "id", Value: string(h.ID), Index: true}, {Key: "voter", Value: string(voter.ID)}}}
	if passed {
		if err := a.st.Delete([]byte(keyProposal + string(h.ID))); err != nil {
			return nil, err
		}
		ev.Attrs = append(ev.Attrs, Attr{Key: "registered", Value: "true"})
		return []Event{ev}, putHospital(a.st, h)
	}
	return []Event{ev}, setValue(a.st, keyProposal+string(h.ID), p)
}

func sameHospital(a, b Hospital) bool {
	ea, _ := encMode.Marshal(a)
	eb, _ := encMode.Marshal(b)
	return string(ea) == string(eb)
}

// carried reports whether the members among votes hold at least 2/3 of the members'
// power (votes of hospitals no longer members do not count).
func carried(r Reader, votes []HospitalID) (bool, error) {
	members, err := Hospitals(r)
	if err != nil {
		return false, err
	}
	var total, yes int64
	for _, m := range members {
		total += m.Power
		if slices.Contains(votes, m.ID) {
			yes += m.Power
		}
	}
	return total > 0 && 3*yes >= 2*total, nil
}

// keysUnused refuses a new member whose node or wrap key is a member's, or whose node
// key is a validator's: a node key names one hospital (its peer, its validator), so a
// copied one would let that hospital's leaving remove another's validator.
func keysUnused(r Reader, h Hospital) error {
	members, err := Hospitals(r)
	if err != nil {
		return err
	}
	for _, m := range members {
		if bytes.Equal(m.Node, h.Node) || bytes.Equal(m.Wrap, h.Wrap) {
			return reject(CodeDuplicate, "%s's node or wrap key is already %s's", h.ID, m.ID)
		}
	}
	if ok, err := getValue(r, keyValidator+hex.EncodeToString(h.Node), new(int64)); err != nil || ok {
		if err != nil {
			return err
		}
		return reject(CodeDuplicate, "%s's node key is already a validator's", h.ID)
	}
	return nil
}
