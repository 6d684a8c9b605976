package consent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

// A patient may give any number of consents (more than any list a decoder bounds):
// every grant is accepted, requests are still decided, and Consents lists them all in
// ID order.
func TestManyConsentsOfOnePatient(t *testing.T) {
	m, st := consent.NewMachine(), consenttest.NewMemStore()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := m.InitChain(st, "many", consenttest.WorldGenesis(), consent.Block{Time: start}); err != nil {
		t.Fatal(err)
	}
	b := consenttest.Builder{ChainID: "many"}
	patient, ada := consenttest.NewKey("many-consents patient"), consenttest.WorldHospitals[0]
	rec := consent.RecordID("00000000000000000000000000000001")
	var txs [][]byte
	txs = append(txs, b.Tx(consent.Body{Kind: consent.KindRegisterRecord, Expiry: 100, RegisterRecord: &consent.RegisterRecord{
		Record: rec, CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm", Patient: patient.Patient(),
		Classes: []consent.DataClass{"Observation"}, Custodians: []consent.HospitalID{consent.HospitalID(ada)}}}, consenttest.NewKey(ada)))
	const n = 1100
	for i := range n {
		purpose := consent.Purpose("HRESCH")
		if i == n-1 {
			purpose = "TREAT" // only the last consent permits the request below
		}
		txs = append(txs, b.Tx(consent.Body{Kind: consent.KindGrant, Expiry: 100, Grant: &consent.Grant{Patient: patient.Patient(),
			Policy: consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit,
				Actors: []consent.HospitalID{consent.HospitalID(ada)}, Purposes: []consent.Purpose{purpose}}}}}}, patient))
	}
	request := b.Tx(consent.Body{Kind: consent.KindRequest, Expiry: 100, Request: &consent.Request{
		Requester: consent.HospitalID(ada), Record: rec, Purpose: "TREAT"}}, consenttest.NewKey(ada))
	txs = append(txs, request)
	for i := 0; i < len(txs); i += 200 {
		blk := consent.Block{Height: consent.Height(i/200 + 1), Time: start.Add(time.Duration(i) * time.Second)}
		for _, tx := range txs[i:min(i+200, len(txs))] {
			if res, err := m.CheckTx(st, tx); err != nil || res.Code != consent.OK {
				t.Fatalf("CheckTx: %v %d %s", err, res.Code, res.Log)
			}
			if res, err := m.DeliverTx(st, tx, blk); err != nil || res.Code != consent.OK {
				t.Fatalf("DeliverTx: %v %d %s", err, res.Code, res.Log)
			}
		}
		if err := m.EndBlock(st, blk); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := consent.Consents(st, patient.Patient())
	if err != nil || len(cs) != n {
		t.Fatalf("Consents: %d, %v; want %d", len(cs), err, n)
	}
	for i := 1; i < len(cs); i++ {
		if strings.Compare(string(cs[i-1].ID), string(cs[i].ID)) >= 0 {
			t.Fatalf("consents out of ID order at %d", i)
		}
	}
	d, err := consent.GetDecision(st, consent.GrantID(consent.IDOf(request)))
	if err != nil || !d.Granted || d.Consent != consent.ConsentID(consent.IDOf(txs[n])) {
		t.Fatalf("decision %+v, %v; want granted by the last consent", d, err)
	}
}

// The cache of checked txs holds only txs CheckTx accepted (a rejected tx, which
// anyone can sign, costs the node no memory), gives each back to DeliverTx once, and
// stays within its bounds however many txs are checked.
func TestCheckedTxCache(t *testing.T) {
	m, st := consent.NewMachine(), consenttest.NewMemStore()
	if err := m.InitChain(st, "cache", consenttest.WorldGenesis(), consent.Block{}); err != nil {
		t.Fatal(err)
	}
	b := consenttest.Builder{ChainID: "cache"}
	stranger := consenttest.NewKey("stranger")
	grant := func(k *consenttest.Key, chainID string) []byte {
		return b.Tx(consent.Body{Kind: consent.KindGrant, ChainID: chainID, Expiry: 50, Grant: &consent.Grant{Patient: k.Patient(),
			Policy: consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit,
				Actors: []consent.HospitalID{"ada"}, Purposes: []consent.Purpose{"TREAT"}}}}}}, k)
	}
	for range 100 {
		// Signed, so they pass decoding and verification, but rejected.
		if res, err := m.CheckTx(st, grant(stranger, "another-chain")); err != nil || res.Code != consent.CodeChainID {
			t.Fatalf("CheckTx: %v %d", err, res.Code)
		}
	}
	if n, _ := consent.CachedTxs(m); n != 0 {
		t.Fatalf("%d rejected txs cached", n)
	}
	ok := grant(stranger, "")
	if res, err := m.CheckTx(st, ok); err != nil || res.Code != consent.OK {
		t.Fatalf("CheckTx: %v %d %s", err, res.Code, res.Log)
	}
	if n, size := consent.CachedTxs(m); n != 1 || size != len(ok) {
		t.Fatalf("cache holds %d txs, %d bytes; want 1, %d", n, size, len(ok))
	}
	if res, err := m.DeliverTx(st, ok, consent.Block{Height: 1}); err != nil || res.Code != consent.OK {
		t.Fatalf("DeliverTx: %v %d %s", err, res.Code, res.Log)
	}
	if n, size := consent.CachedTxs(m); n != 0 || size != 0 {
		t.Fatalf("after DeliverTx the cache holds %d txs, %d bytes", n, size)
	}
	for i := range 20000 {
		if res, err := m.CheckTx(st, grant(consenttest.NewKey(fmt.Sprint(i)), "")); err != nil || res.Code != consent.OK {
			t.Fatalf("CheckTx: %v %d %s", err, res.Code, res.Log)
		}
	}
	if n, _ := consent.CachedTxs(m); n > 1<<14 {
		t.Fatalf("cache holds %d txs, over its bound", n)
	}
}
