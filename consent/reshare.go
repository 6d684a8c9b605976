package consent

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"slices"
	"strconv"

	"github.com/medledger/medledger/crypto"
)

// Re-sharing. When a custodian of a threshold record leaves the consortium, or hands its
// custody of the record over, the record is re-shared to a new set of custodians
// without any of them rebuilding its key (crypto.Reshare): the remaining custodians
// and, in the leaver's place, a member that was not a custodian (named by the one
// handing over, or chosen deterministically from the registry). It runs on the chain in
// three steps, each a tx:
//
//  1. The leave vote that removes the custodian (leave.go), or the custodian's
//     hand-over (handover.go), starts it: a Reshare with the next epoch, the old set
//     (From) and the new one (To), the same threshold k.
//  2. Each old custodian still a member deals its share again (DealShares): the chain
//     checks the deal's commitments against the record's (crypto.VerifyDeal) and, with
//     k deals, computes the new commitments (crypto.ReshareCommitments).
//  3. Each new custodian opens its sub-shares, combines them into its new share,
//     verifies it against the new commitments, holds every block, and accepts custody
//     of the new sharing (AcceptCustody naming the new commitments). With k
//     acceptances the record switches: its custodians, commitments and epoch become
//     the new ones, and the old custodians destroy their old shares.
//
// Until the switch the record is released from its old custodians as before (the
// leaver is not a member, so it releases nothing the chain records, and it is not
// counted as having custody). A leaver's old share does not combine with the new
// shares: they are points of another polynomial.

// Reshare is a re-sharing of a record in progress.
type Reshare struct {
	Record    RecordID     `cbor:"1,keyasint" json:"record"`
	Epoch     uint32       `cbor:"2,keyasint" json:"epoch"` // the record's epoch after the switch
	From      []HospitalID `cbor:"3,keyasint" json:"from"`  // the record's custodians (share i is the i-th's)
	To        []HospitalID `cbor:"4,keyasint" json:"to"`    // the new custodians, sorted (new share i is the i-th's)
	Threshold int          `cbor:"5,keyasint" json:"threshold"`
	Deals     []Deal       `cbor:"6,keyasint" json:"deals"`
	// Commitments are the new sharing's, set once Threshold deals are in.
	Commitments Hex           `cbor:"7,keyasint,omitempty" json:"commitments,omitempty"`
	Accepted    []Attestation `cbor:"8,keyasint" json:"accepted"`
	Height      Height        `cbor:"9,keyasint" json:"height"` // when it started: the round (DealShares.Round)
	// Switched is set once k new custodians accepted and the record switched to the new
	// sharing; the deals are kept until every new custodian has accepted, so that one
	// that was down takes its new share when it returns.
	Switched bool `cbor:"10,keyasint,omitempty" json:"switched,omitempty"`
	// Restart is set when a custodian left while the re-sharing was switched: a new
	// re-sharing starts once the remaining new custodians have taken their shares (so
	// that their deals are not lost before they do).
	Restart bool `cbor:"11,keyasint,omitempty" json:"restart,omitempty"`
	// Out is the custodian that handed its custody over (HandOver), and In the member it
	// named in its place, if any: a re-sharing started again before the switch keeps
	// them out and in.
	Out HospitalID `cbor:"12,keyasint,omitempty" json:"out,omitempty"`
	In  HospitalID `cbor:"13,keyasint,omitempty" json:"in,omitempty"`
}

// Deal is an old custodian's deal, as recorded.
type Deal struct {
	Dealer      HospitalID        `cbor:"1,keyasint" json:"dealer"`
	Index       crypto.ShareIndex `cbor:"2,keyasint" json:"index"` // the dealer's share index in From
	Commitments Hex               `cbor:"3,keyasint" json:"commitments"`
	Shares      []Hex             `cbor:"4,keyasint" json:"shares"` // wrapped sub-shares, in To's order
}

// maxWrappedShare bounds a wrapped sub-share (an HPKE encapsulation, a 34-byte share
// and a tag are about a hundred bytes).
const maxWrappedShare = 256

// ShareIndexIn is h's share index in the re-sharing's new set (from 1); ok is false if
// h is not in it.
func (rs *Reshare) ShareIndexIn(h HospitalID) (crypto.ShareIndex, bool) {
	i := slices.Index(rs.To, h)
	return crypto.ShareIndex(i + 1), i >= 0
}

