package consent

import (
	"crypto/ed25519"
	"encoding/hex"
	"slices"
	"strconv"
)

// Leaving by vote. A hospital leaves once members holding ≥ 2/3 of the power voted
// that it leave (as it joined, proposeHospital). Then, in the same tx: it is no longer
// in the registry, so no node admits its peer and no tx of its operator key counts;
// it leaves the validator set if it was in it; each threshold record it is a custodian
// of begins a re-sharing to a new set without it (reshare.go). Its past acts stay in
// the access log.

// ValidatorUpdate is a change to the validator set: the validator's Ed25519 node key
// and its new power (0 removes it).
type ValidatorUpdate struct {
	Node  []byte
	Power int64
}

// LeaveProposal is a pending vote that a hospital leave: the members that voted.
type LeaveProposal struct {
	Votes []HospitalID `cbor:"1,keyasint" json:"votes"`
}

// InitValidators records the genesis validator set, as CometBFT runs it, so that a
// hospital that leaves is removed from it (and only one that is in it: CometBFT halts
// on the removal of a validator it does not have). The chain calls it once, at
// genesis, after InitChain.
func (m *Machine) InitValidators(st Store, vals []ValidatorUpdate) error {
	for _, v := range vals {
		if len(v.Node) != 32 || v.Power <= 0 {
			return reject(CodeInvalid, "genesis validator: an Ed25519 key of 32 bytes and a positive power")
		}
		if err := setValue(st, keyValidator+hex.EncodeToString(v.Node), v.Power); err != nil {
			return err
		}
	}
	return nil
}

// ValidatorKeys are the node keys of the validator set as the chain keeps it (genesis,
// less the hospitals that left), in key order; none for a state without it.
func ValidatorKeys(r Reader) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	err := scan(r, keyValidator, func(k string, _ []byte) (bool, error) {
		key, err := hex.DecodeString(k[len(keyValidator):])
		keys = append(keys, key)
		return err == nil, err
	})
	return keys, err
}

// leave counts the signer's vote that l.Hospital leave; at ≥ 2/3 of the members'
// power it leaves.
func (a *action) leave(l Leave) ([]Event, error) {
	voter, err := a.signerHospital()
	if err != nil {
		return nil, err
	}
	target, err := getHospital(a.st, l.Hospital)
	if err != nil {
		return nil, err
	}
	var p LeaveProposal
	if _, err := getValue(a.st, keyLeave+string(target.ID), &p); err != nil {
		return nil, err
	}
	if slices.Contains(p.Votes, voter.ID) {
		return nil, reject(CodeDuplicate, "%s already voted that %s leave", voter.ID, target.ID)
	}
	p.Votes = sortedUnique(append(p.Votes, voter.ID))
	if members, err := Hospitals(a.st); err != nil || len(members) == 1 {
		if err != nil {
			return nil, err
		}
		return nil, reject(CodeInvalid, "%s is the consortium's last member: it cannot leave", target.ID)
	}
	passed, err := carried(a.st, p.Votes)
	if err != nil {
		return nil, err
	}
	ev := Event{Type: "leave", Attrs: []Attr{{Key: "hospital", Value: string(target.ID), Index: true}, {Key: "voter", Value: string(voter.ID)}}}
	if !passed {
		return []Event{ev}, setValue(a.st, keyLeave+string(target.ID), p)
	}
	if err := a.removeValidator(target); err != nil {
		return nil, err
	}
	for _, k := range []string{keyLeave + string(target.ID), keyHospital + string(target.ID), keyOperator + hex.EncodeToString(target.Operator)} {
		if err := a.st.Delete([]byte(k)); err != nil {
			return nil, err
		}
	}
	// Its ID is retired: the access log names it, and a newcomer under the same ID
	// would read there as the hospital that left (the records it registered, say).
	if err := setValue(a.st, keyLeft+string(target.ID), a.block.Height); err != nil {
		return nil, err
	}
	ev.Attrs = append(ev.Attrs, Attr{Key: "left", Value: "true"})
	reshares, err := a.reshareAfterLeave(target.ID)
	if err != nil {
		return nil, err
	}
	ev.Attrs = append(ev.Attrs, Attr{Key: "reshares", Value: strconv.Itoa(len(reshares))})
	return append([]Event{ev}, reshares...), nil
}

// removeValidator takes h out of the validator set if it is in it, refusing to leave
// the set empty.
func (a *action) removeValidator(h *Hospital) error {
	key := keyValidator + hex.EncodeToString(h.Node)
	var power int64
	ok, err := getValue(a.st, key, &power)
	if err != nil || !ok {
		return err
	}
	var rest int64
	err = scan(a.st, keyValidator, func(k string, v []byte) (bool, error) {
		var p int64
		if err := decMode.Unmarshal(v, &p); err != nil {
			return false, err
		}
		if k != key {
			rest += p
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if rest == 0 {
		return reject(CodeInvalid, "%s holds all the validator power: the chain would have no validator left", h.ID)
	}
	a.validators = append(a.validators, ValidatorUpdate{Node: slices.Clone(h.Node), Power: 0})
	if err := setValue(a.st, keyValidatorLeft+hex.EncodeToString(h.Node), a.block.Height); err != nil {
		return err
	}
	return a.st.Delete([]byte(key))
}

// ValidatorGrace is how many heights after it leaves the validator set a hospital's
// node is still admitted as a peer: CometBFT applies a validator update returned at
// height H from H+2, so the leaver's votes still count for H+1, and a chain that needs
// them (two validators, say) would halt if its peers refused it at once.
const ValidatorGrace = 3

// AdmittedNodeKeys are the node keys whose peers a hospital node admits at height (the
// last committed block's, idle ones included): the members', and those of validators
// that left the set less than ValidatorGrace heights before.
func AdmittedNodeKeys(r Reader, height int64) ([]ed25519.PublicKey, error) {
	hs, err := Hospitals(r)
	if err != nil {
		return nil, err
	}
	keys := make([]ed25519.PublicKey, 0, len(hs))
	for _, h := range hs {
		keys = append(keys, h.Node)
	}
	err = scan(r, keyValidatorLeft, func(k string, v []byte) (bool, error) {
		var left Height
		if err := decMode.Unmarshal(v, &left); err != nil {
			return false, err
		}
		if int64(left)+ValidatorGrace > height {
			key, err := hex.DecodeString(k[len(keyValidatorLeft):])
			if err != nil {
				return false, err
			}
			keys = append(keys, key)
		}
		return true, nil
	})
	return keys, err
}
