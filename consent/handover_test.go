package consent_test

import (
	"slices"
	"testing"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
)

func handOver(custodian string, rec consent.RecordID, to string) consent.Body {
	return consent.Body{Kind: consent.KindHandOver, HandOver: &consent.HandOver{
		Custodian: consent.HospitalID(custodian), Record: rec, To: consent.HospitalID(to)}}
}

// A custodian hands its custody over: only its own key may, only to a member that is
// not a custodian, only of a threshold record not erased nor being re-shared; every
// refusal changes nothing. The record is re-shared to the other custodians and the
// named member, the custodian handing over dealing like the others and counted as
// holding its share until the switch; after it, its old share does not combine with the
// new ones, and the new ones rebuild the key. The named member's leave during the
// hand-over starts it again as a hand-over: the custodian that handed over stays out.
func TestHandOver(t *testing.T) {
	c := newReshareChain(t, []string{"ada", "bayside", "city", "dover", "eve"}, nil)
	rec := consent.RecordID("c0ffee00c0ffee00c0ffee00c0ffee00")
	old, r := c.sharedRecord(rec)
	oldC, err := crypto.ParseCommitments(r.Commitments)
	if err != nil {
		t.Fatal(err)
	}
	whole := consent.RecordID("c0ffee00c0ffee00c0ffee00c0ffee01")
	c.ok("ada", consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: whole, CID: r.CID, Patient: r.Patient, Classes: r.Classes, Custodians: []consent.HospitalID{"ada"}}})

	c.refused("ada", handOver("city", rec, "dover"), consent.CodeUnauthorized) // not city's key
	c.refused("dover", handOver("dover", rec, "eve"), consent.CodeUnauthorized)
	c.refused("city", handOver("city", rec, "city"), consent.CodeInvalid)
	c.refused("city", handOver("city", rec, "ada"), consent.CodeInvalid)
	c.refused("city", handOver("city", rec, "nobody"), consent.CodeUnknownHospital)
	c.refused("ada", handOver("ada", whole, "dover"), consent.CodeInvalid)
	c.refused("city", handOver("city", "c0ffee00c0ffee00c0ffee00c0ffee02", "dover"), consent.CodeUnknownRecord)
	if rs, _ := consent.GetReshare(c.st, rec); rs != nil {
		t.Fatalf("a refused hand-over started a re-sharing: %+v", rs)
	}

	res := c.ok("city", handOver("city", rec, "dover"))
	if !hasAttr(res, "in", "dover") || !hasAttr(res, "out", "city") {
		t.Fatalf("hand-over events %+v", res.Events)
	}
	rs, _ := consent.GetReshare(c.st, rec)
	if rs == nil || rs.Epoch != 1 || !slices.Equal(rs.To, []consent.HospitalID{"ada", "bayside", "dover"}) || rs.Out != "city" {
		t.Fatalf("re-sharing after city's hand-over: %+v", rs)
	}
	c.refused("ada", handOver("ada", rec, "eve"), consent.CodeInvalid) // one at a time
	if err := consent.CheckCustodian(c.st, r, "city"); err != nil {
		t.Fatalf("city, handing over, may not release before the switch: %v", err)
	}

	// Dover leaves meanwhile: the re-sharing starts again, city still out, eve (the
	// member left) in dover's place.
	c.voteOut("dover", "ada", "bayside", "city", "eve")
	rs, _ = consent.GetReshare(c.st, rec)
	if rs == nil || !slices.Equal(rs.To, []consent.HospitalID{"ada", "bayside", "eve"}) || rs.Out != "city" {
		t.Fatalf("after a leave during the hand-over: %+v", rs)
	}

	// City deals with ada (bayside is down): two deals of a 2-of-3 record.
	cityDeal, citySubs, cityC := dealFor(t, rs, "city", old[2])
	adaDeal, adaSubs, adaC := dealFor(t, rs, "ada", old[0])
	c.ok("city", cityDeal)
	c.ok("ada", adaDeal)
	rs, _ = consent.GetReshare(c.st, rec)
	if !rs.Ready() {
		t.Fatal("the deals of city and ada made no new commitments")
	}
	newShares := make([]crypto.Share, len(rs.To))
	for j := range rs.To {
		s, bad, err := crypto.CombineSubShares(crypto.ShareIndex(j+1), []crypto.ShareIndex{3, 1},
			[]crypto.Commitments{cityC, adaC}, []crypto.Share{citySubs[j], adaSubs[j]})
		if err != nil || len(bad) > 0 {
			t.Fatalf("new share %d: %v %v", j+1, bad, err)
		}
		newShares[j] = s
	}
	c.ok("eve", acceptBody("eve", rec, rs.CommitmentsHash()))
	c.ok("ada", acceptBody("ada", rec, rs.CommitmentsHash()))
	r, _ = consent.GetRecord(c.st, rec)
	if r.Epoch != 1 || !slices.Equal(r.Custodians, []consent.HospitalID{"ada", "bayside", "eve"}) {
		t.Fatalf("after the switch: %+v", r)
	}
	if err := consent.CheckCustodian(c.st, r, "city"); err == nil {
		t.Fatal("city may still release after the switch")
	}
	page, err := consent.AuditEvents(c.st, consent.AuditFilter{Kind: consent.AuditCustodyChanged})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("custody-changed entries in the access log: %+v %v, want one", page, err)
	}
	if e := page.Events[0]; e.Record != rec || e.Hospital != "city" || e.Reason != "hand-over" ||
		!slices.Equal(e.Custodians, []consent.HospitalID{"ada", "bayside", "eve"}) || e.Patient != r.Patient {
		t.Fatalf("custody-changed entry %+v", e)
	}
	if held, _ := consent.HeldRecords(c.st, "city"); slices.Contains(held, rec) {
		t.Fatal("the index still lists city as a custodian")
	}
	if held, _ := consent.HeldRecords(c.st, "eve"); !slices.Contains(held, rec) {
		t.Fatal("the index does not list eve as a custodian")
	}
	newC, _ := crypto.ParseCommitments(r.Commitments)
	got, _, err := crypto.Combine(newC, []crypto.Share{newShares[0], newShares[2]})
	if err != nil {
		t.Fatal(err)
	}
	if want, _, err := crypto.Combine(oldC, old[:2]); err != nil || !sameKey(t, want, got) {
		t.Fatal("the new shares do not rebuild the record's key")
	}
	if _, _, err := crypto.Combine(newC, []crypto.Share{old[2], newShares[0]}); err == nil {
		t.Fatal("city's old share combined with a new one")
	}
}

