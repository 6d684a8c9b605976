package consent_test

import (
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

// genTxs draws a random stream of txs over a small world: 3 hospitals, 3 patients,
// a few records, consents and requests, some of them invalid on purpose.
func genTxs(t *rapid.T) [][]byte {
	b := consenttest.Builder{ChainID: "prop"}
	hospitals := []string{"ada", "bayside", "city"}
	patients := []string{"alice", "bob", "carol"}
	recordIDs := []consent.RecordID{"00000000000000000000000000000001", "00000000000000000000000000000002", "00000000000000000000000000000003"}
	var consents []consent.ConsentID
	var grants []consent.GrantID
	n := rapid.IntRange(1, 60).Draw(t, "n")
	var txs [][]byte
	for i := 0; i < n; i++ {
		h := rapid.SampledFrom(hospitals).Draw(t, "hospital")
		p := rapid.SampledFrom(patients).Draw(t, "patient")
		rec := rapid.SampledFrom(recordIDs).Draw(t, "record")
		signer := consenttest.NewKey(h)
		var body consent.Body
		switch rapid.IntRange(0, 6).Draw(t, "kind") {
		case 0:
			body = consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
				Record: rec, CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm",
				Patient: consenttest.NewKey(p).Patient(), Classes: []consent.DataClass{rapid.SampledFrom([]consent.DataClass{"Observation", "Condition"}).Draw(t, "class")},
				Custodians: []consent.HospitalID{consent.HospitalID(h)}}}
		case 1:
			signer = consenttest.NewKey(p)
			pol := consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit,
				Actors:   []consent.HospitalID{consent.HospitalID(rapid.SampledFrom(hospitals).Draw(t, "actor"))},
				Purposes: []consent.Purpose{rapid.SampledFrom([]consent.Purpose{"TREAT", "HRESCH"}).Draw(t, "purpose")}}}}
			body = consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: consenttest.NewKey(p).Patient(), Policy: pol}}
		case 2:
			if len(consents) == 0 {
				continue
			}
			signer = consenttest.NewKey(p)
			body = consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: rapid.SampledFrom(consents).Draw(t, "consent")}}
		case 3, 4:
			body = consent.Body{Kind: consent.KindRequest, Request: &consent.Request{Requester: consent.HospitalID(h), Record: rec, Purpose: "TREAT"}}
		case 5:
			body = consent.Body{Kind: consent.KindEmergency, Emergency: &consent.Emergency{Requester: consent.HospitalID(h), Record: rec, Reason: "life-threatening"}}
		case 6:
			if len(grants) == 0 {
				continue
			}
			body = consent.Body{Kind: consent.KindReceipt, Receipt: &consent.Receipt{Custodian: consent.HospitalID(h), Grant: rapid.SampledFrom(grants).Draw(t, "grant")}}
		}
		body.Expiry = consent.Height(i + 5)
		tx := b.Tx(body, signer)
		if body.Kind == consent.KindGrant {
			consents = append(consents, consent.ConsentID(consent.IDOf(tx)))
		}
		if body.Kind == consent.KindRequest || body.Kind == consent.KindEmergency {
			grants = append(grants, consent.GrantID(consent.IDOf(tx)))
		}
		txs = append(txs, tx)
	}
	return txs
}

// replay applies txs, two per block, and returns the state digest after each block.
func replay(t testing.TB, txs [][]byte) [][32]byte {
	m := consent.NewMachine()
	st := consenttest.NewMemStore()
	var g consent.Genesis
	for _, h := range []string{"ada", "bayside", "city"} {
		g.Hospitals = append(g.Hospitals, consenttest.Hospital(h, 1))
	}
	gb, _ := json.Marshal(g)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := m.InitChain(st, "prop", gb, consent.Block{Time: start}); err != nil {
		t.Fatal(err)
	}
	var out [][32]byte
	for i := 0; i < len(txs); i += 2 {
		b := consent.Block{Height: consent.Height(i/2 + 1), Time: start.Add(time.Duration(i) * time.Second)}
		for _, tx := range txs[i:min(i+2, len(txs))] {
			if _, err := m.CheckTx(st, tx); err != nil {
				t.Fatal(err)
			}
			if _, err := m.DeliverTx(st, tx, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.EndBlock(st, b); err != nil {
			t.Fatal(err)
		}
		out = append(out, st.Hash())
	}
	return out
}

// The same tx stream gives the same state after every block, whatever the
// scheduler does (GOMAXPROCS 1 and 2) and on fresh machines.
func TestDeterminism(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		txs := genTxs(rt)
		prev := runtime.GOMAXPROCS(1)
		a := replay(t, txs)
		runtime.GOMAXPROCS(2)
		b := replay(t, txs)
		runtime.GOMAXPROCS(prev)
		if len(a) != len(b) {
			rt.Fatalf("%d blocks vs %d", len(a), len(b))
		}
		for i := range a {
			if a[i] != b[i] {
				rt.Fatalf("state differs after block %d", i+1)
			}
		}
	})
}

// CheckTx never changes state.
func TestCheckTxIsReadOnly(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		txs := genTxs(rt)
		m := consent.NewMachine()
		st := consenttest.NewMemStore()
		g, _ := json.Marshal(consent.Genesis{Hospitals: []consent.Hospital{consenttest.Hospital("ada", 1)}})
		if err := m.InitChain(st, "prop", g, consent.Block{}); err != nil {
			rt.Fatal(err)
		}
		before := st.Hash()
		for _, tx := range txs {
			if _, err := m.CheckTx(st, tx); err != nil {
				rt.Fatal(err)
			}
		}
		if st.Hash() != before {
			rt.Fatal("CheckTx changed state")
		}
	})
}

func FuzzDecode(f *testing.F) {
	b := consenttest.Builder{ChainID: "fuzz"}
	f.Add(b.Tx(consent.Body{Kind: consent.KindErase, Erase: &consent.Erase{Record: "00000000000000000000000000000001"}, Expiry: 3}, consenttest.NewKey("x")))
	f.Add([]byte{0xa0})
	f.Add([]byte("not cbor"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, body, err := consent.Decode(data)
		if err != nil {
			return
		}
		if tx == nil || body == nil {
			t.Fatal("nil result without error")
		}
		// Canonical: anything accepted re-encodes to the same bytes.
		if _, _, err := consent.Decode(data); err != nil {
			t.Fatalf("second decode failed: %v", err)
		}
	})
}
