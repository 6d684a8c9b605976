package auditbench

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

// The load's shape: a consortium of 20 hospitals whose patients (one record and one
// consent each, up to 10,000 of them) are asked for by the hospitals, day in, day out.
const (
	hospitals   = 20
	maxPatients = 10_000
	minPatients = 10
	blockTxs    = 1000 // txs per block: the batch applied at a time
	txTTL       = 50   // blocks a tx stays valid
	chainID     = "medledger-auditbench"
)

// genesisTime is the chain's start; blocks follow a second apart.
var genesisTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// load builds the txs of the benchmark, a block at a time, so that every tx is
// accepted and appends exactly one access event: after setup (each patient's record
// registered by its custodian, then the patient's consent naming two hospitals for
// treatment), hospitals request records — granted when the consent names them, denied
// otherwise — custodians release keys for granted requests, hospitals break the glass,
// privacy officers review emergencies, and now and then a patient replaces their
// consent (a revocation, then a new grant).
//
// Bodies are drawn in order by one goroutine (the draw depends on what came before);
// signing, the costly part of building, is spread over every CPU. A receipt, review
// or revocation names a tx of an earlier block, whose ID is known once that block is
// signed.
type load struct {
	r         *rand.Rand
	hospitals []*consenttest.Key
	hospIDs   []consent.HospitalID
	patients  []patient
	nonce     uint64
	height    int64
	total     int // txs to build in all (at least two per patient)
	built     int // txs built so far
	setUp     int // patients whose record and consent are built
	// awaiting receipts: granted requests and emergencies, with their custodian.
	granted []pendingGrant
	// awaiting review: emergencies, with the custodian that reviews them.
	emergencies []pendingGrant
}

type patient struct {
	key       *consenttest.Key
	id        consent.PatientID
	record    consent.RecordID
	custodian int               // index of the record's custodian
	permitted [2]int            // the hospitals the consent names
	consent   consent.ConsentID // the active consent ("" until its block is signed)
	revoked   int               // how many consents the patient has revoked
}

type pendingGrant struct {
	grant     consent.GrantID
	custodian int
	patient   int // whose consent permitted it; -1 for an emergency access
	revoked   int // the patient's revocations when it was requested
}

// unsigned is a tx body with its signer, and what to do with its ID once signed.
type unsigned struct {
	body   consent.Body
	signer *consenttest.Key
	signed func(consent.TxID)
}

// patientsFor is the number of patients of a load of n txs: about 100 events each.
func patientsFor(n int) int { return max(minPatients, min(maxPatients, n/100)) }

func newLoad(total int) *load {
	l := &load{r: rand.New(rand.NewPCG(1, 2)), total: total}
	for i := range hospitals {
		l.hospIDs = append(l.hospIDs, consent.HospitalID(fmt.Sprintf("h%02d", i)))
		l.hospitals = append(l.hospitals, consenttest.NewKey(string(l.hospIDs[i])))
	}
	l.patients = make([]patient, patientsFor(total))
	for i := range l.patients {
		rid := sha256.Sum256(fmt.Appendf(nil, "record %d", i))
		l.patients[i] = patient{record: consent.RecordID(hex.EncodeToString(rid[:16])), custodian: l.r.IntN(hospitals),
			permitted: [2]int{l.r.IntN(hospitals), l.r.IntN(hospitals)}}
	}
	parallel(len(l.patients), func(i int) {
		l.patients[i].key = consenttest.NewKey(fmt.Sprintf("patient %d", i))
		l.patients[i].id = consent.PatientIDOf(l.patients[i].key.Public())
	})
	return l
}

// genesis is the chain's app_state: the hospitals.
func (l *load) genesis() ([]byte, error) {
	var g consent.Genesis
	for _, id := range l.hospIDs {
		g.Hospitals = append(g.Hospitals, consenttest.Hospital(string(id), 1)) // its operator key: consenttest.NewKey(id)
	}
	return json.Marshal(g)
}

// next returns the next block's signed txs, or nil when all are built.
func (l *load) next() [][]byte {
	if l.built >= l.total {
		return nil
	}
	l.height++
	var block []unsigned
	for len(block) < blockTxs && l.built+len(block) < l.total {
		if l.setUp < len(l.patients) {
			block = append(block, l.setupTxs(l.setUp)...)
			l.setUp++
			continue
		}
		block = append(block, l.draw(l.total-l.built-len(block))...)
	}
	l.built += len(block)
	txs := make([][]byte, len(block))
	parallel(len(block), func(i int) {
		tx, err := consent.Sign(block[i].body, block[i].signer)
		if err != nil {
			panic(err) // a well-formed body always encodes, and key.Sign cannot fail
		}
		txs[i] = tx
	})
	for i, u := range block {
		if u.signed != nil {
			u.signed(consent.IDOf(txs[i]))
		}
	}
	return txs
}

