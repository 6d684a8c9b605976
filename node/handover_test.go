package node_test

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/nodetest"
)

// TestHandOverReshares: four hospitals, a record held 2 of 3 by ada, bayside and city.
// City hands its custody over to dunmore and is stopped at once: ada and bayside deal,
// dunmore takes its share and pins the ciphertext, and the record switches to ada,
// bayside and dunmore (reads work before, during and after, with city down). City's
// old share does not combine with the new ones, and when city starts again it finds
// that it no longer holds the record: it destroys its share and unpins the ciphertext.
func TestHandOverReshares(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	net := nodetest.StartTestnet(t, node.TestnetConfig{Hospitals: 4, Custodians: 3, Threshold: 2}, nil)
	ada, bayside, city, dunmore := net.Nodes[0], net.Nodes[1], net.Nodes[2], net.Nodes[3]
	patient, pid := nodetest.NewPatient(t)
	rec, err := ada.IngestCustody(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)),
		api.Custody{Custodians: []consent.HospitalID{"ada", "bayside", "city"}, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "dunmore"))
	waitCustody(t, dunmore, rec.ID, func(s *consent.CustodyStatus) bool { return len(s.Accepted) == 3 })
	read := func(when string) {
		t.Helper()
		acc, err := dunmore.Read(nodetest.Ctx(t), rec.ID, "TREAT")
		if err != nil || !bytes.Equal(acc.Bundle, nodetest.Sample(t)) {
			t.Fatalf("read %s: %v", when, err)
		}
	}
	read("before the hand-over")
	before := *rec
	id, _ := crypto.ParseRecordID(string(rec.ID))
	cityOld := openShare(t, city, id, 0, 3)

	if _, err := bayside.HandOver(nodetest.Ctx(t), rec.ID, "bayside"); err == nil {
		t.Fatal("a hand-over to itself was accepted")
	}
	if _, err := dunmore.HandOver(nodetest.Ctx(t), rec.ID, ""); err == nil {
		t.Fatal("a hospital that is not a custodian handed custody over")
	}
	if _, err := city.HandOver(nodetest.Ctx(t), rec.ID, "dunmore"); err != nil {
		t.Fatalf("city hands its custody over to dunmore: %v", err)
	}
	net.StopNode(2)
	read("during the re-sharing, city down")

	st := waitCustody(t, dunmore, rec.ID, func(s *consent.CustodyStatus) bool { return s.Epoch == 1 && s.Resharing == nil })
	if want := []consent.HospitalID{"ada", "bayside", "dunmore"}; !slices.Equal(st.Custodians, want) || !st.Available || len(st.Accepted) != 3 {
		t.Fatalf("custody after the hand-over: %+v, want %v, each accepted", st, want)
	}
	root, _ := cid.Decode(rec.CID)
	if pinned, err := dunmore.Store().IsPinned(nodetest.Ctx(t), root); err != nil || !pinned {
		t.Fatalf("dunmore has not pinned the ciphertext (%v)", err)
	}
	read("after the switch, city down")
	page, err := dunmore.AuditEvents(nodetest.Ctx(t), consent.AuditFilter{Patient: pid, Kind: consent.AuditCustodyChanged})
	if err != nil || len(page.Events) != 1 || page.Events[0].Hospital != "city" || page.Events[0].Reason != "hand-over" ||
		!slices.Equal(page.Events[0].Custodians, st.Custodians) {
		t.Fatalf("the access log's custody change: %+v %v, want one hand-over by city to %v", page, err, st.Custodians)
	}

	rec, err = dunmore.Record(nodetest.Ctx(t), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	newC, err := crypto.ParseCommitments(rec.Commitments)
	if err != nil {
		t.Fatal(err)
	}
	adaNew, dunmoreNew := openShare(t, ada, id, 1, 1), openShare(t, dunmore, id, 1, 3)
	if _, _, err := crypto.Combine(newC, []crypto.Share{adaNew, dunmoreNew}); err != nil {
		t.Fatalf("ada's and dunmore's new shares do not rebuild the key: %v", err)
	}
	if _, bad, err := crypto.Combine(newC, []crypto.Share{cityOld, adaNew}); !errors.Is(err, crypto.ErrTooFewShares) || !slices.Equal(bad, []crypto.ShareIndex{3}) {
		t.Fatalf("city's old share with ada's new one: invalid %v, %v; want share 3 refused", bad, err)
	}

	// City was down through the whole re-sharing: it still holds its share and the pin.
	oldPath := node.ShareKeyPathAt(net.Homes[2], id, 0)
	if _, err := os.Stat(oldPath); err != nil {
		t.Fatalf("city's share is gone while it was down: %v", err)
	}
	net.StartNode(2)
	city = net.Nodes[2]
	waitGone(t, oldPath)
	waitFor(t, "city to unpin the ciphertext", func() bool {
		pinned, err := city.Store().IsPinned(nodetest.Ctx(t), root)
		return err == nil && !pinned
	})

	// A requester holding the record as read before the hand-over asks ada and bayside
	// (who answer with shares of the new sharing) and city, which, back and current,
	// refuses as no longer a custodian: it reads the record again and gets the key from
	// the new custodians.
	waitHealthy(t, city, time.Minute)
	acc, err := dunmore.Read(nodetest.Ctx(t), rec.ID, "TREAT")
	if err != nil {
		t.Fatal(err)
	}
	if err := dunmore.ObtainKey(nodetest.Ctx(t), acc.Decision, before); err != nil {
		t.Fatalf("key with the record as read before the hand-over, city up: %v", err)
	}

	net.StopNode(0)
	read("from bayside and dunmore, ada down")
}
