package node_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/nodetest"
)

// callAPI makes a request to nd's API with its role's token and returns the status,
// body and headers.
func callAPI(t *testing.T, nd *node.Node, role, method, path string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	tokens, err := node.ReadTokens(nd.Home())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(nodetest.Ctx(t), method, nd.APIURL()+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tokens[role])
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// outcomeIssue is the first issue of an OperationOutcome body.
type outcomeIssue struct {
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics"`
	Details     struct {
		Text string `json:"text"`
	} `json:"details"`
}

func firstIssue(t *testing.T, body []byte) outcomeIssue {
	t.Helper()
	var oo struct {
		ResourceType string         `json:"resourceType"`
		Issue        []outcomeIssue `json:"issue"`
	}
	if err := json.Unmarshal(body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Fatalf("not an OperationOutcome (%v): %s", err, body)
	}
	return oo.Issue[0]
}

// TestNamedCustodyFailsClosed, through the real stack: the ingesting hospital names a
// record's custodians and threshold on POST /fhir/Bundle; custodians outside the
// registry, custodies without the ingesting hospital and thresholds out of bounds are
// a 400 that stores nothing. A record in 3-of-3 custody with one custodian down is not
// available: a read and an emergency access are denied on the chain
// (not-yet-available) and the API answers 503 saying the record is not yet
// available; when the custodian is back and accepts, the read succeeds. A whole-key
// record named with this hospital alone reads at once.
func TestNamedCustodyFailsClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	var lie atomic.Bool
	net := startCustody(t, &lie)
	ada, dunmore := net.Nodes[0], net.Nodes[3]
	patient, pid := nodetest.NewPatient(t)
	nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "dunmore"))
	ingest := func(query string) (int, []byte) {
		status, body, _ := callAPI(t, ada, "admin", http.MethodPost, "/fhir/Bundle?patient="+string(pid)+query, nodetest.Sample(t))
		return status, body
	}

	for _, c := range []struct{ query, says string }{
		{"&custodian=ada&custodian=nowhere", "custodian 'nowhere' is not a registered hospital"},
		{"&custodian=bayside,city", "the ingesting hospital, ada, must be one of the record's custodians"},
		{"&custodian=ada,bayside&threshold=3", "threshold 3 of 2 custodians"},
		{"&custodian=ada,bayside&threshold=0", "threshold '0'"},
		{"&custodian=ada,ada", "named twice"},
	} {
		status, body := ingest(c.query)
		if is := firstIssue(t, body); status != http.StatusBadRequest || !strings.Contains(is.Diagnostics, c.says) {
			t.Errorf("ingest %s: %d %q, want 400 saying %q", c.query, status, is.Diagnostics, c.says)
		}
	}
	if recs, err := ada.Records(nodetest.Ctx(t), pid); err != nil || len(recs) != 0 {
		t.Fatalf("refused ingests stored records: %v %v", recs, err)
	}

	// Whole key, named: this hospital alone.
	status, body := ingest("&custodian=ada")
	if status != http.StatusCreated {
		t.Fatalf("ingest with custodian=ada: %d %s", status, body)
	}
	whole := recordOf(t, ada, pid, func(r consent.Record) bool { return r.Threshold == 0 })
	if !slices.Equal(whole.Custodians, []consent.HospitalID{"ada"}) {
		t.Fatalf("whole-key record's custodians %v, want [ada]", whole.Custodians)
	}
	if _, err := dunmore.Read(nodetest.Ctx(t), whole.ID, "TREAT"); err != nil {
		t.Fatalf("read of a whole-key record named by the hospital: %v", err)
	}

	net.StopNode(2) // city: one of three custodians, all three needed
	if status, body = ingest("&custodian=ada&custodian=bayside,city&threshold=3"); status != http.StatusCreated {
		t.Fatalf("ingest 3 of 3: %d %s", status, body)
	}
	rec := recordOf(t, ada, pid, func(r consent.Record) bool { return r.Threshold == 3 })
	if !slices.Equal(rec.Custodians, []consent.HospitalID{"ada", "bayside", "city"}) {
		t.Fatalf("custodians %v, want ada, bayside, city", rec.Custodians)
	}
	st := waitCustody(t, dunmore, rec.ID, func(s *consent.CustodyStatus) bool { return len(s.Accepted) == 2 })
	if st.Available {
		t.Fatalf("3-of-3 record with 2 acceptances reads as available: %+v", st)
	}
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/records/" + string(rec.ID) + "?purpose=TREAT"},
		{http.MethodPost, "/records/" + string(rec.ID) + "/$emergency-access?reason=unconscious-patient"},
	} {
		status, body, hdr := callAPI(t, dunmore, "clinician", r.method, r.path, nil)
		is := firstIssue(t, body)
		if status != http.StatusServiceUnavailable || is.Details.Text != consent.ReasonNotYetAvailable ||
			!strings.Contains(is.Diagnostics, "is not yet available") || hdr.Get("Retry-After") == "" {
			t.Errorf("%s %s: %d %+v, want 503 not-yet-available with Retry-After", r.method, r.path, status, is)
		}
	}
	page, err := dunmore.AuditEvents(nodetest.Ctx(t), consent.AuditFilter{Patient: pid, Kind: consent.AuditAccessDenied})
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, e := range page.Events {
		if e.Record == rec.ID && e.Reason == consent.ReasonNotYetAvailable {
			denied++
		}
	}
	if denied != 2 {
		t.Errorf("%d not-yet-available denials on the chain, want 2 (read and emergency)", denied)
	}

	net.StartNode(2) // ada's repair loop offers city its share again
	waitCustody(t, dunmore, rec.ID, func(s *consent.CustodyStatus) bool { return s.Available })
	// City, just back, may still be a block or two behind its peers for a moment (503
	// with Retry-After): the read is tried again as a client told to retry would, a
	// bounded number of times.
	var acc *api.Access
	for try := 0; ; try++ {
		acc, err = dunmore.Read(nodetest.Ctx(t), rec.ID, "TREAT")
		if err == nil || !errors.As(err, new(*api.Unavailable)) || try == 4 {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		t.Fatalf("read once all three accepted: %v", err)
	}
	if !bytes.Equal(acc.Bundle, nodetest.Sample(t)) {
		t.Fatal("the record read is not the one ingested")
	}
}

// recordOf is pid's record at nd for which match holds.
func recordOf(t *testing.T, nd *node.Node, pid consent.PatientID, match func(consent.Record) bool) consent.Record {
	t.Helper()
	recs, err := nd.Records(nodetest.Ctx(t), pid)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(recs, match)
	if i < 0 {
		t.Fatalf("no matching record among %+v", recs)
	}
	return recs[i]
}
