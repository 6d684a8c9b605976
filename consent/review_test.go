package consent_test

import (
	"cmp"
	"encoding/json"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/medledger/medledger/consent"
)

// The review queue lists every emergency access exactly once: those without a review
// first, then the reviewed, each by height newest first (then by grant ID), as a
// naive reading of /emergencies and each grant's review finds; and the access log
// holds one emergency-reviewed event per review, naming its grant, reviewer and
// outcome.
func TestEmergencyQueueMatchesNaive(t *testing.T) {
	reviewed := 0
	rapid.Check(t, func(rt *rapid.T) {
		c := drawChain(rt)
		var all []consent.Decision
		c.query(rt, "/emergencies", nil, &all)
		var open, done []consent.EmergencyCase
		for _, d := range all {
			var g consent.GrantInfo
			c.query(rt, "/grant/"+string(d.ID), nil, &g)
			if g.Review == nil {
				open = append(open, consent.EmergencyCase{Decision: d})
			} else {
				done = append(done, consent.EmergencyCase{Decision: d, Review: g.Review})
			}
		}
		order := func(a, b consent.EmergencyCase) int {
			return cmp.Or(cmp.Compare(b.Decision.Height, a.Decision.Height), cmp.Compare(a.Decision.ID, b.Decision.ID))
		}
		slices.SortFunc(open, order)
		slices.SortFunc(done, order)
		want := append(append([]consent.EmergencyCase{}, open...), done...)
		var got []consent.EmergencyCase
		c.query(rt, "/emergency-queue", nil, &got)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			rt.Fatalf("queue:\n%s\nwant:\n%s", gb, wb)
		}

		data, _ := json.Marshal(consent.AuditFilter{Kind: consent.AuditEmergencyReviewed, Limit: consent.MaxAuditLimit})
		var page consent.AuditPage
		c.query(rt, "/audit/events", data, &page)
		if len(page.Events) != len(done) {
			rt.Fatalf("%d emergency-reviewed events, %d reviews", len(page.Events), len(done))
		}
		for _, e := range page.Events {
			i := slices.IndexFunc(done, func(x consent.EmergencyCase) bool { return x.Decision.ID == e.Grant })
			if i < 0 {
				rt.Fatalf("event %d reviews %s, which has no review", e.Index, e.Grant)
			}
			r := done[i]
			if e.Hospital != r.Review.Reviewer || e.Reason != r.Review.Outcome || e.Height != r.Review.Height ||
				e.Patient != r.Decision.Patient || e.Record != r.Decision.Record {
				rt.Fatalf("event %+v does not match review %+v of %+v", e, *r.Review, r.Decision)
			}
		}
		reviewed += len(done)
	})
	if reviewed == 0 {
		t.Fatal("the generated streams reviewed no emergency: the property is vacuous")
	}
	t.Logf("%d reviews", reviewed)
}
