package fetchbench

import (
	"os"
	"strings"
	"testing"
)

// TestRun fetches a small payload both ways a few times and checks the result's shape.
func TestRun(t *testing.T) {
	res, err := Run(t.Context(), Config{Sizes: []int{3 << 20}, Rounds: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Sizes[0]
	if s.Bytes != 3<<20 || len(s.Raw.Seconds) != 3 || len(s.Decrypted.Seconds) != 3 || s.Raw.MBps <= 0 || s.Decrypted.MBps <= 0 || s.Ratio <= 0 {
		t.Errorf("result %+v", s)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
}

func TestConfig(t *testing.T) {
	for name, cfg := range map[string]Config{"negative rounds": {Rounds: -1}, "zero size": {Sizes: []int{0}}} {
		if _, err := Run(t.Context(), cfg); err == nil {
			t.Errorf("%s: Run succeeded", name)
		}
	}
}

// BenchmarkFetch runs the full benchmark once per iteration (use -benchtime=1x).
func BenchmarkFetch(b *testing.B) {
	for b.Loop() {
		res, err := Run(b.Context(), Config{Progress: os.Stderr})
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range res.Sizes {
			name := sizeName(s.Bytes)
			name = strings.ReplaceAll(name, " ", "")
			b.ReportMetric(s.Raw.MBps, name+"_raw_MB/s")
			b.ReportMetric(s.Decrypted.MBps, name+"_decrypted_MB/s")
			b.ReportMetric(s.Ratio, name+"_ratio")
		}
		b.ReportMetric(0, "ns/op")
	}
}
