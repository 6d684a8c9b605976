package chainbench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes the result as a table: one row per measurement, then the goals.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "app\tload\ttx/s\ttxs/block\tCPU/tx\tp50\tp99\tmax\ttxs\tfailed\t\n")
	for _, a := range []AppResult{r.Consent, r.KVStore, r.SignedKVStore} {
		fmt.Fprintf(tw, "%s\tone at a time\t\t\t\t%v\t%v\t%v\t%d\t\t\n", a.App, ms(a.Unloaded.P50), ms(a.Unloaded.P99), ms(a.Unloaded.Max), a.Unloaded.N)
		for _, s := range a.Search {
			writeStep(tw, a.App, fmt.Sprintf("search %d", s.Concurrency), s)
		}
		for i, s := range a.Runs {
			writeStep(tw, a.App, fmt.Sprintf("run %d: %d in flight", i+1, s.Concurrency), s)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d validators on %d CPUs; txs of %d (consent), %d (kvstore) and %d (signed kvstore) bytes\n"+
		"throughput consent/kvstore         median %.2f of %s  (goal ≥ %.2f: %s)\n"+
		"throughput consent/signed kvstore  median %.2f of %s\n",
		r.Validators, r.CPUs, r.Consent.TxBytes, r.KVStore.TxBytes, r.SignedKVStore.TxBytes,
		r.Ratio, fmtRatios(r.Ratios), GoalRatio, verdict(r.Ratio >= GoalRatio),
		r.RatioSigned, fmtRatios(r.RatiosSigned))
	if r.CPURatio > 0 {
		fmt.Fprintf(w, "CPU per tx, kvstore/consent %.2f, signed kvstore/consent %.2f  (medians: the throughput ratios where CPU is the limit)\n",
			r.CPURatio, r.CPURatioSigned)
	}
	if c, k, s := r.Consent.Loaded.cpuPerTx(), r.KVStore.Loaded.cpuPerTx(), r.SignedKVStore.Loaded.cpuPerTx(); c > 0 && k > 0 && s > 0 {
		fmt.Fprintf(w, "CPU per committed tx (all validators and the load, median runs): consent %v, kvstore %v (%.2f×), signed kvstore %v (%.2f×)\n",
			c.Round(time.Microsecond), k.Round(time.Microsecond), float64(c)/float64(k), s.Round(time.Microsecond), float64(c)/float64(s))
	}
	if c, k := r.Consent.WithinGoal, r.KVStore.WithinGoal; c != nil && k != nil {
		fmt.Fprintf(w, "  with p50 ≤ %v: %.2f  (consent %.0f tx/s with %d in flight, kvstore %.0f tx/s with %d)\n",
			GoalP50, r.RatioWithinGoal, c.TxPerSec, c.Concurrency, k.TxPerSec, k.Concurrency)
	}
	_, err := fmt.Fprintf(w, "consent p50 one at a time   %v  (goal ≤ %v: %s)\n"+
		"consent p50 under load      %v  (goal ≤ %v: %s)\n",
		ms(r.Consent.Unloaded.P50), GoalP50, verdict(r.Consent.Unloaded.P50 <= GoalP50),
		ms(r.Consent.Loaded.Latency.P50), GoalP50, verdict(r.Consent.Loaded.Latency.P50 <= GoalP50))
	return err
}

func writeStep(w io.Writer, app, load string, s Step) {
	fmt.Fprintf(w, "%s\t%s\t%.0f\t%.1f\t%v\t%v\t%v\t%v\t%d\t%d\t\n", app, load, s.TxPerSec, s.txsPerBlock(),
		s.cpuPerTx().Round(time.Microsecond), ms(s.Latency.P50), ms(s.Latency.P99), ms(s.Latency.Max), s.Committed, s.Failed)
}

func fmtRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
