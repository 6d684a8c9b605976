package consent_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

var auditEvents = flag.Int("audit.events", 1_000_000, "access events BenchmarkAuditLog appends before measuring")

// auditLoad is a consortium of 20 hospitals and 10,000 patients (one record each, one
// consent each) whose hospitals request records: granted or denied, with key releases
// for granted requests and a few emergencies. Every tx it builds is accepted and
// appends one event.
type auditLoad struct {
	b         consenttest.Builder
	r         *rand.Rand
	hospitals []string
	patients  []*consenttest.Key
	permitted [][2]int          // per patient: the two hospitals its consent names
	custodian []int             // per patient: its record's first custodian
	granted   []consent.GrantID // recent granted requests, for receipts
	grantCust []consent.HospitalID
}

const (
	loadHospitals = 20
	loadPatients  = 10_000
	loadBlockTxs  = 200
)

func newAuditLoad() *auditLoad {
	l := &auditLoad{b: consenttest.Builder{ChainID: "bench"}, r: rand.New(rand.NewPCG(1, 2))}
	for i := range loadHospitals {
		l.hospitals = append(l.hospitals, fmt.Sprintf("h%02d", i))
	}
	for i := range loadPatients {
		l.patients = append(l.patients, consenttest.NewKey(fmt.Sprintf("patient-%d", i)))
		l.permitted = append(l.permitted, [2]int{l.r.IntN(loadHospitals), l.r.IntN(loadHospitals)})
		l.custodian = append(l.custodian, l.r.IntN(loadHospitals))
	}
	return l
}

func (l *auditLoad) genesis() []byte {
	var g consent.Genesis
	for _, h := range l.hospitals {
		g.Hospitals = append(g.Hospitals, consenttest.Hospital(h, 1))
	}
	b, _ := json.Marshal(g)
	return b
}

func loadRecord(p int) consent.RecordID { return consent.RecordID(fmt.Sprintf("%032x", p+1)) }

// setup returns the txs that register patient p's record and grant its consent.
func (l *auditLoad) setup(p int, expiry consent.Height) [][]byte {
	key := l.patients[p]
	c := l.hospitals[l.custodian[p]]
	return [][]byte{
		l.b.Tx(consent.Body{Expiry: expiry, Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
			Record: loadRecord(p), CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm", Patient: key.Patient(),
			Classes: []consent.DataClass{"Observation"}, Custodians: []consent.HospitalID{consent.HospitalID(c), "h19"},
		}}, consenttest.NewKey(c)),
		l.b.Tx(consent.Body{Expiry: expiry, Kind: consent.KindGrant, Grant: &consent.Grant{
			Patient: key.Patient(), Policy: consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit,
				Actors:   []consent.HospitalID{consent.HospitalID(l.hospitals[l.permitted[p][0]]), consent.HospitalID(l.hospitals[l.permitted[p][1]])},
				Purposes: []consent.Purpose{"TREAT"}}}}},
		}, key),
	}
}

// next returns a request (85%: a permitted hospital half the time, so about half are
// granted), a key release for a granted request (10%) or an emergency (5%).
func (l *auditLoad) next(expiry consent.Height) []byte {
	p := l.r.IntN(loadPatients)
	switch n := l.r.IntN(100); {
	case n < 10 && len(l.granted) > 0:
		i := l.r.IntN(len(l.granted))
		g, c := l.granted[i], l.grantCust[i]
		l.granted[i], l.grantCust[i] = l.granted[len(l.granted)-1], l.grantCust[len(l.grantCust)-1]
		l.granted, l.grantCust = l.granted[:len(l.granted)-1], l.grantCust[:len(l.grantCust)-1]
		return l.b.Tx(consent.Body{Expiry: expiry, Kind: consent.KindReceipt, Receipt: &consent.Receipt{Custodian: c, Grant: g}}, consenttest.NewKey(string(c)))
	case n < 15:
		h := l.hospitals[l.r.IntN(loadHospitals)]
		return l.b.Tx(consent.Body{Expiry: expiry, Kind: consent.KindEmergency, Emergency: &consent.Emergency{
			Requester: consent.HospitalID(h), Record: loadRecord(p), Reason: "life-threatening"}}, consenttest.NewKey(h))
	default:
		hi := l.r.IntN(loadHospitals)
		permitted := l.r.IntN(2) == 0
		if permitted {
			hi = l.permitted[p][l.r.IntN(2)]
		}
		h := l.hospitals[hi]
		tx := l.b.Tx(consent.Body{Expiry: expiry, Kind: consent.KindRequest, Request: &consent.Request{
			Requester: consent.HospitalID(h), Record: loadRecord(p), Purpose: "TREAT"}}, consenttest.NewKey(h))
		if slices.Contains(l.permitted[p][:], hi) && len(l.granted) < 10_000 {
			l.granted = append(l.granted, consent.GrantID(consent.IDOf(tx)))
			l.grantCust = append(l.grantCust, consent.HospitalID(l.hospitals[l.custodian[p]]))
		}
		return tx
	}
}

// auditBench is a chain state holding the load's events, built once per process.
type auditBench struct {
	m       *consent.Machine
	st      *consenttest.MemStore
	roots   []consent.LogRoot // one per 100 blocks
	height  consent.Height
	events  uint64
	patient []consent.PatientID
	setup   time.Duration
}

var (
	benchOnce  sync.Once
	benchState *auditBench
)

