package auditbench

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/medledger/medledger/consent"
)

// TestRun makes a small state through the app and measures it: every tx is accepted
// and appends one event (Run checks and fails otherwise), every sampled proof
// verified, and the report and its JSON carry every figure.
func TestRun(t *testing.T) {
	const events, samples = 3000, 50
	res, err := Run(t.Context(), Config{Events: events, Samples: samples})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != events || res.PatientQuery.N != samples || res.Inclusion.N != samples || res.Consistency.N != samples {
		t.Fatalf("counts: %+v", res)
	}
	if res.Verified != 2*samples {
		t.Fatalf("%d proofs verified, want %d", res.Verified, 2*samples)
	}
	total := 0
	for _, k := range consent.AuditKinds() {
		// The load erases nothing, so no custodian attests an erasure either, and no
		// custodian leaves or hands its custody over.
		if res.Kinds[k] == 0 && k != consent.AuditRecordErased && k != consent.AuditErasureAttested && k != consent.AuditCustodyChanged {
			t.Errorf("no %s event: %v", k, res.Kinds)
		}
		total += res.Kinds[k]
	}
	if total != events || res.Patients != patientsFor(events) || res.Kinds[consent.AuditRecordRegistered] != res.Patients {
		t.Fatalf("kinds %v: %d events of %d patients", res.Kinds, total, res.Patients)
	}
	if res.PageEvents <= 0 || res.Generation.EventsPerSec <= 0 || res.StoreBytes <= 0 || res.Blocks != (events+blockTxs-1)/blockTxs {
		t.Fatalf("figures: %+v", res)
	}
	var out bytes.Buffer
	if err := res.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	for _, want := range []string{"patient's newest page", "inclusion proof + check", "consistency proof", "goal ≤ 20ms", "goal ≤ 5ms", "events/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	b, _ := json.Marshal(res)
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.Inclusion.N != samples || back.Events != events {
		t.Fatalf("JSON round trip: %v %s", err, b)
	}
}

// A proof checked against a root the chain did not commit fails the measurement.
func TestProofMismatchFails(t *testing.T) {
	cfg := Config{Events: 2500}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := build(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	m := &measurer{ctx: t.Context(), app: s.app, gen: s.gen, r: rand.New(rand.NewPCG(1, 1)), patients: s.load.patients}
	if err := m.head(); err != nil {
		t.Fatal(err)
	}
	if err := m.inclusion(); err != nil {
		t.Fatal(err)
	}
	m.last.Root = bytes.Clone(m.last.Root)
	m.last.Root[0] ^= 1
	if err := m.inclusion(); !errors.Is(err, consent.ErrAuditProof) {
		t.Fatalf("inclusion against a wrong root: %v", err)
	}
	if err := m.consistency(); err != nil {
		t.Fatal(err)
	}
	roots := s.gen.roots
	last := roots[len(roots)-1]
	last.Root = bytes.Clone(last.Root)
	last.Root[0] ^= 1
	s.gen.roots = []consent.LogRoot{roots[0], last}
	if err := m.consistency(); !errors.Is(err, consent.ErrAuditProof) {
		t.Fatalf("consistency between wrong roots: %v", err)
	}
}

var benchEvents = flag.Int("audit.events", 100_000, "access events BenchmarkAuditLog puts in state before measuring")

// The benchmark's state is made once per process (the benchmark function runs more
// than once) and removed when the tests end.
var (
	benchOnce  sync.Once
	benchState *state
	benchErr   error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if benchState != nil {
		benchState.close()
	}
	os.Exit(code)
}

// BenchmarkAuditLog makes -audit.events events through the app (default 100,000),
// once, and reports the latency percentiles (µs) of max(b.N, 200) samples of each
// query, and the generation rate. For the full size:
//
//	go test ./bench/auditbench -run '^$' -bench AuditLog -benchtime 2000x -audit.events 1000000 -timeout 60m
func BenchmarkAuditLog(b *testing.B) {
	benchOnce.Do(func() {
		cfg := Config{Events: *benchEvents}
		if benchErr = cfg.Validate(); benchErr == nil {
			benchState, benchErr = build(b.Context(), cfg)
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	res, err := benchState.measure(b.Context(), max(b.N, 200), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.PatientQuery.P50.Microseconds()), "patient-p50-µs")
	b.ReportMetric(float64(res.PatientQuery.P99.Microseconds()), "patient-p99-µs")
	b.ReportMetric(float64(res.Inclusion.P50.Microseconds()), "proof-p50-µs")
	b.ReportMetric(float64(res.Inclusion.P99.Microseconds()), "proof-p99-µs")
	b.ReportMetric(float64(res.Consistency.P99.Microseconds()), "consistency-p99-µs")
	b.ReportMetric(res.Generation.EventsPerSec, "events/s")
}