// Ready reports whether the deals are in and the new commitments known, so the new
// custodians can make their shares.
func (rs *Reshare) Ready() bool { return len(rs.Commitments) > 0 }

// CommitmentsHash is the SHA-256 of the new commitments, which a new custodian's
// AcceptCustody names.
func (rs *Reshare) CommitmentsHash() []byte {
	sum := sha256.Sum256(rs.Commitments)
	return sum[:]
}

// GetReshare returns the re-sharing in progress of a record, or nil if there is none.
func GetReshare(r Reader, id RecordID) (*Reshare, error) {
	var rs Reshare
	ok, err := getValue(r, keyReshare+string(id), &rs)
	if err != nil || !ok {
		return nil, err
	}
	return &rs, nil
}

// Reshares lists the re-sharings in progress, by record.
func Reshares(r Reader) ([]Reshare, error) {
	out := []Reshare{}
	err := scan(r, keyReshare, func(_ string, v []byte) (bool, error) {
		var rs Reshare
		if err := decMode.Unmarshal(v, &rs); err != nil {
			return false, err
		}
		out = append(out, rs)
		return true, nil
	})
	return out, err
}

// reshareAfterLeave starts (or starts again) a re-sharing of every threshold record,
// not erased, that the hospital that just left holds or was to hold (its cost is in
// those records, not in all the chain's), and takes its custody acceptance out of the
// count. Whole-key records it held stay with it: there is no share to deal, so they
// cannot be released any more (fail closed).
func (a *action) reshareAfterLeave(left HospitalID) ([]Event, error) {
	// The records it holds a share of (the cr/ index), and those it was to hold (the
	// re-sharings in progress, few), in record order, each once.
	ids, err := HeldRecords(a.st, left)
	if err != nil {
		return nil, err
	}
	pendings, err := Reshares(a.st)
	if err != nil {
		return nil, err
	}
	for _, rs := range pendings {
		if slices.Contains(rs.To, left) {
			ids = append(ids, rs.Record)
		}
	}
	slices.Sort(ids)
	var events []Event
	for _, id := range slices.Compact(ids) {
		rec, err := GetRecord(a.st, id)
		if err != nil {
			return nil, err
		}
		if rec.Erased != 0 || !rec.Shared() {
			continue
		}
		pending, err := GetReshare(a.st, rec.ID)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(rec.Custodians, left) && (pending == nil || !slices.Contains(pending.To, left)) {
			continue
		}
		if err := a.st.Delete([]byte(keyCustody + string(rec.ID) + "/" + string(left))); err != nil {
			return nil, err
		}
		if pending != nil && pending.Switched {
			pending.Restart = true
			evs, err := a.settleReshare(rec, pending)
			if err != nil {
				return nil, err
			}
			events = append(events, evs...)
			continue
		}
		var out, in HospitalID
		if pending != nil { // started again: a hand-over in progress stays one
			out, in = pending.Out, pending.In
		}
		ev, err := a.startReshare(rec, out, in)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	return events, nil
}

// startReshare begins a re-sharing of rec from its custodians to a new set: those
// still members but out (a custodian handing its custody over), and members that are
// not custodians in the places of the others: in first if it is a member, then in an
// order fixed by the record (so custody spreads over the registry). If fewer than k
// custodians that are members and accepted custody remain to deal (out deals too), the
// record stays as it is and the event says the re-sharing is stuck.
func (a *action) startReshare(rec *Record, out, in HospitalID) (Event, error) {
	ev := Event{Type: "reshare", Attrs: []Attr{{Key: "record", Value: string(rec.ID), Index: true},
		{Key: "epoch", Value: strconv.FormatUint(uint64(rec.Epoch)+1, 10)}}}
	members, err := Hospitals(a.st)
	if err != nil {
		return ev, err
	}
	isMember := func(h HospitalID) bool {
		return slices.ContainsFunc(members, func(m Hospital) bool { return m.ID == h })
	}
	accepted, err := attestations(a.st, keyCustody, rec.ID)
	if err != nil {
		return ev, err
	}
	dealers := 0 // members holding a share that verified: only they can deal
	for _, h := range rec.Custodians {
		if isMember(h) && slices.ContainsFunc(accepted, func(x Attestation) bool { return x.Custodian == h }) {
			dealers++
		}
	}
	if dealers < rec.Threshold {
		if err := a.st.Delete([]byte(keyReshare + string(rec.ID))); err != nil {
			return ev, err
		}
		ev.Attrs = append(ev.Attrs, Attr{Key: "state", Value: "stuck"})
		return ev, nil
	}
	to := slices.DeleteFunc(slices.Clone(rec.Custodians), func(h HospitalID) bool { return !isMember(h) || h == out })
	var candidates []HospitalID
	for _, m := range members {
		if !slices.Contains(to, m.ID) && m.ID != out && m.ID != in {
			candidates = append(candidates, m.ID)
		}
	}
	free := len(candidates)
	if in != "" && isMember(in) && !slices.Contains(to, in) && in != out {
		free++
	}
	if out != "" && len(to)+free < len(rec.Custodians) {
		// A hand-over started again (a leave) with no member left to take the place:
		// the custodian handing over stays, rather than the record losing a custodian.
		return a.startReshare(rec, "", "")
	}
	slices.SortFunc(candidates, func(x, y HospitalID) int {
		return bytes.Compare(placeKey(rec.ID, x), placeKey(rec.ID, y))
	})
	if in != "" && isMember(in) && !slices.Contains(to, in) && in != out {
		candidates = slices.Insert(candidates, 0, in)
	}
	to = append(to, candidates[:min(len(candidates), len(rec.Custodians)-len(to))]...)
	slices.Sort(to)
	if slices.Equal(to, rec.Custodians) {
		// A hand-over started again with no one to take the place, and no custodian
		// gone: nothing would change, so there is nothing to re-share.
		if err := a.st.Delete([]byte(keyReshare + string(rec.ID))); err != nil {
			return ev, err
		}
		ev.Attrs = append(ev.Attrs, Attr{Key: "state", Value: "unchanged"})
		return ev, nil
	}
	if len(to) < rec.Threshold { // no k-of-len(to) sharing: the record stays as it is
		if err := a.st.Delete([]byte(keyReshare + string(rec.ID))); err != nil {
			return ev, err
		}
		ev.Attrs = append(ev.Attrs, Attr{Key: "state", Value: "stuck"})
		return ev, nil
	}
	rs := Reshare{Record: rec.ID, Epoch: rec.Epoch + 1, From: rec.Custodians, To: to, Threshold: rec.Threshold,
		Deals: []Deal{}, Accepted: []Attestation{}, Height: a.block.Height, Out: out, In: in}
	ev.Attrs = append(ev.Attrs, Attr{Key: "state", Value: "started"})
	return ev, setValue(a.st, keyReshare+string(rec.ID), rs)
}

// placeKey orders candidate custodians for a record: the SHA-256 of both IDs.
func placeKey(rec RecordID, h HospitalID) []byte {
	sum := sha256.Sum256([]byte(string(rec) + "/" + string(h)))
	return sum[:]
}

// dealShares records an old custodian's deal in a record's re-sharing; with k deals the
// new commitments are computed.
func (a *action) dealShares(d DealShares) ([]Event, error) {
	h, err := a.requester(d.Dealer)
	if err != nil {
		return nil, err
	}
	rec, err := GetRecord(a.st, d.Record)
	if err != nil {
		return nil, err
	}
	if rec.Erased != 0 {
		return nil, reject(CodeErased, "record %s was erased at height %d", rec.ID, rec.Erased)
	}
	rs, err := GetReshare(a.st, rec.ID)
	if err != nil {
		return nil, err
	}
	if rs == nil || rs.Epoch != d.Epoch || rs.Height != d.Round || rs.Switched {
		return nil, reject(CodeInvalid, "record %s has no re-sharing to epoch %d, round %d in progress (its new set changed?)", rec.ID, d.Epoch, d.Round)
	}
	idx, ok := rec.ShareIndex(h.ID)
	switch {
	case !ok:
		return nil, reject(CodeUnauthorized, "%s holds no share of record %s to deal", h.ID, rec.ID)
	case rs.Ready():
		return nil, reject(CodeDuplicate, "the re-sharing of record %s has its %d deals", rec.ID, rs.Threshold)
	case slices.ContainsFunc(rs.Deals, func(x Deal) bool { return x.Dealer == h.ID }):
		return nil, reject(CodeDuplicate, "%s already dealt its share of record %s", h.ID, rec.ID)
	case len(d.Shares) != len(rs.To):
		return nil, reject(CodeInvalid, "a deal holds one sub-share per new custodian: %d, not %d", len(rs.To), len(d.Shares))
	}
	if accepted, err := hasAccepted(a.st, rec, h.ID); err != nil || !accepted {
		if err != nil {
			return nil, err
		}
		return nil, reject(CodeNoCustody, "%s has not accepted custody of record %s: it has no verified share to deal", h.ID, rec.ID)
	}
	for i, s := range d.Shares {
		if len(s) == 0 || len(s) > maxWrappedShare {
			return nil, reject(CodeInvalid, "sub-share %d: 1-%d bytes", i+1, maxWrappedShare)
		}
	}
	if err := checkDeal(rec, idx, d.Commitments); err != nil {
		return nil, err
	}
	shares := make([]Hex, len(d.Shares))
	for i, s := range d.Shares {
		shares[i] = Hex(s)
	}
	rs.Deals = append(rs.Deals, Deal{Dealer: h.ID, Index: idx, Commitments: d.Commitments, Shares: shares})
	ev := Event{Type: "reshare", Attrs: []Attr{{Key: "record", Value: string(rec.ID), Index: true},
		{Key: "epoch", Value: strconv.FormatUint(uint64(rs.Epoch), 10)}, {Key: "dealer", Value: string(h.ID)}}}
	if len(rs.Deals) == rs.Threshold {
		c, err := newCommitments(rec, rs.Deals)
		if err != nil {
			return nil, err
		}
		rs.Commitments = c
		ev.Attrs = append(ev.Attrs, Attr{Key: "state", Value: "dealt"})
	}
	return []Event{ev}, setValue(a.st, keyReshare+string(rec.ID), rs)
}

// checkDeal checks a deal's commitments: well formed, for the record's threshold, and
// committing to the dealer's share of the record (its constant term is the share's
// public value under the record's commitments).
func checkDeal(rec *Record, dealer crypto.ShareIndex, commitments []byte) error {
	old, err := crypto.ParseCommitments(rec.Commitments)
	if err != nil {
		return err // the record's commitments were checked at registration
	}
	c, err := crypto.ParseCommitments(commitments)
	if err != nil {
		return reject(CodeInvalid, "deal commitments: %v", err)
	}
	if c.Threshold() != rec.Threshold {
		return reject(CodeInvalid, "deal commitments are for a threshold of %d, the record's is %d", c.Threshold(), rec.Threshold)
	}
	if err := crypto.VerifyDeal(old, dealer, c); err != nil {
		return reject(CodeInvalid, "the deal does not commit to the dealer's share of record %s", rec.ID)
	}
	return nil
}

// newCommitments computes the new sharing's commitments from the deals, which
// crypto.ReshareCommitments checks again against the record's commitments.
func newCommitments(rec *Record, deals []Deal) (Hex, error) {
	old, err := crypto.ParseCommitments(rec.Commitments)
	if err != nil {
		return nil, err
	}
	dealers := make([]crypto.ShareIndex, len(deals))
	cs := make([]crypto.Commitments, len(deals))
	for i, d := range deals {
		c, err := crypto.ParseCommitments(d.Commitments)
		if err != nil {
			return nil, err // checked when the deal was recorded
		}
		dealers[i], cs[i] = d.Index, c
	}
	c, err := crypto.ReshareCommitments(old, dealers, cs)
	if err != nil {
		return nil, err
	}
	return c.Bytes(), nil
}

// acceptReshared records a new custodian's acceptance of a re-sharing; with k the
// record switches to the new sharing: its custodians, commitments and epoch, and the
// custody acceptances of the new sharing replace the old ones.
func (a *action) acceptReshared(h *Hospital, rec *Record, rs *Reshare) ([]Event, error) {
	if _, ok := rs.ShareIndexIn(h.ID); !ok {
		return nil, reject(CodeUnauthorized, "%s is not a custodian of record %s's re-sharing", h.ID, rec.ID)
	}
	if slices.ContainsFunc(rs.Accepted, func(x Attestation) bool { return x.Custodian == h.ID }) {
		return nil, reject(CodeDuplicate, "%s accepted custody of record %s's re-sharing already", h.ID, rec.ID)
	}
	rs.Accepted = append(rs.Accepted, Attestation{Custodian: h.ID, Height: a.block.Height})
	slices.SortFunc(rs.Accepted, func(x, y Attestation) int { return cmp.Compare(x.Custodian, y.Custodian) })
	ev := Event{Type: "custody", Attrs: []Attr{{Key: "record", Value: string(rec.ID), Index: true},
		{Key: "custodian", Value: string(h.ID)}, {Key: "epoch", Value: strconv.FormatUint(uint64(rs.Epoch), 10)},
		{Key: "accepted", Value: strconv.Itoa(len(rs.Accepted))}}}
	if len(rs.Accepted) < rs.Threshold {
		return []Event{ev}, setValue(a.st, keyReshare+string(rec.ID), rs)
	}
	old, err := attestations(a.st, keyCustody, rec.ID)
	if err != nil {
		return nil, err
	}
	for _, o := range old {
		if err := a.st.Delete([]byte(keyCustody + string(rec.ID) + "/" + string(o.Custodian))); err != nil {
			return nil, err
		}
	}
	for _, n := range rs.Accepted {
		if err := setValue(a.st, keyCustody+string(rec.ID)+"/"+string(n.Custodian), n); err != nil {
			return nil, err
		}
	}
	if err := indexCustodians(a.st, rec.ID, rec.Custodians, rs.To); err != nil {
		return nil, err
	}
	rec.Custodians, rec.Commitments, rec.Epoch = rs.To, rs.Commitments, rs.Epoch
	if err := setValue(a.st, keyRecord+string(rec.ID), rec); err != nil {
		return nil, err
	}
	// The access log says who holds the record's key from now on, and why: one entry for
	// each custodian gone, the one that handed its custody over or one that left (a leave
	// during a hand-over makes two; From is sorted).
	for _, gone := range rs.From {
		if slices.Contains(rs.To, gone) {
			continue
		}
		cause := "leave"
		if gone == rs.Out {
			cause = "hand-over"
		}
		if err := a.audit(AuditEvent{Kind: AuditCustodyChanged, Patient: rec.Patient, Record: rec.ID,
			Hospital: gone, Custodians: rs.To, Reason: cause}); err != nil {
			return nil, err
		}
	}
	ev.Attrs = append(ev.Attrs, Attr{Key: "reshared", Value: "true"}, Attr{Key: "available", Value: "true"})
	rs.Switched = true
	more, err := a.settleReshare(rec, rs)
	return append([]Event{ev}, more...), err
}

// settleReshare keeps a switched re-sharing until every new custodian still a member
// has accepted custody of the new sharing, then deletes it, and starts the next one
// if a custodian left meanwhile (Restart).
func (a *action) settleReshare(rec *Record, rs *Reshare) ([]Event, error) {
	accepted, err := attestations(a.st, keyCustody, rec.ID)
	if err != nil {
		return nil, err
	}
	for _, c := range rec.Custodians {
		if slices.ContainsFunc(accepted, func(x Attestation) bool { return x.Custodian == c }) {
			continue
		}
		member, err := getValue(a.st, keyHospital+string(c), &Hospital{})
		if err != nil {
			return nil, err
		}
		if member { // it will take its share when it returns
			return nil, setValue(a.st, keyReshare+string(rec.ID), rs)
		}
	}
	if err := a.st.Delete([]byte(keyReshare + string(rec.ID))); err != nil || !rs.Restart {
		return nil, err
	}
	ev, err := a.startReshare(rec, "", "")
	return []Event{ev}, err
}

// HeldRecords lists the threshold records h is a custodian of (the cr/ index), in
// record order.
func HeldRecords(r Reader, h HospitalID) ([]RecordID, error) {
	prefix := keyCustRecord + string(h) + "/"
	ids := []RecordID{}
	err := scan(r, prefix, func(k string, _ []byte) (bool, error) {
		ids = append(ids, RecordID(k[len(prefix):]))
		return true, nil
	})
	return ids, err
}

// indexCustodians keeps the cr/ index of threshold record id: the former custodians
// out, the current ones in. Whole-key records are not indexed: they have no share to
// deal.
func indexCustodians(st Store, id RecordID, former, current []HospitalID) error {
	for _, h := range former {
		if err := st.Delete([]byte(keyCustRecord + string(h) + "/" + string(id))); err != nil {
			return err
		}
	}
	for _, h := range current {
		if err := st.Set([]byte(keyCustRecord+string(h)+"/"+string(id)), []byte{}); err != nil {
			return err
		}
	}
	return nil
}
