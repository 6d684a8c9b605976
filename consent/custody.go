package consent

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strconv"

	"github.com/medledger/medledger/crypto"
)

// Threshold custody. A record registered with a threshold k and share commitments has
// its ciphertext on each of its r custodians and its key shared k-of-r among them
// (crypto.DEK.Split): no single custodian can release it. Each custodian, once it
// holds every block and a share that verifies against the commitments on the chain,
// says so with an accept-custody tx; the record is available once k have. When the
// record is erased, each custodian destroys its share and blocks and says so with an
// attest-erasure tx; the erasure is complete once all have. A whole-key record (no
// threshold) is available at registration, as before threshold custody, and its
// erasure is complete once its custodians attested too.
//
// A custodian releases its share under the same check as a whole key (CheckRelease),
// with its own receipt (receipt).

// MaxCustodians bounds the custodians of a record (r), as crypto.MaxShares bounds n.
const MaxCustodians = crypto.MaxShares

// Attestation is a custodian's signed statement about a record, as recorded: custody
// accepted, or erasure done.
type Attestation struct {
	Custodian HospitalID `cbor:"1,keyasint" json:"custodian"`
	Height    Height     `cbor:"2,keyasint" json:"height"`
}

// Shared reports whether the record is in threshold custody (its key in shares).
func (r *Record) Shared() bool { return r.Threshold > 0 }

// ShareIndex returns the index of h's share of a threshold record: its position among
// the record's custodians, from 1. ok is false if h is not a custodian or the record
// is held whole.
func (r *Record) ShareIndex(h HospitalID) (i crypto.ShareIndex, ok bool) {
	j := slices.Index(r.Custodians, h)
	if !r.Shared() || j < 0 {
		return 0, false
	}
	return crypto.ShareIndex(j + 1), true
}

// CommitmentsHash is the SHA-256 of the record's share commitments, which an
// accept-custody tx names.
func (r *Record) CommitmentsHash() []byte {
	sum := sha256.Sum256(r.Commitments)
	return sum[:]
}

// available reports whether a record not erased can be released: held whole, or in
// threshold custody with at least Threshold custodians that accepted it.
func available(r Reader, rec *Record) (bool, error) {
	if rec.Erased != 0 {
		return false, nil
	}
	if !rec.Shared() {
		return true, nil
	}
	accepted, err := attestations(r, keyCustody, rec.ID)
	return len(accepted) >= rec.Threshold, err
}

// hasAccepted reports whether custodian h accepted custody of rec.
func hasAccepted(r Reader, rec *Record, h HospitalID) (bool, error) {
	var prev Attestation
	return getValue(r, keyCustody+string(rec.ID)+"/"+string(h), &prev)
}

// fillCustody sets the default custody for a consortium of n genesis hospitals where
// genesis left it unset (r = min(n, 3), at least 1; k = ⌈r/2⌉, so 2 of 3, 1 of 2,
// 1 of 1) and rejects custody outside 1 ≤ k ≤ r ≤ MaxCustodians.
func (p *Params) fillCustody(n int) error {
	if p.Custodians == 0 {
		p.Custodians = max(1, min(n, 3))
	}
	if p.Threshold == 0 {
		p.Threshold = (p.Custodians + 1) / 2
	}
	if p.Threshold < 1 || p.Threshold > p.Custodians || p.Custodians > MaxCustodians {
		return fmt.Errorf("params: custody threshold %d of %d custodians: want 1 ≤ threshold ≤ custodians ≤ %d",
			p.Threshold, p.Custodians, MaxCustodians)
	}
	return nil
}

// checkCustody checks a registration's custody: none (a whole-key record), or a
// threshold k of its r custodians with 1 ≤ k ≤ r ≤ MaxCustodians, the custodians
// sorted and unique (share i is the i-th's), and k well-formed commitments.
func checkCustody(r RegisterRecord) error {
	switch {
	case r.Threshold == 0 && len(r.Commitments) == 0:
		return nil
	case r.Threshold == 0 || len(r.Commitments) == 0:
		return reject(CodeInvalid, "a threshold record names its threshold and its share commitments together")
	case r.Threshold < 1 || r.Threshold > len(r.Custodians) || len(r.Custodians) > MaxCustodians:
		return reject(CodeInvalid, "threshold %d of %d custodians: want 1 ≤ threshold ≤ custodians ≤ %d",
			r.Threshold, len(r.Custodians), MaxCustodians)
	case !slices.IsSorted(r.Custodians) || len(sortedUnique(r.Custodians)) != len(r.Custodians):
		return reject(CodeInvalid, "a threshold record lists its custodians sorted and once each (share i is the i-th custodian's)")
	}
	c, err := crypto.ParseCommitments(r.Commitments)
	if err != nil {
		return reject(CodeInvalid, "share commitments: %v", err)
	}
	if c.Threshold() != r.Threshold {
		return reject(CodeInvalid, "share commitments are for a threshold of %d, the record names %d", c.Threshold(), r.Threshold)
	}
	return nil
}

