package consent_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/crypto"
)

// reshareChain is a consent machine over a MemStore with one tx per block.
type reshareChain struct {
	t      *testing.T
	m      *consent.Machine
	st     *consenttest.MemStore
	b      consenttest.Builder
	height consent.Height
}

func newReshareChain(t *testing.T, ids []string, validators []consent.ValidatorUpdate) *reshareChain {
	t.Helper()
	var g consent.Genesis
	for _, id := range ids {
		g.Hospitals = append(g.Hospitals, consenttest.Hospital(id, 1))
	}
	gb, _ := json.Marshal(g)
	c := &reshareChain{t: t, m: consent.NewMachine(), st: consenttest.NewMemStore(), b: consenttest.Builder{ChainID: "reshare"}}
	if err := c.m.InitChain(c.st, "reshare", gb, consent.Block{Time: c.time()}); err != nil {
		t.Fatal(err)
	}
	if err := c.m.InitValidators(c.st, validators); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *reshareChain) time() time.Time {
	return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(c.height) * time.Second)
}

// do signs body as signer and applies it in a block; it returns the result (a
// rejection is a result, not a test failure).
func (c *reshareChain) do(signer string, body consent.Body) consent.Result {
	c.t.Helper()
	body.Expiry = c.height + 10
	tx := c.b.Tx(body, consenttest.NewKey(signer))
	if res, err := c.m.CheckTx(c.st, tx); err != nil || res.Code != consent.OK {
		if err != nil {
			c.t.Fatal(err)
		}
		return res
	}
	c.height++
	b := consent.Block{Height: c.height, Time: c.time()}
	res, err := c.m.DeliverTx(c.st, tx, b)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.m.EndBlock(c.st, b); err != nil {
		c.t.Fatal(err)
	}
	return res
}

func (c *reshareChain) ok(signer string, body consent.Body) consent.Result {
	c.t.Helper()
	res := c.do(signer, body)
	if res.Code != consent.OK {
		c.t.Fatalf("%s %s: %s: %s", signer, body.Kind, res.Code, res.Log)
	}
	return res
}

func (c *reshareChain) refused(signer string, body consent.Body, want consent.Code) {
	c.t.Helper()
	if res := c.do(signer, body); res.Code != want {
		c.t.Fatalf("%s %s: %s (%s), want %s", signer, body.Kind, res.Code, res.Log, want)
	}
}

func leave(h string) consent.Body {
	return consent.Body{Kind: consent.KindLeave, Leave: &consent.Leave{Hospital: consent.HospitalID(h)}}
}

func acceptBody(h string, rec consent.RecordID, commitments []byte) consent.Body {
	return consent.Body{Kind: consent.KindAcceptCustody, AcceptCustody: &consent.AcceptCustody{
		Custodian: consent.HospitalID(h), Record: rec, Commitments: commitments}}
}

