package node_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/nodetest"
)

// TestNoQuorumIsSaid: with two of four validators down, a consent submitted through
// a node is not left hanging: within seconds it is an *api.Unavailable no-progress
// (the API's 503 + Retry-After) saying the tx may still commit and where to look; the
// tx is pending on GET /tx/{hash}; once quorum returns it commits, and GET /tx/{hash}
// says so.
func TestNoQuorumIsSaid(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	hn := nodetest.StartConsortium(t, 4)
	ada := hn.Nodes[0]
	key, pid := nodetest.NewPatient(t)
	tx := nodetest.Signed(t, ada, nodetest.Permit(pid, "bayside"), key)
	sum := sha256.Sum256(tx)
	hash := hex.EncodeToString(sum[:])

	hn.StopNode(2)
	hn.StopNode(3)
	start := time.Now()
	_, err := ada.SubmitTx(nodetest.Ctx(t), tx)
	var u *api.Unavailable
	if !errors.As(err, &u) || u.Reason != "no-progress" {
		t.Fatalf("submit without quorum: %v, want a no-progress unavailable", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("the no-progress answer took %s", took)
	}
	if st := txStatus(t, ada.APIURL(), hash); st.State != "pending" {
		t.Fatalf("tx status without quorum: %+v, want pending", st)
	}
	// An ingest whose register tx may still commit keeps the record's key and
	// ciphertext, so the record is readable if it does.
	_, err = ada.Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if !errors.As(err, &u) || u.Reason != "no-progress" {
		t.Fatalf("ingest without quorum: %v, want a no-progress unavailable", err)
	}

	hn.StartNode(2)
	hn.StartNode(3)
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := txStatus(t, hn.Nodes[0].APIURL(), hash)
		if st.State == "committed" {
			if st.Code != 0 || st.Height == 0 {
				t.Fatalf("committed with %+v, want code 0 at a height", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tx status after quorum returned: %+v, want committed", st)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The register tx committed too, and its custodian still holds the key.
	var recs []consent.Record
	for recs == nil && time.Now().Before(deadline) {
		if recs, err = hn.Nodes[0].Records(nodetest.Ctx(t), pid); err != nil || len(recs) == 0 {
			recs = nil
			time.Sleep(250 * time.Millisecond)
		}
	}
	if len(recs) != 1 {
		t.Fatalf("records of the patient after quorum returned: %v", recs)
	}
	id, err := crypto.ParseRecordID(string(recs[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.CustodyDEK(hn.Nodes[0].Home(), id); err != nil {
		t.Fatalf("the registered record's key is gone: %v", err)
	}
}

func txStatus(t *testing.T, base, hash string) api.TxStatus {
	t.Helper()
	res, err := http.Get(base + "/tx/" + hash)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st api.TxStatus
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&st) != nil {
		t.Fatalf("GET /tx/%s: %s", hash, res.Status)
	}
	return st
}