func buildAuditBench(b *testing.B) *auditBench {
	benchOnce.Do(func() {
		start := time.Now()
		l := newAuditLoad()
		s := &auditBench{m: consent.NewMachine(), st: consenttest.NewMemStore()}
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := s.m.InitChain(s.st, "bench", l.genesis(), consent.Block{Time: t0}); err != nil {
			b.Fatal(err)
		}
		// Txs are signed by a second goroutine while the machine applies the last block.
		blocks := make(chan [][]byte, 4)
		go func() {
			defer close(blocks)
			p, n := 0, 0
			for h := consent.Height(1); n < *auditEvents; h++ {
				var txs [][]byte
				for len(txs) < loadBlockTxs && n+len(txs) < *auditEvents {
					if p < loadPatients {
						txs = append(txs, l.setup(p, h+10)...)
						p++
					} else {
						txs = append(txs, l.next(h+10))
					}
				}
				n += len(txs)
				blocks <- txs
			}
		}()
		for txs := range blocks {
			s.height++
			blk := consent.Block{Height: s.height, Time: t0.Add(time.Duration(s.height) * time.Second)}
			for _, tx := range txs {
				res, err := s.m.DeliverTx(s.st, tx, blk)
				if err != nil {
					b.Fatal(err)
				}
				if res.Code != consent.OK {
					b.Fatalf("height %d: %s: %s", s.height, res.Code, res.Log)
				}
			}
			if err := s.m.EndBlock(s.st, blk); err != nil {
				b.Fatal(err)
			}
			if s.height%100 == 0 {
				root, err := consent.LogRootAt(s.st, s.height)
				if err != nil {
					b.Fatal(err)
				}
				s.roots = append(s.roots, root)
			}
		}
		head, err := consent.LogHead(s.st)
		if err != nil {
			b.Fatal(err)
		}
		s.events = head.Size
		s.roots = append(s.roots, head)
		for _, k := range l.patients {
			s.patient = append(s.patient, k.Patient())
		}
		s.setup = time.Since(start)
		benchState = s
	})
	if benchState == nil {
		b.Fatal("building the audit log failed")
	}
	return benchState
}

// BenchmarkAuditLog appends -audit.events access events (default 1,000,000) through
// the machine on a MemStore, in blocks of 200 txs, then measures queries and proofs
// through Machine.Query (JSON included) and reports p50/p99 latencies. Run it with
//
//	go test ./consent -run '^$' -bench AuditLog -benchtime 2000x -timeout 60m
func BenchmarkAuditLog(b *testing.B) {
	s := buildAuditBench(b)
	b.Logf("%d events in %d blocks, %d state keys; built in %s (%.0f events/s)",
		s.events, s.height, s.st.Len(), s.setup.Round(time.Second), float64(s.events)/s.setup.Seconds())
	r := rand.New(rand.NewPCG(3, 4))
	query := func(b *testing.B, path string, data []byte, v any) {
		res, err := s.m.Query(s.st, path, data)
		if err != nil || res.Code != consent.OK {
			b.Fatalf("%s: %v %s %s", path, err, res.Code, res.Log)
		}
		if err := json.Unmarshal(res.Value, v); err != nil {
			b.Fatal(err)
		}
	}
	events := func(f consent.AuditFilter) func(b *testing.B) {
		return func(b *testing.B) {
			data, _ := json.Marshal(f)
			var page consent.AuditPage
			query(b, "/audit/events", data, &page)
		}
	}
	bench := func(name string, op func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t := time.Now()
				op(b)
				lat = append(lat, time.Since(t))
			}
			reportPercentiles(b, lat)
		})
	}
	bench("PatientQuery", func(b *testing.B) {
		events(consent.AuditFilter{Patient: s.patient[r.IntN(len(s.patient))]})(b)
	})
	bench("PatientEmergencies", func(b *testing.B) {
		events(consent.AuditFilter{Patient: s.patient[r.IntN(len(s.patient))], Kind: consent.AuditEmergency})(b)
	})
	bench("HospitalDenialsLastHour", func(b *testing.B) {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(s.height) * time.Second).Unix()
		events(consent.AuditFilter{Hospital: consent.HospitalID(fmt.Sprintf("h%02d", r.IntN(loadHospitals))),
			Kind: consent.AuditAccessDenied, From: now - 3600, To: now})(b)
	})
	bench("InclusionProofAndCheck", func(b *testing.B) {
		head := s.roots[len(s.roots)-1]
		i := r.Uint64N(s.events)
		var entry consent.LogEntry
		query(b, fmt.Sprintf("/audit/event/%d", i), nil, &entry)
		var p consent.InclusionProof
		query(b, fmt.Sprintf("/audit/inclusion/%d/%d", i, head.Size), nil, &p)
		if err := consent.VerifyInclusion(entry.Leaf, i, head.Size, p.Hashes(), head.Root); err != nil {
			b.Fatal(err)
		}
	})
	bench("ConsistencyProofAndCheck", func(b *testing.B) {
		x, y := s.roots[r.IntN(len(s.roots))], s.roots[r.IntN(len(s.roots))]
		if x.Size > y.Size {
			x, y = y, x
		}
		var p consent.ConsistencyProof
		query(b, fmt.Sprintf("/audit/consistency/%d/%d", x.Size, y.Size), nil, &p)
		if err := consent.VerifyConsistency(x.Size, y.Size, x.Root, y.Root, p.Hashes()); err != nil {
			b.Fatal(err)
		}
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p int) time.Duration { return lat[min(len(lat)-1, len(lat)*p/100)] }
	b.ReportMetric(float64(pct(50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(pct(99).Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
