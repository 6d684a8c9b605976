package consent_test

import (
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

// A tx's nonce blocks its replay until the tx expires, and then leaves the state: the
// replay is refused as a replay up to its expiry height and as expired after it, and the
// state keeps nothing per tx once every tx has expired. The signature covers the
// expiry, so one nonce with two expiries makes two txs, both accepted.
func TestNoncesLiveUntilExpiry(t *testing.T) {
	m, st := consent.NewMachine(), consenttest.NewMemStore()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := m.InitChain(st, "nonces", consenttest.WorldGenesis(), consent.Block{Time: start}); err != nil {
		t.Fatal(err)
	}
	blk := func(h int) consent.Block {
		return consent.Block{Height: consent.Height(h), Time: start.Add(time.Duration(h) * time.Second)}
	}
	b := consenttest.Builder{ChainID: "nonces"}
	patient := consenttest.NewKey("nonce patient")
	grant := func(expiry consent.Height) []byte {
		return b.Tx(consent.Body{Kind: consent.KindGrant, Nonce: []byte("a 16-byte nonce!"), Expiry: expiry, Grant: &consent.Grant{
			Patient: patient.Patient(), Policy: consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{{
				Type: consent.Permit, Purposes: []consent.Purpose{"TREAT"}}}}}}, patient)
	}
	deliver := func(tx []byte, h int, want consent.Code) {
		t.Helper()
		res, err := m.DeliverTx(st, tx, blk(h))
		if err != nil || res.Code != want {
			t.Fatalf("height %d: code %d (%s), %v; want code %d", h, res.Code, res.Log, err, want)
		}
	}
	endBlock := func(h int) {
		t.Helper()
		if err := m.EndBlock(st, blk(h)); err != nil {
			t.Fatal(err)
		}
	}
	before := st.Len()
	a, c := grant(3), grant(5)
	deliver(a, 1, consent.OK)
	deliver(c, 1, consent.OK)
	endBlock(1)
	held := st.Len()
	for h := 2; h <= 3; h++ {
		deliver(a, h, consent.CodeReplay)
		deliver(c, h, consent.CodeReplay)
		endBlock(h)
	}
	endBlock(4)
	deliver(a, 5, consent.CodeExpired)
	deliver(c, 5, consent.CodeReplay)
	endBlock(5)
	endBlock(6)
	deliver(c, 7, consent.CodeExpired)
	if got := held - st.Len(); got != 2 {
		t.Fatalf("state shrank by %d keys once both txs expired, want 2 (their nonces); %d keys before them", got, before)
	}
}