// A custodian leaves by vote: it is out of the registry and the validator set, the
// record is re-shared on the chain to a new set (deals checked against the record's
// commitments, the new commitments computed by the chain), reads keep working from
// the remaining custodians throughout, and once k new custodians accept, the record
// switches to the new sharing, whose shares rebuild the same key while the leaver's
// old share no longer combines with them.
func TestLeaveReshares(t *testing.T) {
	ids := []string{"ada", "bayside", "city", "dover", "eve"}
	var vals []consent.ValidatorUpdate
	for _, id := range ids {
		vals = append(vals, consent.ValidatorUpdate{Node: consenttest.Hospital(id, 1).Node, Power: 1})
	}
	c := newReshareChain(t, ids, vals)
	dek, err := crypto.NewDEK()
	if err != nil {
		t.Fatal(err)
	}
	old, oldC, err := dek.Split(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	rec := consent.RecordID("0123456789abcdef0123456789abcdef")
	patient := consenttest.NewKey("alice")
	custodians := []consent.HospitalID{"ada", "bayside", "city"}
	c.ok("ada", consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: rec, CID: consenttest.TestCID, Patient: patient.Patient(), Classes: []consent.DataClass{"Observation"},
		Custodians: custodians, Threshold: 2, Commitments: oldC.Bytes()}})
	r, _ := consent.GetRecord(c.st, rec)
	for _, h := range custodians {
		c.ok(string(h), acceptBody(string(h), rec, r.CommitmentsHash()))
	}
	grant := c.b.Tx(consent.Body{Expiry: c.height + 10, Kind: consent.KindGrant, Grant: &consent.Grant{Patient: patient.Patient(),
		Policy: consent.Policy{Base: consent.Permit}}}, patient)
	c.height++
	if res, err := c.m.DeliverTx(c.st, grant, consent.Block{Height: c.height, Time: c.time()}); err != nil || res.Code != consent.OK {
		t.Fatalf("grant: %v %s", err, res.Log)
	}
	read := func(when string) {
		t.Helper()
		res := c.ok("dover", consent.Body{Kind: consent.KindRequest, Request: &consent.Request{Requester: "dover", Record: rec, Purpose: "TREAT"}})
		if !hasAttr(res, "decision", "granted") {
			t.Fatalf("%s: dover's read is not granted: %+v", when, res.Events)
		}
	}
	read("before the leave")
	// A threshold record city does not hold: the leave does not touch it.
	_, untouchedC, _ := dek.Split(2, 3)
	untouched := consent.RecordID("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	c.ok("ada", consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: untouched, CID: consenttest.TestCID, Patient: patient.Patient(), Classes: []consent.DataClass{"Observation"},
		Custodians: []consent.HospitalID{"ada", "bayside", "dover"}, Threshold: 2, Commitments: untouchedC.Bytes()}})
	// A second record, erased before the leave, its erasure attested by ada but not city.
	erased := consent.RecordID("fedcba9876543210fedcba9876543210")
	c.ok("ada", consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: erased, CID: consenttest.TestCID, Patient: patient.Patient(), Classes: []consent.DataClass{"Observation"},
		Custodians: []consent.HospitalID{"ada", "city"}}})
	c.ok("alice", consent.Body{Kind: consent.KindErase, Erase: &consent.Erase{Record: erased}})
	c.ok("ada", consent.Body{Kind: consent.KindAttestErasure, AttestErasure: &consent.AttestErasure{Custodian: "ada", Record: erased}})
	if st, _ := consent.Custody(c.st, erased); st.ErasureComplete || !slices.Equal(st.Unattested, []consent.HospitalID{"city"}) {
		t.Fatalf("erasure before the leave: %+v", st)
	}

	// Votes: 4 of 5 members' power is ≥ 2/3; a vote is counted once.
	res := c.ok("ada", leave("city"))
	if len(res.Validators) != 0 {
		t.Fatal("one vote changed the validator set")
	}
	c.refused("ada", leave("city"), consent.CodeDuplicate)
	c.refused("mallory", leave("city"), consent.CodeUnauthorized)
	c.ok("bayside", leave("city"))
	c.ok("city", leave("city"))
	res = c.ok("dover", leave("city"))
	if len(res.Validators) != 1 || res.Validators[0].Power != 0 || !slices.Equal(res.Validators[0].Node, consenttest.Hospital("city", 1).Node) {
		t.Fatalf("validator updates %+v, want city's node key at power 0", res.Validators)
	}
	if hs, _ := consent.Hospitals(c.st); slices.ContainsFunc(hs, func(h consent.Hospital) bool { return h.ID == "city" }) {
		t.Fatal("city is still in the registry")
	}
	c.refused("city", leave("ada"), consent.CodeUnauthorized)
	if st, _ := consent.Custody(c.st, erased); !st.ErasureComplete || len(st.Unattested) != 0 || !slices.Equal(st.Departed, []consent.HospitalID{"city"}) {
		t.Fatalf("erasure after city left: %+v, want complete among members and city departed", st)
	}
	if err := consent.CheckCustodian(c.st, r, "city"); err == nil {
		t.Fatal("the leaver may still release")
	}
	rs, err := consent.GetReshare(c.st, rec)
	if err != nil || rs == nil {
		t.Fatalf("no re-sharing started: %v", err)
	}
	if other, _ := consent.GetReshare(c.st, untouched); other != nil {
		t.Fatal("a record city did not hold is re-shared")
	}
	if rs.Epoch != 1 || !slices.Equal(rs.From, custodians) || len(rs.To) != 3 || slices.Contains(rs.To, "city") ||
		!slices.Contains(rs.To, "ada") || !slices.Contains(rs.To, "bayside") || !slices.IsSorted(rs.To) {
		t.Fatalf("re-sharing %+v: want epoch 1 from ada,bayside,city to ada,bayside and a member in city's place", rs)
	}
	read("during the re-sharing")

	// Deals: checked against the record's commitments; the leaver cannot deal.
	deal := func(dealer string, s crypto.Share, epoch uint32) consent.Body {
		subs, dc, err := crypto.Reshare(s, 2, len(rs.To))
		if err != nil {
			t.Fatal(err)
		}
		wrapped := make([][]byte, len(subs))
		for i, sub := range subs {
			wrapped[i] = sub.Bytes() // the chain cannot open them; the nodes wrap them (node tests)
		}
		subShares[dealer] = subs
		dealCs[dealer] = dc
		return consent.Body{Kind: consent.KindDealShares, DealShares: &consent.DealShares{Dealer: consent.HospitalID(dealer),
			Record: rec, Epoch: epoch, Round: rs.Height, Commitments: dc.Bytes(), Shares: wrapped}}
	}
	c.refused("city", deal("city", old[2], 1), consent.CodeUnknownHospital)
	c.refused("ada", deal("ada", old[1], 1), consent.CodeInvalid) // bayside's share, dealt as ada's
	c.refused("ada", deal("ada", old[0], 2), consent.CodeInvalid) // another epoch
	adaDeal := deal("ada", old[0], 1)
	c.ok("ada", adaDeal)
	c.refused("ada", adaDeal, consent.CodeDuplicate)
	c.ok("bayside", deal("bayside", old[1], 1))
	if rs, _ = consent.GetReshare(c.st, rec); !rs.Ready() {
		t.Fatal("two deals of a 2-of-3 record did not make the new commitments")
	}
	newC, err := crypto.ParseCommitments(rs.Commitments)
	if err != nil {
		t.Fatal(err)
	}
	newShares := make([]crypto.Share, len(rs.To))
	for j := range rs.To {
		subs := []crypto.Share{subShares["ada"][j], subShares["bayside"][j]}
		s, bad, err := crypto.CombineSubShares(crypto.ShareIndex(j+1), []crypto.ShareIndex{1, 2},
			[]crypto.Commitments{dealCs["ada"], dealCs["bayside"]}, subs)
		if err != nil || len(bad) > 0 {
			t.Fatalf("new share %d: %v %v", j+1, bad, err)
		}
		newShares[j] = s
	}

	// Acceptances of the new sharing: only by its custodians; at k the record switches.
	newcomer := string(rs.To[slices.IndexFunc(rs.To, func(h consent.HospitalID) bool { return h != "ada" && h != "bayside" })])
	outsider := "dover"
	if newcomer == "dover" {
		outsider = "eve"
	}
	c.refused(outsider, acceptBody(outsider, rec, rs.CommitmentsHash()), consent.CodeUnauthorized)
	c.ok(newcomer, acceptBody(newcomer, rec, rs.CommitmentsHash()))
	read("with one new acceptance")
	res = c.ok("ada", acceptBody("ada", rec, rs.CommitmentsHash()))
	r, _ = consent.GetRecord(c.st, rec)
	if r.Epoch != 1 || !slices.Equal(r.Custodians, rs.To) || !slices.Equal(r.Commitments, rs.Commitments) {
		t.Fatalf("record after k acceptances: epoch %d custodians %v", r.Epoch, r.Custodians)
	}
	if rs, _ := consent.GetReshare(c.st, rec); rs == nil || !rs.Switched {
		t.Fatal("the switched re-sharing was not kept for the new custodian that has not taken its share")
	}
	if page, err := consent.AuditEvents(c.st, consent.AuditFilter{Patient: patient.Patient(), Kind: consent.AuditCustodyChanged}); err != nil ||
		len(page.Events) != 1 || page.Events[0].Reason != "leave" || page.Events[0].Hospital != "city" || !slices.Equal(page.Events[0].Custodians, rs.To) {
		t.Fatalf("the access log's custody-changed entries after the switch: %+v %v", page, err)
	}
	c.refused("bayside", deal("bayside", old[1], 1), consent.CodeInvalid) // no deal after the switch
	st, _ := consent.Custody(c.st, rec)
	if !st.Available || len(st.Accepted) != 2 {
		t.Fatalf("custody after the switch: %+v", st)
	}
	c.ok("bayside", acceptBody("bayside", rec, r.CommitmentsHash())) // the third accepts the new sharing as usual
	if rs, _ := consent.GetReshare(c.st, rec); rs != nil {
		t.Fatal("the re-sharing is kept after every new custodian accepted")
	}
	c.refused("bayside", acceptBody("bayside", rec, oldCHash(oldC)), consent.CodeInvalid)
	read("after the switch")

	// The new shares rebuild the same key; the leaver's old share does not combine.
	got, _, err := crypto.Combine(newC, newShares[1:])
	if err != nil {
		t.Fatal(err)
	}
	if !sameKey(t, dek, got) {
		t.Fatal("the re-shared key is not the record's key")
	}
	if _, bad, err := crypto.Combine(newC, []crypto.Share{old[2], newShares[0]}); !errors.Is(err, crypto.ErrTooFewShares) || !slices.Contains(bad, 3) {
		t.Fatalf("the leaver's old share combined with a new one: %v %v", bad, err)
	}
}

