package accessbench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestRun runs a short measurement through the real stack: every key release returns
// the ingested record and every revocation is followed by a denial (Run checks both
// and fails otherwise); the report and its JSON carry every figure.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four hospital nodes")
	}
	t.Parallel()
	res, err := Run(t.Context(), Config{Samples: 5, Revocations: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit.N != 5 || res.KeyRelease.N != 5 || res.Revocation.N != 2 || len(res.RevocationBlocks) != 2 {
		t.Fatalf("counts: %+v", res)
	}
	if res.Ratio <= 0 || res.KeyRelease.P50 <= 0 || res.Commit.P50 <= 0 {
		t.Fatalf("figures: %+v", res)
	}
	for _, b := range res.RevocationBlocks {
		if b < 1 {
			t.Fatalf("a denial decided at or before the revocation's height: %v", res.RevocationBlocks)
		}
	}
	var out bytes.Buffer
	if err := res.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bare commit", "key release", "revoke → denial", "goal ≤ 2.3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	b, _ := json.Marshal(res)
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.KeyRelease.N != 5 {
		t.Fatalf("JSON round trip: %v %s", err, b)
	}
}

// BenchmarkKeyRelease reports key-release and bare-commit latency percentiles (ms)
// over max(b.N, 30) samples each.
func BenchmarkKeyRelease(b *testing.B) {
	res, err := Run(b.Context(), Config{Samples: max(b.N, 30), Revocations: 3})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.KeyRelease.P50.Microseconds())/1000, "release-p50-ms")
	b.ReportMetric(float64(res.KeyRelease.P99.Microseconds())/1000, "release-p99-ms")
	b.ReportMetric(float64(res.Commit.P50.Microseconds())/1000, "commit-p50-ms")
	b.ReportMetric(res.Ratio, "ratio")
}

// TestRunThresholdOneDown: the record's key 2 of 3 with one custodian stopped still
// releases, and the result says how the key was held.
func TestRunThresholdOneDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four hospital nodes")
	}
	t.Parallel()
	res, err := Run(t.Context(), Config{Samples: 3, Revocations: 1, Custodians: 3, Threshold: 2, OneDown: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Custody != "2 of 3, city down" || res.KeyRelease.N != 3 {
		t.Fatalf("got custody %q and %d key releases, want 2 of 3, city down and 3", res.Custody, res.KeyRelease.N)
	}
}
