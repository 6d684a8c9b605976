package consent_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/crypto"
)

// The consortium's default custody follows its size (r = min(n, 3), k = ⌈r/2⌉);
// genesis may name its own within 1 ≤ k ≤ r ≤ 16, and a genesis outside is refused.
func TestGenesisCustody(t *testing.T) {
	cases := []struct {
		hospitals, r, k int // genesis
		wantR, wantK    int // 0: refused
	}{
		{0, 0, 0, 1, 1}, {1, 0, 0, 1, 1}, {2, 0, 0, 2, 1}, {3, 0, 0, 3, 2}, {4, 0, 0, 3, 2}, {9, 0, 0, 3, 2},
		{4, 4, 0, 4, 2}, {4, 5, 0, 5, 3}, {4, 4, 4, 4, 4}, {1, 16, 16, 16, 16}, {4, 0, 1, 3, 1},
		{4, 2, 3, 0, 0}, {4, 17, 0, 0, 0}, {4, 0, 4, 0, 0}, {4, -1, 0, 0, 0}, {4, 3, -2, 0, 0},
	}
	for _, c := range cases {
		g := consent.Genesis{Params: consent.Params{Custodians: c.r, Threshold: c.k}}
		for i := range c.hospitals {
			g.Hospitals = append(g.Hospitals, consenttest.Hospital(string(rune('a'+i))+"-hospital", 1))
		}
		b, _ := json.Marshal(g)
		m, st := consent.NewMachine(), consenttest.NewMemStore()
		err := m.InitChain(st, "custody", b, consent.Block{Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)})
		if c.wantR == 0 {
			if err == nil || !strings.Contains(err.Error(), "want 1 ≤ threshold ≤ custodians ≤ 16") {
				t.Errorf("%d hospitals, r=%d k=%d: %v, want a refusal that states the bounds", c.hospitals, c.r, c.k, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d hospitals, r=%d k=%d: %v", c.hospitals, c.r, c.k, err)
		}
		res, err := m.Query(st, "/params", nil)
		var p consent.Params
		if err != nil || json.Unmarshal(res.Value, &p) != nil || p.Custodians != c.wantR || p.Threshold != c.wantK {
			t.Errorf("%d hospitals, r=%d k=%d: params %s (%v), want r=%d k=%d", c.hospitals, c.r, c.k, res.Value, err, c.wantR, c.wantK)
		}
	}
}

// A sharing made by crypto registers as is: the commitments the chain keeps verify
// the share that Record.ShareIndex assigns to each custodian, and no other.
func TestRegisteredCommitmentsVerifyEachCustodiansShare(t *testing.T) {
	dek, err := crypto.NewDEK()
	if err != nil {
		t.Fatal(err)
	}
	shares, comm, err := dek.Split(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	hs := []consent.HospitalID{"ada", "bayside", "city"}
	var g consent.Genesis
	for _, h := range hs {
		g.Hospitals = append(g.Hospitals, consenttest.Hospital(string(h), 1))
	}
	gb, _ := json.Marshal(g)
	m, st := consent.NewMachine(), consenttest.NewMemStore()
	b := consent.Block{Height: 1, Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	if err := m.InitChain(st, "custody", gb, consent.Block{Time: b.Time}); err != nil {
		t.Fatal(err)
	}
	rec := consent.RecordID("0123456789abcdef0123456789abcdef")
	builder := consenttest.Builder{ChainID: "custody"}
	tx := builder.Tx(consent.Body{Expiry: 5, Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: rec, CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm",
		Patient: consenttest.NewKey("alice").Patient(), Classes: []consent.DataClass{"Observation"},
		Custodians: hs, Threshold: 2, Commitments: comm.Bytes()}}, consenttest.NewKey("ada"))
	if res, err := m.DeliverTx(st, tx, b); err != nil || res.Code != consent.OK {
		t.Fatalf("register: %v %s %s", err, res.Code, res.Log)
	}
	res, err := m.Query(st, "/record/"+string(rec), nil)
	var got consent.Record
	if err != nil || json.Unmarshal(res.Value, &got) != nil {
		t.Fatalf("query record: %v %s", err, res.Log)
	}
	onChain, err := crypto.ParseCommitments(got.Commitments)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		i, ok := got.ShareIndex(h)
		if !ok || crypto.VerifyShare(onChain, shares[i-1]) != nil {
			t.Errorf("%s: share index %d (ok=%v) does not verify against the chain's commitments", h, i, ok)
		}
		moved := shares[int(i)%3].Bytes() // the next custodian's share, relabelled as this one's
		moved[1] = byte(i)
		if s, err := crypto.ParseShare(moved); err != nil || crypto.VerifyShare(onChain, s) == nil {
			t.Errorf("%s: another custodian's share verifies as share %d (%v)", h, i, err)
		}
	}
	if _, ok := got.ShareIndex("dover"); ok {
		t.Error("a hospital that is not a custodian has a share index")
	}
}