var (
	subShares = map[string][]crypto.Share{}
	dealCs    = map[string]crypto.Commitments{}
)

func oldCHash(c crypto.Commitments) []byte {
	r := consent.Record{Commitments: c.Bytes()}
	return r.CommitmentsHash()
}

func hasAttr(res consent.Result, k, v string) bool {
	for _, e := range res.Events {
		if slices.Contains(e.Attrs, consent.Attr{Key: k, Value: v}) {
			return true
		}
	}
	return false
}

// sameKey reports whether b opens what a sealed.
func sameKey(t *testing.T, a, b *crypto.DEK) bool {
	t.Helper()
	bind := crypto.Binding{Chain: "reshare", Record: crypto.RecordID{1}}
	var ct bytes.Buffer
	w, err := a.Encrypt(&ct, bind)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("a record")); err != nil || w.Close() != nil {
		t.Fatal("seal failed")
	}
	r, err := b.Decrypt(&ct, bind)
	if err != nil {
		return false
	}
	pt, err := io.ReadAll(r)
	return err == nil && string(pt) == "a record"
}

// The last member cannot leave, nor the hospital holding all the validator power: the
// chain would have no one to run it. The refusal changes nothing.
func TestLeaveKeepsAChain(t *testing.T) {
	c := newReshareChain(t, []string{"solo"}, []consent.ValidatorUpdate{{Node: consenttest.Hospital("solo", 1).Node, Power: 1}})
	c.refused("solo", leave("solo"), consent.CodeInvalid)

	c = newReshareChain(t, []string{"ada", "bayside"}, []consent.ValidatorUpdate{{Node: consenttest.Hospital("ada", 1).Node, Power: 1}})
	c.ok("ada", leave("ada"))
	c.refused("bayside", leave("ada"), consent.CodeInvalid)
	if hs, _ := consent.Hospitals(c.st); len(hs) != 2 {
		t.Fatalf("a refused leave changed the registry: %d members", len(hs))
	}
	res := c.ok("ada", leave("bayside")) // not a validator: it leaves, the set is untouched
	res2 := c.ok("bayside", leave("bayside"))
	if len(res.Validators)+len(res2.Validators) != 0 {
		t.Fatal("a hospital outside the validator set made a validator update")
	}
	if hs, _ := consent.Hospitals(c.st); len(hs) != 1 || hs[0].ID != "ada" {
		t.Fatalf("registry after bayside left: %v", hs)
	}
}

