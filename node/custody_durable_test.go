package node_test

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
)

// In threshold custody every custodian's share offer is durable (file and directory
// synced) before the register tx is submitted: at each of the pending offers'
// directory syncs the chain has no record of the patient yet. An erased record's
// offers that were never accepted (a custodian down) are destroyed before the
// ingesting hospital attests the erasure.
func TestCustodyOffersDurableBeforeRegister(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	g := node.NewIngestGate(home.IngestConfig{})
	log := &syncLog{}
	g.SetSync(log.sync)
	net := nodetest.StartTestnet(t, node.TestnetConfig{Hospitals: 4, Custodians: 3, Threshold: 2}, func(i int, c *node.Config) {
		if i == 0 {
			c.IngestGate = g
		}
	})
	ada, bayside, dunmore := net.Nodes[0], net.Nodes[1], net.Nodes[3]
	pending := node.PendingSharesDir(ada.Home())

	patient, pid := nodetest.NewPatient(t)
	var offerSyncs atomic.Int32
	log.onDir = func() {
		log.mu.Lock()
		last := log.events[len(log.events)-1]
		log.mu.Unlock()
		if last != "dir "+pending || offerSyncs.Add(1) > 3 { // the first three: the ingest's own
			return
		}
		// a marker through another node commits no earlier than a register tx
		// already submitted
		other, opid := nodetest.NewPatient(t)
		nodetest.AsPatient(t, bayside, other, nodetest.Permit(opid, "ada"))
		if recs, err := bayside.Records(t.Context(), pid); err != nil || len(recs) != 0 {
			t.Errorf("at a share offer's directory sync the chain already has %d records of the patient (%v): registered before the offers were durable", len(recs), err)
		}
	}
	rec, err := ada.Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	log.onDir = nil
	if got := offerSyncs.Load(); got < 3 {
		t.Fatalf("%d syncs of the pending offers' directory before registration, want 3 (ada's own, bayside's, city's)", got)
	}
	waitCustody(t, dunmore, rec.ID, func(s *consent.CustodyStatus) bool { return len(s.Accepted) == 3 })

	net.StopNode(2) // city is down: its offer stays pending
	rec2, err := ada.Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(pending, string(rec2.ID)+".*.json"))
	if len(left) != 1 || !strings.HasSuffix(left[0], ".city.json") {
		t.Fatalf("pending offers with city down: %q, want city's", left)
	}
	nodetest.AsPatient(t, ada, patient, consent.Body{Kind: consent.KindErase, Erase: &consent.Erase{Record: rec2.ID}})
	waitCustody(t, ada, rec2.ID, func(s *consent.CustodyStatus) bool {
		return slices.ContainsFunc(s.Attested, func(a consent.Attestation) bool { return a.Custodian == "ada" })
	})
	if left, _ := filepath.Glob(filepath.Join(pending, string(rec2.ID)+".*.json")); len(left) != 0 {
		t.Fatalf("ada attested the erasure still holding share offers %q", left)
	}
}
