package node_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/nodetest"
)

// startCustody starts four hospitals whose records are in 2-of-3 threshold custody;
// while lie is set, bayside alters every share it releases.
func startCustody(t *testing.T, lie *atomic.Bool) *nodetest.Consortium {
	t.Helper()
	return nodetest.StartTestnet(t, node.TestnetConfig{Hospitals: 4, Custodians: 3, Threshold: 2}, func(i int, c *node.Config) {
		if i == 1 {
			c.ShareHook = func(b []byte) {
				if lie.Load() {
					b[2] ^= 0x01 // the lowest byte of the share's scalar: a wrong share, not a malformed one
				}
			}
		}
	})
}

// ingestForDunmore ingests the sample at ada for a new patient who permits dunmore.
func ingestForDunmore(t *testing.T, net *nodetest.Consortium) (*consent.Record, *crypto.SigningKey) {
	t.Helper()
	patient, pid := nodetest.NewPatient(t)
	rec, err := net.Nodes[0].Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	nodetest.AsPatient(t, net.Nodes[0], patient, nodetest.Permit(pid, "dunmore"))
	return rec, patient
}

// TestThresholdCustody: a record ingested at ada is held 2 of 3 by ada, bayside and
// city, ada keeping only its share. With the ingesting hospital down, reads, emergency
// access and key release still work from the other two; with a second custodian cut
// off, a read fails with a 503 naming the missing custody.
func TestThresholdCustody(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	var lie atomic.Bool
	net := startCustody(t, &lie)
	ada, bayside, city, dunmore := net.Nodes[0], net.Nodes[1], net.Nodes[2], net.Nodes[3]
	rec, _ := ingestForDunmore(t, net)
	want := []consent.HospitalID{"ada", "bayside", "city"}
	if !slices.Equal(rec.Custodians, want) || rec.Threshold != 2 {
		t.Fatalf("custody: %v of %v, want 2 of %v", rec.Threshold, rec.Custodians, want)
	}
	// Ingest returns once 2 custodians have accepted; the third's offer goes on in the
	// background, and dunmore sees its acceptance soon after.
	waitCustody(t, dunmore, rec.ID, func(s *consent.CustodyStatus) bool { return s.Available && len(s.Accepted) == 3 })
	id, _ := crypto.ParseRecordID(string(rec.ID))
	if _, err := os.Stat(node.CustodyKeyPath(ada.Home(), id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the ingesting hospital kept the whole key (%v)", err)
	}
	root, _ := cid.Decode(rec.CID)
	for _, c := range []*node.Node{ada, bayside, city} {
		if _, err := os.Stat(node.ShareKeyPath(c.Home(), id)); err != nil {
			t.Fatalf("%s holds no share: %v", c.ID(), err)
		}
		if pinned, err := c.Store().IsPinned(nodetest.Ctx(t), root); err != nil || !pinned {
			t.Fatalf("%s has not pinned the ciphertext (%v)", c.ID(), err)
		}
	}
	waitNoPending(t, ada)

	net.StopNode(0) // the ingesting hospital, with its share and its copy of the ciphertext
	acc, err := dunmore.Read(nodetest.Ctx(t), rec.ID, "TREAT")
	if err != nil {
		t.Fatalf("read with the ingesting custodian down: %v", err)
	}
	if !bytes.Equal(acc.Bundle, nodetest.Sample(t)) {
		t.Fatal("the record read is not the one ingested")
	}
	if _, err := dunmore.Emergency(nodetest.Ctx(t), rec.ID, consent.EmergencyReasons()[0]); err != nil {
		t.Fatalf("emergency access with a custodian down: %v", err)
	}
	if _, err := dunmore.Fetch(nodetest.Ctx(t), acc.Decision.ID); err != nil {
		t.Fatalf("key release for a grant with a custodian down: %v", err)
	}

	if err := city.Host().Close(); err != nil { // city is cut off: only bayside's share is reachable
		t.Fatal(err)
	}
	_, err = dunmore.Read(nodetest.Ctx(t), rec.ID, "TREAT")
	var unavail *api.Unavailable
	if !errors.As(err, &unavail) {
		t.Fatalf("read below the threshold: %v, want a 503 (*api.Unavailable)", err)
	}
	t.Logf("503: %s", unavail.Detail)
	for _, s := range []string{"needs 2 of its 3 custodians", "valid shares from: bayside", "ada", "city"} {
		if !strings.Contains(unavail.Detail, s) {
			t.Errorf("the 503 says %q; want it to name %q", unavail.Detail, s)
		}
	}
}

// TestLyingCustodian: bayside releases altered shares. A read still succeeds from ada
// and city and bayside is named in the log. A read that combines two honest shares
// before bayside answers never sees the lie, so reads repeat until it is seen.
func TestLyingCustodian(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	var lie atomic.Bool
	lie.Store(true)
	net := startCustody(t, &lie)
	dunmore := net.Nodes[3]
	rec, _ := ingestForDunmore(t, net)
	const named = `"msg":"custodian released a share that does not verify against the record's commitments"`
	for i := 0; i < 12 && !strings.Contains(net.Logs.String(), named); i++ {
		acc, err := dunmore.Read(nodetest.Ctx(t), rec.ID, "TREAT")
		if err != nil {
			t.Fatalf("read %d with a lying custodian: %v", i, err)
		}
		if !bytes.Equal(acc.Bundle, nodetest.Sample(t)) {
			t.Fatal("the record read is not the one ingested")
		}
	}
	var line string
	for _, l := range strings.Split(net.Logs.String(), "\n") {
		if strings.Contains(l, named) {
			line = l
			break
		}
	}
	if !strings.Contains(line, `"custodian":"bayside"`) || !strings.Contains(line, `"share":2`) {
		t.Fatalf("the liar is not named: %q", line)
	}
}

// TestThresholdRepairAndErasure: a custodian down at ingest gets its share when it is
// back (the ingesting hospital offers it again); on the patient's erase every
// custodian destroys its share, unpins the ciphertext and attests, a custodian down at
// the time attests when it is back, and the API shows who has not attested; the
// record never reads again.
func TestThresholdRepairAndErasure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	var lie atomic.Bool
	net := startCustody(t, &lie)
	ada, dunmore := net.Nodes[0], net.Nodes[3]
	net.StopNode(2) // city is down at ingest
	rec, patient := ingestForDunmore(t, net)
	waitCustody(t, dunmore, rec.ID, func(s *consent.CustodyStatus) bool { return s.Available && len(s.Accepted) == 2 })
	acc, err := dunmore.Read(nodetest.Ctx(t), rec.ID, "TREAT")
	if err != nil {
		t.Fatalf("read with 2 of 3 custodians accepted: %v", err)
	}
	net.StartNode(2)
	waitCustody(t, dunmore, rec.ID, func(s *consent.CustodyStatus) bool { return len(s.Accepted) == 3 })
	waitNoPending(t, ada)

	net.StopNode(2) // city is down when the patient erases
	nodetest.AsPatient(t, ada, patient, consent.Body{Kind: consent.KindErase, Erase: &consent.Erase{Record: rec.ID}})
	st := waitCustody(t, dunmore, rec.ID, func(s *consent.CustodyStatus) bool { return len(s.Attested) == 2 })
	if !slices.Equal(st.Unattested, []consent.HospitalID{"city"}) || st.ErasureComplete {
		t.Fatalf("erasure with city down: %+v; want only city unattested", st)
	}
	var shown consent.CustodyStatus
	getJSON(t, dunmore, "/records/"+string(rec.ID)+"/custody", &shown)
	if !slices.Equal(shown.Unattested, []consent.HospitalID{"city"}) {
		t.Fatalf("the API shows %+v; want city unattested", shown)
	}
	id, _ := crypto.ParseRecordID(string(rec.ID))
	root, _ := cid.Decode(rec.CID)
	for _, i := range []int{0, 1} {
		c := net.Nodes[i]
		if _, err := os.Stat(node.ShareKeyPath(c.Home(), id)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s kept its share of the erased record (%v)", c.ID(), err)
		}
		if pinned, _ := c.Store().IsPinned(nodetest.Ctx(t), root); pinned {
			t.Fatalf("%s still pins the erased record's ciphertext", c.ID())
		}
	}

	net.StartNode(2)
	st = waitCustody(t, dunmore, rec.ID, func(s *consent.CustodyStatus) bool { return s.ErasureComplete })
	if len(st.Unattested) != 0 || len(st.Attested) != 3 {
		t.Fatalf("erasure after city's return: %+v", st)
	}
	if _, err := os.Stat(node.ShareKeyPath(net.Nodes[2].Home(), id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("city kept its share of the erased record (%v)", err)
	}
	if _, err := dunmore.Read(nodetest.Ctx(t), rec.ID, "TREAT"); err == nil {
		t.Fatal("an erased record was read")
	}
	if _, err := dunmore.Fetch(nodetest.Ctx(t), acc.Decision.ID); err == nil {
		t.Fatal("a grant made before the erasure still released a key")
	}
}

// waitNoPending waits (15 s at most) until nd holds no pending share offers. An
// ingesting hospital drops a pending share once the custodian's answer to its offer
// (in the background after the ingest returned) or its own chain (the repair loop)
// shows the acceptance: soon after, not necessarily before another node sees it.
func waitNoPending(t *testing.T, nd *node.Node) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left, _ := os.ReadDir(node.PendingSharesDir(nd.Home()))
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: shares left pending 15 s after every custodian accepted: %d", nd.ID(), len(left))
		}
	}
}

// getJSON GETs path from nd's API with its privacy officer's token into v.
func getJSON(t *testing.T, nd *node.Node, path string, v any) {
	t.Helper()
	tokens, err := node.ReadTokens(nd.Home())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(nodetest.Ctx(t), http.MethodGet, nd.APIURL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+tokens["privacy-officer"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// waitCustody polls nd's view of a record's custody until done holds (30 s at most).
func waitCustody(t *testing.T, nd *node.Node, id consent.RecordID, done func(*consent.CustodyStatus) bool) *consent.CustodyStatus {
	t.Helper()
	// A restarted custodian catches up, then a repair round (every 5 s) offers again; an
	// offer in flight when it returned may take up to its bound (2 min) to fail before
	// the next one: the product's bound, not a guess at how fast this machine is.
	deadline := time.Now().Add(150 * time.Second)
	for {
		st, err := nd.Custody(nodetest.Ctx(t), id)
		if err == nil && done(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("custody of %s: %+v %v", id, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