func withdraw(custodian string, rec consent.RecordID) consent.Body {
	b := handOver(custodian, rec, "")
	b.HandOver.Withdraw = true
	return b
}

// A hand-over without a named member goes to the one the chain chooses, and the event
// names it. A leave that starts it again when no member is free to take the place
// drops the hand-over, not a custodian: the record keeps three. With every member a
// custodian, there is no one to hand over to.
func TestHandOverChosenAndDropped(t *testing.T) {
	c := newReshareChain(t, []string{"ada", "bayside", "city", "dover"}, nil)
	rec := consent.RecordID("c0ffee00c0ffee00c0ffee00c0ffee10")
	c.sharedRecord(rec)
	res := c.ok("city", handOver("city", rec, ""))
	if !hasAttr(res, "in", "dover") {
		t.Fatalf("hand-over to the chain's choice: events %+v, want in=dover", res.Events)
	}
	c.voteOut("ada", "ada", "bayside", "dover")
	rs, _ := consent.GetReshare(c.st, rec)
	if rs == nil || rs.Out != "" || !slices.Equal(rs.To, []consent.HospitalID{"bayside", "city", "dover"}) {
		t.Fatalf("after ada left during city's hand-over: %+v, want the hand-over dropped and three custodians", rs)
	}

	c = newReshareChain(t, []string{"ada", "bayside", "city"}, nil)
	c.sharedRecord(rec)
	c.refused("city", handOver("city", rec, ""), consent.CodeInvalid)
	if rs, _ := consent.GetReshare(c.st, rec); rs != nil {
		t.Fatalf("a refused hand-over left a re-sharing: %+v", rs)
	}
}

// A custodian may withdraw its own hand-over until the switch: the re-sharing goes and
// the record stays as it was. No one else may, and not after the switch.
func TestHandOverWithdrawn(t *testing.T) {
	c := newReshareChain(t, []string{"ada", "bayside", "city", "dover"}, nil)
	rec := consent.RecordID("c0ffee00c0ffee00c0ffee00c0ffee20")
	old, r := c.sharedRecord(rec)
	c.refused("city", withdraw("city", rec), consent.CodeInvalid) // none in progress
	c.ok("city", handOver("city", rec, "dover"))
	c.refused("ada", withdraw("ada", rec), consent.CodeInvalid)
	bad := withdraw("city", rec)
	bad.HandOver.To = "dover"
	c.refused("city", bad, consent.CodeInvalid)
	res := c.ok("city", withdraw("city", rec))
	if !hasAttr(res, "state", "withdrawn") {
		t.Fatalf("withdrawal events %+v", res.Events)
	}
	c.unchanged(r)

	// Again, up to the switch (bayside has not taken its share): too late to withdraw.
	c.ok("city", handOver("city", rec, "dover"))
	rs, _ := consent.GetReshare(c.st, rec)
	for i, h := range []string{"ada", "bayside"} {
		body, _, _ := dealFor(t, rs, h, old[i])
		c.ok(h, body)
	}
	rs, _ = consent.GetReshare(c.st, rec)
	c.ok("dover", acceptBody("dover", rec, rs.CommitmentsHash()))
	c.ok("ada", acceptBody("ada", rec, rs.CommitmentsHash()))
	c.refused("city", withdraw("city", rec), consent.CodeInvalid)
	if now, _ := consent.GetRecord(c.st, rec); now.Epoch != 1 || slices.Contains(now.Custodians, "city") {
		t.Fatalf("after the switch: %+v", now)
	}
}

