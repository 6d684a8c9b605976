package auditor_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/auditor"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
)

// TestVerifyAndTamper: on a real 4-hospital chain, every access event verifies
// against headers signed by the validators, the log only grows, and a replay from
// genesis agrees; then one event is tampered with in one node's store: that node's
// proofs and replay both catch it, while another node still verifies.
func TestVerifyAndTamper(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	net := nodetest.StartConsortium(t, 4)
	ada, bayside, city := net.Nodes[0], net.Nodes[1], net.Nodes[2]
	patient, pid := nodetest.NewPatient(t)
	rec, err := ada.Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	h1 := ada.Chain().Height()
	if _, err := bayside.Read(nodetest.Ctx(t), rec.ID, "TREAT"); err == nil {
		t.Fatal("read without consent")
	}
	nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "bayside"))
	if _, err := bayside.Read(nodetest.Ctx(t), rec.ID, "TREAT"); err != nil {
		t.Fatal(err)
	}
	if _, err := city.Emergency(nodetest.Ctx(t), rec.ID, "life-threatening"); err != nil {
		t.Fatal(err)
	}
	// registered, denied, consent, granted, released, emergency, released: the
	// custodian's receipts arrive a block or two after the reads.
	deadline := time.Now().Add(30 * time.Second)
	for head, _ := ada.LogHead(); head.Size < 7; head, _ = ada.LogHead() {
		if time.Now().After(deadline) {
			t.Fatalf("the log holds %d events, want 7", head.Size)
		}
		time.Sleep(20 * time.Millisecond)
	}
	net.WaitHeight(ada.Chain().Height() + 2) // a signed header binds that log

	gen, err := cmttypes.GenesisDocFromFile(net.Homes[0].Path(home.GenesisFile))
	if err != nil {
		t.Fatal(err)
	}
	// Events come from the node's API (a privacy officer's token), the rest from its
	// RPC: neither is trusted.
	var api *client.API
	dial := func(i int) (*client.Client, *auditor.Verifier) {
		c, err := client.Dial(nodetest.Ctx(t), net.RPC(i))
		if err != nil {
			t.Fatal(err)
		}
		v, err := auditor.NewVerifier(c, gen)
		if err != nil {
			t.Fatal(err)
		}
		tokens, err := node.ReadTokens(net.Homes[i])
		if err != nil {
			t.Fatal(err)
		}
		if api, err = client.NewAPI(net.Nodes[i].APIURL(), tokens["privacy-officer"]); err != nil {
			t.Fatal(err)
		}
		return c, v
	}
	c, v := dial(0)
	latest, err := v.LatestVerifiable(nodetest.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	log, err := v.LogAt(nodetest.Ctx(t), latest)
	if err != nil {
		t.Fatal(err)
	}
	if log.Size < 7 {
		t.Fatalf("the log holds %d events", log.Size)
	}
	kinds := map[consent.AuditKind]int{}
	for i := range log.Size {
		p, err := v.VerifyEvent(nodetest.Ctx(t), i, api)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		kinds[p.Event.Kind]++
	}
	for _, k := range []consent.AuditKind{consent.AuditRecordRegistered, consent.AuditAccessDenied, consent.AuditConsentGranted,
		consent.AuditAccessGranted, consent.AuditKeyReleased, consent.AuditEmergency} {
		if kinds[k] == 0 {
			t.Errorf("no %s event in the log: %v", k, kinds)
		}
	}
	if _, _, err := v.VerifyConsistency(nodetest.Ctx(t), h1, latest); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyEvent(nodetest.Ctx(t), log.Size+5, api); err == nil {
		t.Fatal("an event beyond the log verified")
	}

	rep, err := auditor.Replay(nodetest.Ctx(t), c, gen, auditor.ReplayConfig{To: latest, Entries: api})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Heights != latest || rep.Events != log.Size || !bytes.Equal(rep.Log.Root, log.Root) {
		t.Fatalf("replay report %+v, log %+v at %d", rep, log, latest)
	}

	// Tamper with one event in ada's store: rewrite its patient (same length).
	net.StopNode(0)
	const victim = 2
	db, err := leveldb.OpenFile(filepath.Join(net.Homes[0].Path(home.ChainDir), "data", "app.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte(fmt.Sprintf("sal/l/%016x", victim))
	leaf, err := db.Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, other := nodetest.NewPatient(t)
	forged := bytes.Replace(leaf, []byte(pid), []byte(other), 1)
	if bytes.Equal(forged, leaf) {
		t.Fatal("the victim event does not name the patient")
	}
	if err := db.Put(key, forged, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Ada serves what it committed before the stop; it need not catch up for this.
	// (It may not be able to for up to ~105 s: a peer that redialled it while it was
	// stopping can be left holding a connection CometBFT accepted but never started,
	// and refuse ada's new one as a duplicate until its ping times out.)
	net.StartNode(0)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", tail(net.Logs.String(), 4000))
		}
	})
	c, v = dial(0)
	if _, err := v.VerifyEvent(nodetest.Ctx(t), victim, api); !errors.Is(err, auditor.ErrUnverified) {
		t.Fatalf("the tampered event: %v, want it unverified", err)
	}
	// The node hashes a leaf from its stored bytes, so the proof of the victim's sibling
	// (which holds the victim's hash) fails there too; every other event verifies.
	if _, err := v.VerifyEvent(nodetest.Ctx(t), victim^1, api); !errors.Is(err, auditor.ErrUnverified) {
		t.Fatalf("the tampered event's sibling on the same node: %v, want it unverified", err)
	}
	for _, i := range []uint64{0, victim + 2} {
		if _, err := v.VerifyEvent(nodetest.Ctx(t), i, api); err != nil {
			t.Fatalf("untampered event %d on the same node: %v", i, err)
		}
	}
	_, err = auditor.Replay(nodetest.Ctx(t), c, gen, auditor.ReplayConfig{To: latest, Entries: api})
	var p *auditor.Problem
	if !errors.As(err, &p) {
		t.Fatalf("replay of the tampered node: %v, want a problem", err)
	}
	t.Logf("replay found: %v", p)

	_, v = dial(1)
	if _, err := v.VerifyEvent(nodetest.Ctx(t), victim, api); err != nil {
		t.Fatalf("an honest node's event: %v", err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