// dealFor is dealer's deal of share s in rec's re-sharing rs, with its sub-shares in
// clear (the chain cannot open them either way); it returns them with the body.
func dealFor(t *testing.T, rs *consent.Reshare, dealer string, s crypto.Share) (consent.Body, []crypto.Share, crypto.Commitments) {
	t.Helper()
	subs, dc, err := crypto.Reshare(s, rs.Threshold, len(rs.To))
	if err != nil {
		t.Fatal(err)
	}
	wrapped := make([][]byte, len(subs))
	for i, sub := range subs {
		wrapped[i] = sub.Bytes()
	}
	return consent.Body{Kind: consent.KindDealShares, DealShares: &consent.DealShares{Dealer: consent.HospitalID(dealer),
		Record: rs.Record, Epoch: rs.Epoch, Round: rs.Height, Commitments: dc.Bytes(), Shares: wrapped}}, subs, dc
}

// voteOut has voters vote that h leave.
func (c *reshareChain) voteOut(h string, voters ...string) consent.Result {
	c.t.Helper()
	var res consent.Result
	for _, v := range voters {
		res = c.ok(v, leave(h))
	}
	return res
}

// A re-sharing whose new set loses a member starts again as another round: a deal
// made for the earlier round (its sub-shares wrapped to the earlier set) is refused.
// A custodian that leaves while a switched re-sharing waits for a new custodian that
// was down does not throw that custodian's deals away: the next re-sharing starts once
// it has taken its share, with it among the dealers.
func TestReshareRestarts(t *testing.T) {
	ids := []string{"ada", "bayside", "city", "dover", "eve", "fox", "gale"}
	c := newReshareChain(t, ids, nil)
	rec := consent.RecordID("00112233445566778899aabbccddeeff")
	old, _ := c.sharedRecord(rec)
	c.voteOut("city", "ada", "bayside", "dover", "eve", "fox")
	rs1, _ := consent.GetReshare(c.st, rec)
	x := newcomerOf(rs1, "ada", "bayside")
	staleDeal, _, _ := dealFor(t, rs1, "ada", old[0])

	voters := slices.DeleteFunc([]string{"ada", "bayside", "dover", "eve", "fox", "gale"}, func(v string) bool { return v == x })
	c.voteOut(x, voters[:4]...)
	rs2, _ := consent.GetReshare(c.st, rec)
	y := newcomerOf(rs2, "ada", "bayside")
	if rs2.Height == rs1.Height || rs2.Epoch != 1 || slices.Contains(rs2.To, consent.HospitalID(x)) {
		t.Fatalf("after %s left: re-sharing %+v, want another round of epoch 1 without it", x, rs2)
	}
	c.refused("ada", staleDeal, consent.CodeInvalid)

	var subs [2][]crypto.Share
	var dcs [2]crypto.Commitments
	for i, h := range []string{"ada", "bayside"} {
		var body consent.Body
		body, subs[i], dcs[i] = dealFor(t, rs2, h, old[i])
		c.ok(h, body)
	}
	rs2, _ = consent.GetReshare(c.st, rec)
	for _, h := range []string{"ada", "bayside"} { // y is down: the record switches without it
		c.ok(h, acceptBody(h, rec, rs2.CommitmentsHash()))
	}
	r, _ := consent.GetRecord(c.st, rec)
	if r.Epoch != 1 {
		t.Fatalf("no switch: epoch %d", r.Epoch)
	}

	// Bayside leaves while y has not taken its share: the deals stay for y.
	voters = slices.DeleteFunc([]string{"ada", "dover", "eve", "fox", "gale"}, func(v string) bool { return v == x })
	c.voteOut("bayside", voters[:4]...)
	rs, _ := consent.GetReshare(c.st, rec)
	if rs == nil || !rs.Switched || !rs.Restart || len(rs.Deals) != 2 {
		t.Fatalf("after bayside left in the switched window: %+v, want the switched re-sharing kept, to restart", rs)
	}
	// y takes its share (from the kept deals) and accepts: the next re-sharing starts,
	// with ada and y as its dealers.
	j, _ := rs.ShareIndexIn(consent.HospitalID(y))
	share, bad, err := crypto.CombineSubShares(j, []crypto.ShareIndex{1, 2}, dcs[:], []crypto.Share{subs[0][j-1], subs[1][j-1]})
	if err != nil || len(bad) > 0 {
		t.Fatal(err, bad)
	}
	newC, _ := crypto.ParseCommitments(r.Commitments)
	if crypto.VerifyShare(newC, share) != nil {
		t.Fatal("y's share from the kept deals does not verify")
	}
	c.ok(y, acceptBody(y, rec, r.CommitmentsHash()))
	rs3, _ := consent.GetReshare(c.st, rec)
	if rs3 == nil || rs3.Switched || rs3.Epoch != 2 || !slices.Contains(rs3.To, consent.HospitalID(y)) || slices.Contains(rs3.To, "bayside") {
		t.Fatalf("the next re-sharing: %+v, want epoch 2 with %s and without bayside", rs3, y)
	}
	body, _, _ := dealFor(t, rs3, y, share)
	c.ok(y, body)
}

