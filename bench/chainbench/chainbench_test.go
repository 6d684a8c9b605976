package chainbench

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/bench/kvnet"
	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

// TestConsentLoad applies the consent workload's txs to a consent machine in memory:
// every one is accepted, grants and requests alternate, and requests are decided both
// ways.
func TestConsentLoad(t *testing.T) {
	w := newConsentLoad(defaultPatients)
	appState, err := w.appState()
	if err != nil {
		t.Fatal(err)
	}
	w.chainID = "bench"
	m, st := consent.NewMachine(), consenttest.NewMemStore()
	b := consent.Block{Height: 1, Time: time.Unix(1_800_000_000, 0)}
	if err := m.InitChain(st, w.chainID, appState, b); err != nil {
		t.Fatal(err)
	}
	apply := func(tx []byte) consent.Result {
		t.Helper()
		if res, err := m.CheckTx(st, tx); err != nil || res.Code != consent.OK {
			t.Fatalf("CheckTx: code %v (%s), %v", res.Code, res.Log, err)
		}
		res, err := m.DeliverTx(st, tx, b)
		if err != nil || res.Code != consent.OK {
			t.Fatalf("DeliverTx: code %v (%s), %v", res.Code, res.Log, err)
		}
		return res
	}
	for i := range defaultPatients {
		apply(w.register(i, 1))
	}
	kinds, verdicts := map[string]int{}, map[string]int{}
	for range 2000 {
		res := apply(w.tx(1))
		kinds[res.Events[0].Attrs[0].Value]++
		for _, e := range res.Events {
			for _, a := range e.Attrs {
				if e.Type == "access" && a.Key == "decision" {
					verdicts[a.Value]++
				}
			}
		}
	}
	if kinds["grant"] != 1000 || kinds["request"] != 1000 {
		t.Errorf("tx kinds %v, want 1000 grants and 1000 requests", kinds)
	}
	if verdicts["granted"] == 0 || verdicts["denied"] == 0 {
		t.Errorf("decisions %v, want both", verdicts)
	}
	t.Logf("decisions %v", verdicts)
}

func TestKVLoad(t *testing.T) {
	for _, signed := range []bool{false, true} {
		w := &kvLoad{txBytes: 250, signed: signed}
		a, b := w.tx(0), w.tx(0)
		if len(a) != 250 || bytes.Equal(a, b) || bytes.Count(a, []byte("=")) != 1 || bytes.Contains(a, []byte(":")) {
			t.Errorf("%s: txs %q, %q: want distinct key=value txs of 250 bytes", w.name(), a, b)
		}
		if err := kvnet.VerifyTx(a); (err == nil) != signed {
			t.Errorf("%s: VerifyTx: %v", w.name(), err)
		}
	}
}

// TestRatios: the rounds' ratios are taken run by run, and the reported ratio is their
// median (the mean of the middle two of an even number); the loaded step is the run
// with the median throughput (the lower middle one).
func TestRatios(t *testing.T) {
	steps := func(tps ...float64) []Step {
		var s []Step
		for _, x := range tps {
			s = append(s, Step{TxPerSec: x})
		}
		return s
	}
	consent, kv := steps(50, 300, 25, 100), steps(100, 300, 100, 100)
	rs, r := ratios(consent, kv, txPerSec)
	if len(rs) != 4 || rs[0] != 0.5 || rs[2] != 0.25 || r != 0.75 {
		t.Errorf("ratios %v, median %v; want [0.5 1 0.25 1], 0.75", rs, r)
	}
	if rs, r := ratios(steps(50, 0, 25), steps(100, 100, 100), txPerSec); len(rs) != 2 || r != 0.375 {
		t.Errorf("with a run that committed nothing: %v, %v; want it left out, median 0.375", rs, r)
	}
	if m := medianStep(consent); m.TxPerSec != 50 {
		t.Errorf("median step %v, want the lower middle 50", m.TxPerSec)
	}
}

// TestRun runs a short benchmark end to end and checks the result's shape.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three 2-validator networks")
	}
	res, err := Run(t.Context(), Config{Duration: time.Second, Warmup: 250 * time.Millisecond, Concurrency: 16, Unloaded: 4, Runs: 1, Validators: 2, Patients: 64})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []AppResult{res.Consent, res.KVStore, res.SignedKVStore} {
		if a.Loaded.Committed == 0 || a.Loaded.Failed != 0 || a.Unloaded.N != 4 || a.Loaded.Latency.P50 <= 0 || len(a.Runs) != 1 {
			t.Errorf("%s: %+v", a.App, a)
		}
	}
	if res.Validators != 2 || res.Ratio <= 0 || res.RatioSigned <= 0 || len(res.Ratios) != 1 || len(res.RatiosSigned) != 1 {
		t.Errorf("ratios %v %v, signed %v %v", res.Ratio, res.Ratios, res.RatioSigned, res.RatiosSigned)
	}
	if _, ok := processCPU(); ok && (res.CPURatio <= 0 || res.CPURatioSigned <= 0) {
		t.Errorf("CPU ratios %v and %v", res.CPURatio, res.CPURatioSigned)
	}
	// The kvstores' txs are the consent txs' size (to within the consent txs' spread
	// from run to run).
	for _, k := range []AppResult{res.KVStore, res.SignedKVStore} {
		if res.Consent.TxBytes == 0 || k.TxBytes < res.Consent.TxBytes-8 || k.TxBytes > res.Consent.TxBytes+8 {
			t.Errorf("tx bytes: consent %d, %s %d", res.Consent.TxBytes, k.App, k.TxBytes)
		}
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.Consent.Loaded.Latency != truncate(res.Consent.Loaded.Latency) {
		t.Errorf("JSON round trip: %v, %+v", err, back.Consent.Loaded.Latency)
	}
	t.Logf("\n%s", table.String())
}

// BenchmarkChain runs the full benchmark once per iteration (use -benchtime=1x).
func BenchmarkChain(b *testing.B) {
	if testing.Short() {
		b.Skip("runs two 4-validator networks for a minute or more")
	}
	for b.Loop() {
		res, err := Run(b.Context(), Config{Progress: os.Stderr})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.Consent.Loaded.TxPerSec, "consent_tx/s")
		b.ReportMetric(res.KVStore.Loaded.TxPerSec, "kvstore_tx/s")
		b.ReportMetric(res.Ratio, "ratio")
		b.ReportMetric(res.SignedKVStore.Loaded.TxPerSec, "signed_kvstore_tx/s")
		b.ReportMetric(res.RatioSigned, "ratio_signed")
		b.ReportMetric(res.RatioWithinGoal, "ratio_within_p50_goal")
		b.ReportMetric(msFloat(res.Consent.Loaded.Latency.P50), "p50_ms")
		b.ReportMetric(msFloat(res.Consent.Loaded.Latency.P99), "p99_ms")
		b.ReportMetric(msFloat(res.Consent.Unloaded.P50), "unloaded_p50_ms")
		b.ReportMetric(msFloat(res.KVStore.Loaded.Latency.P50), "kvstore_p50_ms")
		b.ReportMetric(0, "ns/op")
		var table strings.Builder
		_ = res.WriteTable(&table)
		b.Logf("\n%s", table.String())
	}
}

func truncate(l Latency) Latency {
	l.P50, l.P99, l.Max = l.P50.Truncate(time.Microsecond), l.P99.Truncate(time.Microsecond), l.Max.Truncate(time.Microsecond)
	return l
}
