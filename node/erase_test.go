package node_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/nodetest"
)

// TestErasureShredsKey: when the patient erases a record, its custodian destroys its
// key (crypto-shredding) and unpins its ciphertext; no one can read it any more, even
// with a grant made before.
func TestErasureShredsKey(t *testing.T) {
	if testing.Short() {
		t.Skip("runs on a 4-hospital network")
	}
	t.Parallel()
	net := shared.Get(t)
	ada, bayside := net.Nodes[0], net.Nodes[1]
	patient, pid := nodetest.NewPatient(t)
	rec, err := ada.Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "bayside"))
	acc, err := bayside.Read(nodetest.Ctx(t), rec.ID, "TREAT")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := crypto.ParseRecordID(string(rec.ID))
	keyPath := node.CustodyKeyPath(ada.Home(), id)
	if _, err := os.Stat(keyPath); err != nil {
		t.Fatalf("the custodian holds no key before erasure: %v", err)
	}

	// Only the patient may erase.
	if _, err := bayside.SubmitTx(nodetest.Ctx(t), nodetest.Signed(t, bayside, consent.Body{Kind: consent.KindErase, Erase: &consent.Erase{Record: rec.ID}}, patient2(t))); err == nil {
		t.Fatal("someone other than the patient erased the record")
	}
	nodetest.AsPatient(t, bayside, patient, consent.Body{Kind: consent.KindErase, Erase: &consent.Erase{Record: rec.ID}})

	// The custodian destroys the key, then unpins: wait for both (bounded).
	root, _ := cid.Decode(rec.CID)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(keyPath)
		keyGone := errors.Is(err, fs.ErrNotExist)
		pinned, perr := ada.Store().IsPinned(nodetest.Ctx(t), root)
		if perr != nil {
			t.Fatalf("pin state of the erased record: %v", perr)
		}
		if keyGone && !pinned {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the erasure: key destroyed %v, ciphertext still pinned %v", keyGone, pinned)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := bayside.Read(nodetest.Ctx(t), rec.ID, "TREAT"); err == nil {
		t.Fatal("an erased record was read")
	}
	if _, err := bayside.Fetch(nodetest.Ctx(t), acc.Decision.ID); err == nil {
		t.Fatal("a grant made before the erasure still released a key")
	}
	page, err := ada.AuditEvents(nodetest.Ctx(t), consent.AuditFilter{Patient: pid, Kind: consent.AuditRecordErased})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("erasure events: %v %v", page, err)
	}
}

func patient2(t *testing.T) *crypto.SigningKey {
	k, _ := nodetest.NewPatient(t)
	return k
}
