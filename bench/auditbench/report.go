package auditbench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/medledger/medledger/bench/chainbench"
	"github.com/medledger/medledger/consent"
)

// WriteTable writes the result as a table with the goals.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "measurement\tp50\tp99\tmax\tn\t\n")
	for _, row := range []struct {
		name string
		l    chainbench.Latency
	}{
		{"patient's newest page", r.PatientQuery},
		{"event + inclusion proof + check", r.Inclusion},
		{"consistency proof + check", r.Consistency},
	} {
		fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%d\t\n", row.name, us(row.l.P50), us(row.l.P99), us(row.l.Max), row.l.N)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d events in %d blocks: %s\n%d patients, %d hospitals, %d CPUs; the app's store %.0f MiB\n",
		r.Events, r.Blocks, r.kinds(), r.Patients, r.Hospitals, r.CPUs, float64(r.StoreBytes)/(1<<20))
	fmt.Fprintf(w, "generated through the app in %s: %.0f events/s (%.0f events/s in FinalizeBlock and Commit)\n",
		time.Duration(r.Generation.Seconds*float64(time.Second)).Round(100*time.Millisecond), r.Generation.EventsPerSec, r.Generation.ApplyEventsPerSec)
	_, err := fmt.Fprintf(w, "patient query p99                  %v  (goal ≤ %v: %s; %.1f events a page)\n"+
		"inclusion proof + check p99        %v  (goal ≤ %v: %s)\n"+
		"proofs verified                    %d of %d\n",
		us(r.PatientQuery.P99), GoalPatientP99, verdict(r.PatientQuery.N > 0 && r.PatientQuery.P99 <= GoalPatientP99), r.PageEvents,
		us(r.Inclusion.P99), GoalProofP99, verdict(r.Inclusion.N > 0 && r.Inclusion.P99 <= GoalProofP99),
		r.Verified, r.Inclusion.N+r.Consistency.N)
	return err
}

// kinds lists the event kinds with their counts, largest first.
func (r *Result) kinds() string {
	ks := make([]consent.AuditKind, 0, len(r.Kinds))
	for k := range r.Kinds {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b consent.AuditKind) int { return cmp.Or(r.Kinds[b]-r.Kinds[a], cmp.Compare(a, b)) })
	s := ""
	for i, k := range ks {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, r.Kinds[k])
	}
	return s
}

// us rounds to the microsecond: these latencies are well under a millisecond.
func us(d time.Duration) time.Duration { return d.Round(time.Microsecond) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
