package consent_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
)

// audit runs the access-log commands of the transcripts:
//
//	audit [patient=NAME] [hospital=H] [kind=K] [from=HH:MM:SS] [to=HH:MM:SS] [before=N] [limit=N]
//	    lists /audit/events, one event a line, then "next=N" if the page has one
//	audit-verify
//	    checks every event's inclusion proof in the log now and at every checkpoint
//	    that holds it, and consistency between every two checkpoints and the head
//	audit-tamper INDEX
//	    rewrites event INDEX's leaf in the store (as a lying node would) and says
//	    whether its inclusion proof still verifies against the committed root
//
// Times are on the transcripts' first day (2026-01-01, UTC).
func (r *runner) audit(t *testing.T, cmd string, pos []string, opts map[string]string) string {
	switch cmd {
	case "audit-verify":
		return r.auditVerify(t)
	case "audit-tamper":
		return r.auditTamper(t, pos[0])
	}
	f := consent.AuditFilter{Kind: consent.AuditKind(opts["kind"]), Hospital: consent.HospitalID(opts["hospital"])}
	if p := opts["patient"]; p != "" {
		f.Patient = patientOf(p)
	}
	f.From, f.To = clock(t, opts["from"]), clock(t, opts["to"])
	f.Before, _ = strconv.ParseUint(opts["before"], 10, 64)
	f.Limit, _ = strconv.Atoi(opts["limit"])
	data, _ := json.Marshal(f)
	var page consent.AuditPage
	if msg := r.queryJSON(t, "/audit/events", data, &page); msg != "" {
		return msg
	}
	var lines []string
	for _, e := range page.Events {
		lines = append(lines, r.eventLine(e))
	}
	if page.Next != 0 {
		lines = append(lines, fmt.Sprintf("next=%d", page.Next))
	}
	if len(lines) == 0 {
		return "no events"
	}
	return strings.Join(lines, "\n")
}

// clock parses HH:MM:SS on the transcripts' first day; "" is 0.
func clock(t *testing.T, s string) int64 {
	if s == "" {
		return 0
	}
	c, err := time.Parse("15:04:05", s)
	if err != nil {
		t.Fatalf("time %q: want HH:MM:SS", s)
	}
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return day.Add(time.Duration(c.Hour())*time.Hour + time.Duration(c.Minute())*time.Minute + time.Duration(c.Second())*time.Second).Unix()
}

// eventLine prints an event compactly: index, height, time of day, kind, patient, then
// the fields it has (a grant only if the transcript named it).
func (r *runner) eventLine(e consent.AuditEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d h%d %s %s %s", e.Index, e.Height, time.Unix(e.Time, 0).UTC().Format("15:04:05"), e.Kind, e.Patient)
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	field("record", string(e.Record))
	field("hospital", string(e.Hospital))
	var cs []string
	for _, c := range e.Custodians {
		cs = append(cs, string(c))
	}
	field("custodians", strings.Join(cs, ","))
	field("recipient", string(e.Recipient))
	field("purpose", string(e.Purpose))
	field("consent", string(e.Consent))
	if _, named := r.name[string(e.Grant)]; named {
		field("grant", string(e.Grant))
	}
	field("reason", e.Reason)
	return r.names(b.String())
}

// queryJSON runs a query and decodes its value into v; a refusal is returned as a
// message.
func (r *runner) queryJSON(t *testing.T, path string, data []byte, v any) string {
	res, err := r.m.Query(r.st, path, data)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != consent.OK {
		return fmt.Sprintf("%s: %s", res.Code, r.names(res.Log))
	}
	if err := json.Unmarshal(res.Value, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ""
}

func (r *runner) mustQuery(t *testing.T, path string, v any) {
	if msg := r.queryJSON(t, path, nil, v); msg != "" {
		t.Fatalf("%s: %s", path, msg)
	}
}

// checkpoints returns the log at the end of every height so far, one per size.
func (r *runner) checkpoints(t *testing.T) []consent.LogRoot {
	var out []consent.LogRoot
	for h := consent.Height(0); h <= r.height; h++ {
		var root consent.LogRoot
		r.mustQuery(t, fmt.Sprintf("/audit/root/%d", h), &root)
		if len(out) == 0 || out[len(out)-1].Size != root.Size {
			out = append(out, root)
		}
	}
	return out
}

func (r *runner) auditVerify(t *testing.T) string {
	var head consent.LogRoot
	r.mustQuery(t, "/audit/head", &head)
	cps := r.checkpoints(t)
	if last := cps[len(cps)-1]; last.Size != head.Size || string(last.Root) != string(head.Root) {
		return fmt.Sprintf("head %d differs from the last checkpoint %d", head.Size, last.Size)
	}
	proofs := 0
	for i := uint64(0); i < head.Size; i++ {
		var entry consent.LogEntry
		r.mustQuery(t, fmt.Sprintf("/audit/event/%d", i), &entry)
		for _, cp := range cps {
			if cp.Size <= i {
				continue
			}
			var p consent.InclusionProof
			r.mustQuery(t, fmt.Sprintf("/audit/inclusion/%d/%d", i, cp.Size), &p)
			if err := consent.VerifyInclusion(entry.Leaf, i, cp.Size, p.Hashes(), cp.Root); err != nil {
				return fmt.Sprintf("event %d in the log at height %d: %v", i, cp.Height, err)
			}
			proofs++
		}
	}
	for i, a := range cps {
		for _, b := range cps[i:] {
			var p consent.ConsistencyProof
			r.mustQuery(t, fmt.Sprintf("/audit/consistency/%d/%d", a.Size, b.Size), &p)
			if err := consent.VerifyConsistency(a.Size, b.Size, a.Root, b.Root, p.Hashes()); err != nil {
				return fmt.Sprintf("log at height %d to height %d: %v", a.Height, b.Height, err)
			}
			proofs++
		}
	}
	return fmt.Sprintf("ok: %d events, %d checkpoints, %d proofs verified", head.Size, len(cps), proofs)
}

func (r *runner) auditTamper(t *testing.T, index string) string {
	var head consent.LogRoot
	r.mustQuery(t, "/audit/head", &head)
	var entry consent.LogEntry
	r.mustQuery(t, "/audit/event/"+index, &entry)
	e := entry.Event
	e.Reason = "rewritten"
	leaf, err := e.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.st.Set([]byte("al/l/"+fmt.Sprintf("%016x", e.Index)), leaf); err != nil {
		t.Fatal(err)
	}
	r.mustQuery(t, "/audit/event/"+index, &entry)
	var p consent.InclusionProof
	r.mustQuery(t, "/audit/inclusion/"+index, &p)
	if err := consent.VerifyInclusion(entry.Leaf, e.Index, p.Size, p.Hashes(), head.Root); err != nil {
		return "refused: " + r.names(err.Error())
	}
	return "verified"
}
