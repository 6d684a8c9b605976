package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/api"
)

// A record in threshold custody that fewer than k custodians have accepted is denied
// on the chain (not-yet-available), to a read and to break-glass access alike, even
// with a consent that permits: the API answers 503 with Retry-After and an
// OperationOutcome that says the record is not yet available. Once k have accepted,
// the same read is granted; a custodian that has not accepted releases nothing.
func TestNotYetAvailable(t *testing.T) {
	e := newEnv(t, api.Config{})
	dek := must(crypto.NewDEK())
	_, comm, err := dek.Split(2, 3)
	ok(t, err)
	id := consent.RecordID(strings.Repeat("5a", 16))
	must(e.f.chain.RegisterRecord("ada", consent.RegisterRecord{Record: id, CID: consenttest.TestCID,
		Patient: aliceKey.Patient(), Classes: []consent.DataClass{"Observation"},
		Custodians: []consent.HospitalID{"ada", "bayside", "city"}, Threshold: 2, Commitments: comm.Bytes()}))
	must(e.f.chain.Grant(aliceKey, consent.Policy{Base: consent.Permit}))
	accept := func(h consent.HospitalID) {
		t.Helper()
		rec := must(e.f.chain.Record(id))
		_, _, err := e.f.chain.As(h, consent.Body{Kind: consent.KindAcceptCustody, AcceptCustody: &consent.AcceptCustody{
			Custodian: h, Record: id, Commitments: rec.CommitmentsHash()}})
		ok(t, err)
	}
	accept("bayside") // 1 of 2: not yet

	for name, r := range map[string]req{
		"read":      {method: "GET", path: "/records/" + string(id) + "?purpose=TREAT"},
		"emergency": {method: "POST", path: "/records/" + string(id) + "/$emergency-access?reason=life-threatening"},
	} {
		t.Run(name, func(t *testing.T) {
			r.role = api.RoleClinician
			res := e.do(r)
			oo := wantOutcome(t, res, http.StatusServiceUnavailable, "transient")
			if d := oo.Issue[0].Details; d == nil || d.Text != consent.ReasonNotYetAvailable {
				t.Errorf("details %+v, want the reason %s", d, consent.ReasonNotYetAvailable)
			}
			if msg := oo.Issue[0].Diagnostics; !strings.Contains(msg, "is not yet available") || !strings.Contains(msg, "on the chain") {
				t.Errorf("diagnostics %q; want it to say the record is not yet available and name the decision", msg)
			}
			if ra := res.header.Get("Retry-After"); ra == "" {
				t.Error("no Retry-After")
			}
		})
	}
	denied := 0
	for _, ev := range e.f.fullLog(t) {
		if ev.Record == id && ev.Kind == consent.AuditAccessDenied && ev.Reason == consent.ReasonNotYetAvailable {
			denied++
		}
	}
	if denied != 2 {
		t.Errorf("%d not-yet-available denials in the access log, want 2 (the read and the emergency)", denied)
	}

	accept("city") // 2 of 3 accepted: available, and granted
	// The fake releases from the first custodian, ada, which has not accepted custody:
	// the chain refuses its receipt, so its share never leaves.
	res := e.do(req{method: "GET", path: "/records/" + string(id) + "?purpose=TREAT", role: api.RoleClinician})
	oo := wantOutcome(t, res, http.StatusConflict, "business-rule")
	if d := oo.Issue[0].Details; d == nil || d.Text != consent.CodeNoCustody.String() {
		t.Errorf("details %+v, want %s", d, consent.CodeNoCustody)
	}
	accept("ada")
	res = e.do(req{method: "GET", path: "/records/" + string(id) + "?purpose=TREAT", role: api.RoleClinician})
	if res.status != http.StatusOK {
		t.Fatalf("a read once the custodians accepted: %d %s", res.status, res.body)
	}
}

// An ingest that names its custody is checked against the registry before anything
// reaches the backend: an unknown custodian is a 400 naming it, so is a custody
// without the ingesting hospital, a custodian named twice, and a
// threshold out of 1 ≤ k ≤ r; a Backend that cannot take named custodians answers 501.
func TestIngestNamedCustody(t *testing.T) {
	e := newEnv(t, api.Config{})
	base := "/fhir/Bundle?patient=" + alice
	for _, tt := range []struct {
		query, code, says string
	}{
		{"&custodian=bayside&custodian=nowhere", "value", "custodian 'nowhere' is not a registered hospital"},
		{"&custodian=ada,city", "business-rule", "the ingesting hospital, bayside, must be one of"},
		{"&custodian=bayside,bayside", "value", "named twice"},
		{"&custodian=ada,bayside&threshold=3", "business-rule", "threshold 3 of 2 custodians"},
		{"&custodian=ada,bayside&threshold=0", "value", "threshold '0'"},
		{"&threshold=two", "value", "threshold 'two'"},
		{"&threshold=1&threshold=2", "invalid", "threshold once"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			before := e.f.mutations()
			res := e.do(req{method: "POST", path: base + tt.query, role: api.RoleClinician, body: strings.NewReader(string(synthea(t)))})
			oo := wantOutcome(t, res, http.StatusBadRequest, tt.code)
			if !strings.Contains(oo.Issue[0].Diagnostics, tt.says) {
				t.Errorf("diagnostics %q, want %q", oo.Issue[0].Diagnostics, tt.says)
			}
			if e.f.mutations() != before {
				t.Error("a refused custody reached the backend")
			}
		})
	}
	res := e.do(req{method: "POST", path: base + "&custodian=ada,bayside&threshold=2", role: api.RoleClinician, body: strings.NewReader(string(synthea(t)))})
	wantOutcome(t, res, http.StatusNotImplemented, "not-supported")
}