// newcomerOf is the member of rs's new set that is not one of keep.
func newcomerOf(rs *consent.Reshare, keep ...consent.HospitalID) string {
	for _, h := range rs.To {
		if !slices.Contains(keep, h) {
			return string(h)
		}
	}
	return ""
}

// A new member may not bring a member's node or wrap key, nor a validator's node key:
// a node key names one hospital, so that one's leaving never removes another's
// validator.
func TestProposalKeysUnused(t *testing.T) {
	vals := []consent.ValidatorUpdate{{Node: consenttest.Hospital("ada", 1).Node, Power: 1},
		{Node: consenttest.NewKey("outside/node").Public(), Power: 1}}
	c := newReshareChain(t, []string{"ada", "bayside"}, vals)
	for name, mutate := range map[string]func(*consent.Hospital){
		"a member's node key":    func(h *consent.Hospital) { h.Node = consenttest.Hospital("ada", 1).Node },
		"a member's wrap key":    func(h *consent.Hospital) { h.Wrap = consenttest.Hospital("bayside", 1).Wrap },
		"a validator's node key": func(h *consent.Hospital) { h.Node = consenttest.NewKey("outside/node").Public() },
	} {
		h := consenttest.Hospital("copycat", 1)
		mutate(&h)
		if res := c.do("ada", consent.Body{Kind: consent.KindProposeHospital, ProposeHospital: &h}); res.Code != consent.CodeDuplicate {
			t.Errorf("%s: %s %s, want duplicate", name, res.Code, res.Log)
		}
	}
	h := consenttest.Hospital("fresh", 1)
	c.ok("ada", consent.Body{Kind: consent.KindProposeHospital, ProposeHospital: &h})
}