// A custodian that leaves during another's hand-over is replaced in the same re-sharing,
// and the access log names both at the switch: one entry for the custodian that handed
// over, one for the one that left.
func TestHandOverAndLeaveBothLogged(t *testing.T) {
	c := newReshareChain(t, []string{"ada", "bayside", "city", "dover", "eve"}, nil)
	rec := consent.RecordID("c0ffee00c0ffee00c0ffee00c0ffee30")
	old, _ := c.sharedRecord(rec)
	c.ok("city", handOver("city", rec, "dover"))
	c.voteOut("ada", "bayside", "city", "dover", "eve")
	rs, _ := consent.GetReshare(c.st, rec)
	if rs == nil || rs.Out != "city" || !slices.Equal(rs.To, []consent.HospitalID{"bayside", "dover", "eve"}) {
		t.Fatalf("after ada left during city's hand-over: %+v", rs)
	}
	for i, h := range []string{"bayside", "city"} {
		body, _, _ := dealFor(t, rs, h, old[i+1])
		c.ok(h, body)
	}
	rs, _ = consent.GetReshare(c.st, rec)
	c.ok("dover", acceptBody("dover", rec, rs.CommitmentsHash()))
	c.ok("eve", acceptBody("eve", rec, rs.CommitmentsHash()))
	r, _ := consent.GetRecord(c.st, rec)
	if r.Epoch != 1 || !slices.Equal(r.Custodians, rs.To) {
		t.Fatalf("after the switch: %+v", r)
	}
	page, err := consent.AuditEvents(c.st, consent.AuditFilter{Kind: consent.AuditCustodyChanged})
	if err != nil || len(page.Events) != 2 {
		t.Fatalf("custody-changed entries: %+v %v, want two", page, err)
	}
	got := map[consent.HospitalID]string{}
	for _, e := range page.Events {
		if e.Record != rec || !slices.Equal(e.Custodians, rs.To) {
			t.Fatalf("custody-changed entry %+v", e)
		}
		got[e.Hospital] = e.Reason
	}
	if got["ada"] != "leave" || got["city"] != "hand-over" {
		t.Fatalf("custody-changed causes %v, want ada: leave, city: hand-over", got)
	}
}

// A hand-over started again by a leave with no member free to take the place, and no
// custodian gone (the member it named left), is dropped: re-sharing to the same
// custodians would change nothing.
func TestHandOverDroppedWhenNothingChanges(t *testing.T) {
	c := newReshareChain(t, []string{"ada", "bayside", "city", "dover"}, nil)
	rec := consent.RecordID("c0ffee00c0ffee00c0ffee00c0ffee40")
	_, r := c.sharedRecord(rec)
	c.ok("city", handOver("city", rec, "dover"))
	res := c.voteOut("dover", "ada", "bayside", "city")
	if !hasAttr(res, "state", "unchanged") {
		t.Fatalf("events of dover's leave: %+v, want the re-sharing unchanged", res.Events)
	}
	c.unchanged(r)
	c.refused("city", handOver("city", rec, ""), consent.CodeInvalid) // every member a custodian
}

// unchanged fails unless r has no re-sharing and is as it was (epoch, custodians).
func (c *reshareChain) unchanged(r *consent.Record) {
	c.t.Helper()
	if rs, _ := consent.GetReshare(c.st, r.ID); rs != nil {
		c.t.Fatalf("a re-sharing of record %s is kept: %+v", r.ID, rs)
	}
	if now, _ := consent.GetRecord(c.st, r.ID); now.Epoch != r.Epoch || !slices.Equal(now.Custodians, r.Custodians) {
		c.t.Fatalf("the record changed: %+v, was %+v", now, r)
	}
}