// custodianOf checks that the tx is signed by custodian h of the record (or, for an
// erased record, one of its Holders).
func (a *action) custodianOf(h HospitalID, id RecordID) (*Hospital, *Record, error) {
	hosp, err := a.requester(h)
	if err != nil {
		return nil, nil, err
	}
	rec, err := GetRecord(a.st, id)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(rec.holders(), hosp.ID) {
		return nil, nil, reject(CodeUnauthorized, "%s is not a custodian of record %s", hosp.ID, rec.ID)
	}
	return hosp, rec, nil
}

// acceptCustody records that a custodian holds a threshold record's blocks and a valid
// share, once per custodian and sharing.
func (a *action) acceptCustody(c AcceptCustody) ([]Event, error) {
	h, err := a.requester(c.Custodian)
	if err != nil {
		return nil, err
	}
	rec, err := GetRecord(a.st, c.Record)
	if err != nil {
		return nil, err
	}
	if rec.Erased == 0 && !bytes.Equal(c.Commitments, rec.CommitmentsHash()) {
		rs, err := GetReshare(a.st, rec.ID)
		if err != nil {
			return nil, err
		}
		if rs != nil && rs.Ready() && bytes.Equal(c.Commitments, rs.CommitmentsHash()) {
			return a.acceptReshared(h, rec, rs)
		}
	}
	if !slices.Contains(rec.Custodians, h.ID) {
		return nil, reject(CodeUnauthorized, "%s is not a custodian of record %s", h.ID, rec.ID)
	}
	switch {
	case !rec.Shared():
		return nil, reject(CodeInvalid, "record %s is held whole by its custodians: it has no shares to accept", rec.ID)
	case rec.Erased != 0:
		return nil, reject(CodeErased, "record %s was erased at height %d", rec.ID, rec.Erased)
	case !bytes.Equal(c.Commitments, rec.CommitmentsHash()):
		return nil, reject(CodeInvalid, "%s accepts custody under other share commitments than record %s's", h.ID, rec.ID)
	}
	accepted, err := a.attest(keyCustody, rec, h.ID, "accepted custody of")
	if err != nil {
		return nil, err
	}
	var more []Event
	if rs, err := GetReshare(a.st, rec.ID); err != nil || (rs != nil && rs.Switched) {
		if err != nil {
			return nil, err
		}
		if more, err = a.settleReshare(rec, rs); err != nil { // a late new custodian took its share
			return nil, err
		}
	}
	return append([]Event{{Type: "custody", Attrs: []Attr{
		{Key: "record", Value: string(rec.ID), Index: true},
		{Key: "custodian", Value: string(h.ID)},
		{Key: "accepted", Value: strconv.Itoa(len(accepted))},
		{Key: "available", Value: strconv.FormatBool(len(accepted) >= rec.Threshold)},
	}}}, more...), nil
}

// attestErasure records that a custodian destroyed an erased record's key or share and
// its blocks, once per custodian, and logs it in the access log (erasure-attested,
// the custodian as the hospital that acted): crypto-shredding reported per custodian.
func (a *action) attestErasure(e AttestErasure) ([]Event, error) {
	h, rec, err := a.custodianOf(e.Custodian, e.Record)
	if err != nil {
		return nil, err
	}
	if rec.Erased == 0 {
		return nil, reject(CodeInvalid, "record %s is not erased: a custodian attests erasure after the patient's erase", rec.ID)
	}
	attested, err := a.attest(keyErasure, rec, h.ID, "attested erasure of")
	if err != nil {
		return nil, err
	}
	if err := a.audit(AuditEvent{Kind: AuditErasureAttested, Patient: rec.Patient, Record: rec.ID,
		Hospital: h.ID, Custodians: rec.Custodians}); err != nil {
		return nil, err
	}
	unattested, _, err := erasureGaps(a.st, rec, attested)
	if err != nil {
		return nil, err
	}
	return []Event{{Type: "erasure", Attrs: []Attr{
		{Key: "record", Value: string(rec.ID), Index: true},
		{Key: "custodian", Value: string(h.ID)},
		{Key: "complete", Value: strconv.FormatBool(len(unattested) == 0)},
	}}}, nil
}

// attest records h's attestation under prefix/<record>/<h>, refusing a second one, and
// returns every attestation of the record under prefix, h's included.
func (a *action) attest(prefix string, rec *Record, h HospitalID, what string) ([]Attestation, error) {
	key := prefix + string(rec.ID) + "/" + string(h)
	var prev Attestation
	if ok, err := getValue(a.st, key, &prev); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return nil, reject(CodeDuplicate, "%s %s record %s at height %d", h, what, rec.ID, prev.Height)
	}
	if err := setValue(a.st, key, Attestation{Custodian: h, Height: a.block.Height}); err != nil {
		return nil, err
	}
	return attestations(a.st, prefix, rec.ID)
}