// A record erased during a re-sharing: the new custodians that had taken their shares
// are among those who must destroy them and attest the erasure; the re-sharing ends.
func TestEraseDuringReshare(t *testing.T) {
	c := newReshareChain(t, []string{"ada", "bayside", "city", "dover", "eve"}, nil)
	rec := consent.RecordID("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
	old, _ := c.sharedRecord(rec)
	c.voteOut("city", "ada", "bayside", "dover", "eve")
	rs, _ := consent.GetReshare(c.st, rec)
	for i, h := range []string{"ada", "bayside"} {
		body, _, _ := dealFor(t, rs, h, old[i])
		c.ok(h, body)
	}
	rs, _ = consent.GetReshare(c.st, rec)
	x := newcomerOf(rs, "ada", "bayside")
	c.ok(x, acceptBody(x, rec, rs.CommitmentsHash())) // one of two: no switch yet
	c.ok("alice", consent.Body{Kind: consent.KindErase, Erase: &consent.Erase{Record: rec}})
	if rs, _ := consent.GetReshare(c.st, rec); rs != nil {
		t.Fatal("the re-sharing of an erased record goes on")
	}
	st, _ := consent.Custody(c.st, rec)
	if !slices.Contains(st.Unattested, consent.HospitalID(x)) || st.ErasureComplete {
		t.Fatalf("custody after the erase: %+v, want %s (it holds a new share) among those to attest", st, x)
	}
	outsider := "dover"
	if x == "dover" {
		outsider = "eve"
	}
	attest := func(h string) consent.Body {
		return consent.Body{Kind: consent.KindAttestErasure, AttestErasure: &consent.AttestErasure{Custodian: consent.HospitalID(h), Record: rec}}
	}
	c.refused(outsider, attest(outsider), consent.CodeUnauthorized)
	for _, h := range []string{"ada", "bayside", x} {
		c.ok(h, attest(h))
	}
	if st, _ := consent.Custody(c.st, rec); !st.ErasureComplete || !slices.Equal(st.Departed, []consent.HospitalID{"city"}) {
		t.Fatalf("custody after the attestations: %+v", st)
	}
}

// sharedRecord registers rec, alice's, held 2 of 3 by ada, bayside and city, each of
// which accepts custody; it returns the shares and the record.
func (c *reshareChain) sharedRecord(rec consent.RecordID) ([]crypto.Share, *consent.Record) {
	c.t.Helper()
	dek, err := crypto.NewDEK()
	if err != nil {
		c.t.Fatal(err)
	}
	shares, comm, err := dek.Split(2, 3)
	if err != nil {
		c.t.Fatal(err)
	}
	c.ok("ada", consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: rec, CID: consenttest.TestCID, Patient: consenttest.NewKey("alice").Patient(), Classes: []consent.DataClass{"Observation"},
		Custodians: []consent.HospitalID{"ada", "bayside", "city"}, Threshold: 2, Commitments: comm.Bytes()}})
	r, err := consent.GetRecord(c.st, rec)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, h := range []string{"ada", "bayside", "city"} {
		c.ok(h, acceptBody(h, rec, r.CommitmentsHash()))
	}
	return shares, r
}