// draw returns the next tx or two (at most room).
func (l *load) draw(room int) []unsigned {
	p := l.r.IntN(len(l.patients))
	switch n := l.r.IntN(100); {
	case n < 10 && len(l.granted) > 0:
		g := take(l.r, &l.granted)
		if g.patient >= 0 && l.patients[g.patient].revoked != g.revoked {
			return nil // its consent was revoked in the block it was requested in
		}
		return []unsigned{l.tx(consent.Body{Kind: consent.KindReceipt, Receipt: &consent.Receipt{
			Custodian: l.hospIDs[g.custodian], Grant: g.grant}}, l.hospitals[g.custodian], nil)}
	case n < 14:
		h := l.r.IntN(hospitals)
		c := l.patients[p].custodian
		return []unsigned{l.tx(consent.Body{Kind: consent.KindEmergency, Emergency: &consent.Emergency{
			Requester: l.hospIDs[h], Record: l.patients[p].record, Reason: consent.EmergencyReasons()[l.r.IntN(len(consent.EmergencyReasons()))]}},
			l.hospitals[h], func(id consent.TxID) {
				l.granted = appendCapped(l.granted, pendingGrant{consent.GrantID(id), c, -1, 0})
				l.emergencies = appendCapped(l.emergencies, pendingGrant{consent.GrantID(id), c, -1, 0})
			})}
	case n < 16 && len(l.emergencies) > 0:
		g := take(l.r, &l.emergencies)
		return []unsigned{l.tx(consent.Body{Kind: consent.KindReview, Review: &consent.Review{
			Grant: g.grant, Outcome: consent.ReviewOutcomes()[l.r.IntN(len(consent.ReviewOutcomes()))]}}, l.hospitals[g.custodian], nil)}
	case n < 17 && room >= 2 && l.patients[p].consent != "":
		pt := &l.patients[p]
		revoke := l.tx(consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: pt.consent}}, pt.key, nil)
		pt.consent = "" // until the new one is signed
		pt.revoked++    // the chain refuses receipts for grants made before
		l.granted = slices.DeleteFunc(l.granted, func(g pendingGrant) bool { return g.patient == p })
		pt.permitted = [2]int{l.r.IntN(hospitals), l.r.IntN(hospitals)}
		return []unsigned{revoke, l.grant(p)}
	}
	// A request, by one of the hospitals the consent names half of the time.
	pt := l.patients[p]
	h := l.r.IntN(hospitals)
	if l.r.IntN(2) == 0 {
		h = pt.permitted[l.r.IntN(2)]
	}
	var signed func(consent.TxID)
	if h == pt.permitted[0] || h == pt.permitted[1] {
		signed = func(id consent.TxID) {
			l.granted = appendCapped(l.granted, pendingGrant{consent.GrantID(id), pt.custodian, p, pt.revoked})
		}
	}
	return []unsigned{l.tx(consent.Body{Kind: consent.KindRequest, Request: &consent.Request{
		Requester: l.hospIDs[h], Record: pt.record, Purpose: "TREAT"}}, l.hospitals[h], signed)}
}

// setupTxs returns patient p's record registration and consent.
func (l *load) setupTxs(p int) []unsigned {
	pt := l.patients[p]
	c := pt.custodian
	return []unsigned{
		l.tx(consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
			Record: pt.record, CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm", Patient: pt.id,
			Classes: []consent.DataClass{"Condition", "Observation"}, Custodians: []consent.HospitalID{l.hospIDs[c]},
		}}, l.hospitals[c], nil),
		l.grant(p),
	}
}

// grant is patient p's consent for the two hospitals it names, for treatment.
func (l *load) grant(p int) unsigned {
	pt := &l.patients[p]
	actors := []consent.HospitalID{l.hospIDs[pt.permitted[0]], l.hospIDs[pt.permitted[1]]}
	return l.tx(consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: pt.id, Policy: consent.Policy{
		Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Actors: actors, Purposes: []consent.Purpose{"TREAT"}}},
	}}}, pt.key, func(id consent.TxID) { pt.consent = consent.ConsentID(id) })
}

// tx fills in the chain ID, a nonce unique in the run and the expiry.
func (l *load) tx(body consent.Body, signer *consenttest.Key, signed func(consent.TxID)) unsigned {
	l.nonce++
	body.ChainID = chainID
	body.Nonce = binary.BigEndian.AppendUint64(make([]byte, 8), l.nonce)
	body.Expiry = consent.Height(l.height + txTTL)
	return unsigned{body: body, signer: signer, signed: signed}
}

// maxPending bounds the grants kept for receipts and reviews.
const maxPending = 10_000

func appendCapped(s []pendingGrant, g pendingGrant) []pendingGrant {
	if len(s) >= maxPending {
		s = s[1:]
	}
	return append(s, g)
}

// take removes and returns a random element of *s.
func take(r *rand.Rand, s *[]pendingGrant) pendingGrant {
	i := r.IntN(len(*s))
	g := (*s)[i]
	(*s)[i] = (*s)[len(*s)-1]
	*s = (*s)[:len(*s)-1]
	return g
}

// parallel runs fn(0..n-1) on every CPU.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}