// attestations lists a record's attestations under prefix, by custodian.
func attestations(r Reader, prefix string, id RecordID) ([]Attestation, error) {
	out := []Attestation{}
	err := scan(r, prefix+string(id)+"/", func(_ string, v []byte) (bool, error) {
		var e Attestation
		if err := decMode.Unmarshal(v, &e); err != nil {
			return false, err
		}
		out = append(out, e)
		return true, nil
	})
	return out, err
}

// CustodyStatus is a record's custody as the chain knows it.
type CustodyStatus struct {
	Record     RecordID     `json:"record"`
	Custodians []HospitalID `json:"custodians"`
	// Threshold is k for a record in threshold custody, 0 for a whole-key record.
	Threshold int `json:"threshold"`
	// Epoch counts the record's completed re-sharings; Resharing is the one in
	// progress, if any.
	Epoch     uint32           `json:"epoch,omitempty"`
	Resharing *ReshareProgress `json:"resharing,omitempty"`
	// Accepted are the custody acceptances (threshold records), by custodian.
	Accepted []Attestation `json:"accepted"`
	// Available: a record not erased that is held whole, or in threshold custody
	// with Threshold custodians that accepted it.
	Available bool `json:"available"`
	// Erased is the height of the patient's erase (0: not erased); Attested the
	// custodians' erasure attestations since, Unattested the custodians that have
	// not attested yet, Departed those that left the consortium without attesting (they
	// no longer can), and ErasureComplete whether every custodian still a member has.
	Erased          Height        `json:"erased,omitempty"`
	Attested        []Attestation `json:"attested"`
	Unattested      []HospitalID  `json:"unattested"`
	Departed        []HospitalID  `json:"departed,omitempty"`
	ErasureComplete bool          `json:"erasure_complete"`
}

// ReshareProgress is a re-sharing in progress, as the custody status shows it: the
// new custodians, who has dealt, whether all deals are in, and who accepted the new
// sharing.
type ReshareProgress struct {
	Epoch    uint32        `json:"epoch"`
	To       []HospitalID  `json:"to"`
	Dealers  []HospitalID  `json:"dealers"`
	Dealt    bool          `json:"dealt"`
	Accepted []Attestation `json:"accepted"`
	// Switched: the record is in the new sharing; the re-sharing is kept until every
	// new custodian has taken its share.
	Switched bool `json:"switched,omitempty"`
}

// Custody returns a record's custody: who accepted it, whether it is available, and
// for an erased record who attested its erasure and who has not.
func Custody(r Reader, id RecordID) (*CustodyStatus, error) {
	rec, err := GetRecord(r, id)
	if err != nil {
		return nil, err
	}
	s := &CustodyStatus{Record: rec.ID, Custodians: rec.Custodians, Threshold: rec.Threshold, Epoch: rec.Epoch,
		Erased: rec.Erased, Unattested: []HospitalID{}}
	rs, err := GetReshare(r, id)
	if err != nil {
		return nil, err
	}
	if rs != nil {
		s.Resharing = &ReshareProgress{Epoch: rs.Epoch, To: rs.To, Dealers: []HospitalID{}, Dealt: rs.Ready(),
			Accepted: rs.Accepted, Switched: rs.Switched}
		for _, d := range rs.Deals {
			s.Resharing.Dealers = append(s.Resharing.Dealers, d.Dealer)
		}
	}
	if s.Accepted, err = attestations(r, keyCustody, rec.ID); err != nil {
		return nil, err
	}
	s.Available = rec.Erased == 0 && (!rec.Shared() || len(s.Accepted) >= rec.Threshold)
	if s.Attested, err = attestations(r, keyErasure, rec.ID); err != nil {
		return nil, err
	}
	if rec.Erased == 0 {
		return s, nil
	}
	if s.Unattested, s.Departed, err = erasureGaps(r, rec, s.Attested); err != nil {
		return nil, err
	}
	s.ErasureComplete = len(s.Unattested) == 0
	return s, nil
}

// erasureGaps are an erased record's custodians that have not attested its erasure:
// those still members (who will, e.g. when they return) and those that left the
// consortium (who no longer can: their txs do not count).
func erasureGaps(r Reader, rec *Record, attested []Attestation) (unattested, departed []HospitalID, err error) {
	unattested = []HospitalID{}
	for _, c := range rec.holders() {
		if slices.ContainsFunc(attested, func(e Attestation) bool { return e.Custodian == c }) {
			continue
		}
		ok, err := getValue(r, keyHospital+string(c), &Hospital{})
		if err != nil {
			return nil, nil, err
		}
		if ok {
			unattested = append(unattested, c)
		} else {
			departed = append(departed, c)
		}
	}
	return unattested, departed, nil
}