// A validator that leaves is still admitted as a peer for ValidatorGrace heights (its
// votes count until CometBFT applies the update), then no longer; members always are.
func TestLeaverAdmittedForAGrace(t *testing.T) {
	ids := []string{"ada", "bayside", "city"}
	var vals []consent.ValidatorUpdate
	for _, id := range ids {
		vals = append(vals, consent.ValidatorUpdate{Node: consenttest.Hospital(id, 1).Node, Power: 1})
	}
	c := newReshareChain(t, ids, vals)
	admitted := func(id string) bool {
		t.Helper()
		keys, err := consent.AdmittedNodeKeys(c.st, int64(c.height))
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return bytes.Equal(k, consenttest.Hospital(id, 1).Node) })
	}
	if !admitted("city") || !admitted("ada") {
		t.Fatal("members not admitted")
	}
	if keys, _ := consent.ValidatorKeys(c.st); len(keys) != 3 {
		t.Fatalf("%d validators, want 3", len(keys))
	}
	c.voteOut("city", "ada", "bayside")
	if keys, _ := consent.ValidatorKeys(c.st); len(keys) != 2 || slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool {
		return bytes.Equal(k, consenttest.Hospital("city", 1).Node)
	}) {
		t.Fatalf("validators after city left: %d, want 2 without city", len(keys))
	}
	for i := range consent.ValidatorGrace - 1 {
		if !admitted("city") {
			t.Fatalf("city refused %d heights after it left the validator set", i)
		}
		c.ok("alice", grantAll("alice")) // any tx makes a block
	}
	if !admitted("city") {
		t.Fatal("city refused before the grace ended")
	}
	c.ok("alice", grantAll("alice"))
	if admitted("city") {
		t.Fatalf("city still admitted %d heights after it left", consent.ValidatorGrace)
	}
	if !admitted("ada") || !admitted("bayside") {
		t.Fatal("members refused")
	}
}

// grantAll is patient's consent to every access.
func grantAll(patient string) consent.Body {
	return consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: consenttest.NewKey(patient).Patient(),
		Policy: consent.Policy{Base: consent.Permit}}}
}

// The ID of a hospital that left is retired: the access log names it, so a newcomer
// proposed under it (with keys of its own) is refused, saying when its holder left.
func TestLeftIDRetired(t *testing.T) {
	c := newReshareChain(t, []string{"ada", "bayside", "city"}, nil)
	c.voteOut("city", "ada", "bayside")
	h := consenttest.Hospital("city", 1)
	h.Operator, h.Node, h.Wrap = consenttest.NewKey("city2/op").Public(), consenttest.NewKey("city2/node").Public(), consenttest.Hospital("city2", 1).Wrap
	res := c.do("ada", consent.Body{Kind: consent.KindProposeHospital, ProposeHospital: &h})
	if res.Code != consent.CodeDuplicate || !strings.Contains(res.Log, "belonged to a hospital that left at height") {
		t.Fatalf("a newcomer under a left hospital's ID: %s %s, want duplicate", res.Code, res.Log)
	}
	h = consenttest.Hospital("city2", 1)
	c.ok("ada", consent.Body{Kind: consent.KindProposeHospital, ProposeHospital: &h})
}
