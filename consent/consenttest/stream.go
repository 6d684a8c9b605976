package consenttest

import (
	"encoding/json"
	"math/rand/v2"

	"github.com/medledger/medledger/consent"
)

// World is a small consortium for generated tx streams: three hospitals (ada,
// bayside, city), three patients (alice, bob, carol) and three records.
var (
	WorldHospitals = []string{"ada", "bayside", "city"}
	WorldPatients  = []string{"alice", "bob", "carol"}
	WorldRecords   = []consent.RecordID{"00000000000000000000000000000001", "00000000000000000000000000000002", "00000000000000000000000000000003"}
)

// WorldGenesis is the genesis app_state of the world.
func WorldGenesis() []byte {
	var g consent.Genesis
	for _, h := range WorldHospitals {
		g.Hospitals = append(g.Hospitals, Hospital(h, 1))
	}
	b, _ := json.Marshal(g)
	return b
}

// Stream returns n txs drawn from seed over the world: record registrations, grants,
// revocations, requests, emergencies, receipts and reviews of emergencies, some of
// them invalid (wrong signer, unknown record or grant, a second review, an unknown
// outcome, replays of state) as real traffic is. expiry is the expiry height given to
// every tx.
func Stream(seed uint64, n int, chainID string, expiry consent.Height) [][]byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := Builder{ChainID: chainID}
	var consents []consent.ConsentID
	var grants, emergencies []consent.GrantID
	var txs [][]byte
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	for len(txs) < n {
		h, p := pick(WorldHospitals), pick(WorldPatients)
		rec := WorldRecords[r.IntN(len(WorldRecords))]
		signer := NewKey(h)
		body := consent.Body{Expiry: expiry}
		switch r.IntN(8) {
		case 0:
			body.Kind, body.RegisterRecord = consent.KindRegisterRecord, &consent.RegisterRecord{
				Record: rec, CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm",
				Patient: NewKey(p).Patient(), Classes: []consent.DataClass{[]consent.DataClass{"Observation", "Condition"}[r.IntN(2)]},
				Custodians: []consent.HospitalID{consent.HospitalID(h)}}
		case 1:
			signer = NewKey(p)
			body.Kind, body.Grant = consent.KindGrant, &consent.Grant{Patient: NewKey(p).Patient(), Policy: consent.Policy{
				Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit,
					Actors:   []consent.HospitalID{consent.HospitalID(pick(WorldHospitals))},
					Purposes: []consent.Purpose{[]consent.Purpose{"TREAT", "HRESCH"}[r.IntN(2)]}}}}}
		case 2:
			if len(consents) == 0 {
				continue
			}
			signer = NewKey(p)
			body.Kind, body.Revoke = consent.KindRevoke, &consent.Revoke{Consent: consents[r.IntN(len(consents))]}
		case 3, 4:
			body.Kind, body.Request = consent.KindRequest, &consent.Request{Requester: consent.HospitalID(h), Record: rec, Purpose: "TREAT"}
		case 5:
			body.Kind, body.Emergency = consent.KindEmergency, &consent.Emergency{Requester: consent.HospitalID(h), Record: rec, Reason: "life-threatening"}
		case 6:
			if len(grants) == 0 {
				continue
			}
			body.Kind, body.Receipt = consent.KindReceipt, &consent.Receipt{Custodian: consent.HospitalID(h), Grant: grants[r.IntN(len(grants))]}
		case 7:
			if len(emergencies) == 0 {
				continue
			}
			outcome := "not-an-outcome"
			if r.IntN(8) > 0 {
				outcome = consent.ReviewOutcomes()[r.IntN(len(consent.ReviewOutcomes()))]
			}
			g := emergencies[r.IntN(len(emergencies))]
			if r.IntN(8) == 0 {
				g = grants[r.IntN(len(grants))] // perhaps not an emergency
			}
			body.Kind, body.Review = consent.KindReview, &consent.Review{Grant: g, Outcome: outcome}
		}
		tx := b.Tx(body, signer)
		switch body.Kind {
		case consent.KindGrant:
			consents = append(consents, consent.ConsentID(consent.IDOf(tx)))
		case consent.KindRequest:
			grants = append(grants, consent.GrantID(consent.IDOf(tx)))
		case consent.KindEmergency:
			grants = append(grants, consent.GrantID(consent.IDOf(tx)))
			emergencies = append(emergencies, consent.GrantID(consent.IDOf(tx)))
		}
		txs = append(txs, tx)
	}
	return txs
}
