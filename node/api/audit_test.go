package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/auditor"
)

var (
	bob  = string(bobKey.Patient())
	recA = consent.RecordID(strings.Repeat("1", 32)) // alice's, held by ada
	recB = consent.RecordID(strings.Repeat("2", 32)) // bob's, held by city
)

func gid(n int) consent.GrantID  { return consent.GrantID(fmt.Sprintf("%032x", n)) }
func jan(day int, sec int) int64 { return time.Date(2026, 1, day, 10, 0, sec, 0, time.UTC).Unix() }
func ids(es []consent.AuditEvent) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.Index)
	}
	return out
}

// at sets the time of the chain's next block (Unix seconds).
func (f *fake) at(sec int64) *consenttest.Chain {
	f.chain.SetTime(time.Unix(sec, 0).UTC())
	return f.chain
}

// ok fails the test on a chain refusal.
func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// permits is an opt-in policy permitting each actor the purpose that follows it.
func permits(actorPurpose ...string) consent.Policy {
	p := consent.Policy{Base: consent.Deny}
	for i := 0; i+1 < len(actorPurpose); i += 2 {
		p.Provisions = append(p.Provisions, consent.Provision{Type: consent.Permit,
			Actors: []consent.HospitalID{consent.HospitalID(actorPurpose[i])}, Purposes: []consent.Purpose{consent.Purpose(actorPurpose[i+1])}})
	}
	return p
}

// register registers record id of patient, of classes Condition and Observation, held
// by custodian.
func (f *fake) register(t *testing.T, custodian consent.HospitalID, patient string, id consent.RecordID) {
	t.Helper()
	must(f.chain.RegisterRecord(custodian, consent.RegisterRecord{Record: id, CID: consenttest.TestCID,
		Patient: consent.PatientID(patient), Classes: []consent.DataClass{"Condition", "Observation"},
		Custodians: []consent.HospitalID{custodian}}))
}

// fullLog is the chain's whole access log, oldest first.
func (f *fake) fullLog(t *testing.T) []consent.AuditEvent {
	t.Helper()
	return must(consent.EventsSince(0, math.MaxUint64, consent.AuditFilter{}, f.chain.AuditEvents))
}

// seedLog commits, through the chain, twelve events: bob's record registered by city
// and consented (on the last day of 2025); then alice's record registered by ada,
// consented, read by bayside, denied to city, broken into by city (released and
// reviewed), revoked; and a read of bob's by bayside. It returns the log.
func seedLog(t *testing.T, f *fake) []consent.AuditEvent {
	t.Helper()
	c := f.chain
	f.at(time.Date(2025, 12, 31, 10, 0, 0, 0, time.UTC).Unix())
	f.register(t, "city", bob, recB)
	must(c.Grant(bobKey, permits("bayside", "TREAT")))
	f.at(jan(1, 0))
	f.register(t, "ada", alice, recA)
	f.at(jan(2, 0))
	aliceConsent := must(c.Grant(aliceKey, permits("bayside", "TREAT")))
	f.at(jan(3, 0))
	read := must(c.Request("bayside", recA, "TREAT"))
	ok(t, c.Release("ada", read.ID))
	f.at(jan(10, 0))
	must(c.Request("city", recA, "HPAYMT"))
	f.at(jan(20, 0))
	em := must(c.Emergency("city", recA, "life-threatening"))
	ok(t, c.Release("ada", em.ID))
	f.at(jan(25, 0))
	must(c.Request("bayside", recB, "TREAT"))
	f.at(time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC).Unix())
	_, _, err := c.Review("ada", em.ID, "justified")
	ok(t, err)
	f.at(time.Date(2026, 2, 2, 9, 0, 0, 0, time.UTC).Unix())
	ok(t, c.Revoke(aliceKey, aliceConsent))
	log := f.fullLog(t)
	if len(log) != 12 {
		t.Fatalf("seeded %d events, want 12", len(log))
	}
	return log
}

// searchBundle is what the tests read of a searchset of AuditEvents.
type searchBundle struct {
	ResourceType, Type string
	Total              *int
	Link               []struct{ Relation, URL string }
	Entry              []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   struct{ Mode string }
	}
}

func (b *searchBundle) link(rel string) string {
	for _, l := range b.Link {
		if l.Relation == rel {
			return l.URL
		}
	}
	return ""
}

// search runs GET path as a privacy officer and checks the Bundle and every AuditEvent
// in it against the R4 schema; it returns the bundle and the events' ids in order.
func (e *env) search(path string) (searchBundle, []uint64) {
	e.t.Helper()
	res := e.do(req{method: "GET", path: path, role: api.RolePrivacyOfficer})
	wantResource(e.t, res, http.StatusOK, "Bundle")
	var b searchBundle
	decode(e.t, res.body, &b)
	if b.Type != "searchset" {
		e.t.Errorf("Bundle.type %s, want searchset", b.Type)
	}
	got := []uint64{}
	for _, en := range b.Entry {
		r, err := fhir.Parse(en.Resource, fhir.Limits{})
		if err != nil || r.Type != "AuditEvent" {
			e.t.Fatalf("entry %s is not a valid R4 AuditEvent (%v): %s", en.FullURL, err, en.Resource)
		}
		var ae struct{ ID string }
		decode(e.t, en.Resource, &ae)
		if en.FullURL != e.srv.URL+"/fhir/AuditEvent/"+ae.ID || en.Search.Mode != "match" {
			e.t.Errorf("entry fullUrl %s mode %s for id %s", en.FullURL, en.Search.Mode, ae.ID)
		}
		n, _ := strconv.ParseUint(ae.ID, 10, 64)
		got = append(got, n)
	}
	return b, got
}

func TestAuditEventSearch(t *testing.T) {
	e := newEnv(t, api.Config{})
	seedLog(t, e.f)
	tests := []struct {
		query string
		want  []uint64
	}{
		{"patient=" + alice, []uint64{11, 10, 8, 7, 6, 5, 4, 3, 2}},
		{"patient=Patient/" + alice + "&kind=access-denied", []uint64{6}},
		{"kind=emergency-access", []uint64{7}},
		{"kind=emergency-reviewed", []uint64{10}},
		{"agent=city", []uint64{9, 8, 7, 6, 0}},
		{"agent=Organization/city&patient=" + alice, []uint64{8, 7, 6}},
		{"date=ge2026-01-10&date=le2026-01-20", []uint64{8, 7, 6}},
		{"date=2026-01-03", []uint64{5, 4}},
		{"date=gt2026-01-20", []uint64{11, 10, 9}},
		{"date=lt2026-01-03", []uint64{3, 2, 1, 0}},
		{"date=2026-02", []uint64{11, 10}},
		{"date=eq2026", []uint64{11, 10, 9, 8, 7, 6, 5, 4, 3, 2}},
		{"date=ge2026-01-20T10:00:01Z", []uint64{11, 10, 9, 8}},
		{"date=gt2026-01-20T10:00:01Z", []uint64{11, 10, 9}},
		{"date=lt2026-01-20T10:00:00Z", []uint64{6, 5, 4, 3, 2, 1, 0}},
		{"date=2026-01-20T10:00:01Z", []uint64{8}},
		{"date=le2026-01-20T11:00:00%2B01:00", []uint64{7, 6, 5, 4, 3, 2, 1, 0}},
		{"date=ge2026-01-20T10:00:00.5Z", []uint64{11, 10, 9, 8}},
		{"patient=" + bob + "&kind=key-released", []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			b, got := e.search("/fhir/AuditEvent?" + tt.query)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids %v, want %v", got, tt.want)
			}
			if b.Total == nil || *b.Total != len(tt.want) || b.link("next") != "" {
				t.Errorf("total %v next %q, want %d and no next page", b.Total, b.link("next"), len(tt.want))
			}
		})
	}
	// What the chain was asked for one of them.
	e.search("/fhir/AuditEvent?patient=" + alice + "&agent=city&kind=key-released&date=ge2026-01-10&date=lt2026-02&_count=7")
	want := consent.AuditFilter{Patient: alice, Hospital: "city", Kind: consent.AuditKeyReleased,
		From: time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC).Unix(), To: time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC).Unix(), Limit: 7}
	if got := e.f.lastFilter(); got != want {
		t.Errorf("filter\n got %+v\nwant %+v", got, want)
	}
}

// The BALP shape survives the API: the emergency is a Security Alert with DCM 110127
// and ETREAT; names come from the registry.
func TestAuditEventShape(t *testing.T) {
	e := newEnv(t, api.Config{})
	seedLog(t, e.f)
	res := e.do(req{method: "GET", path: "/fhir/AuditEvent/7", role: api.RoleAdmin})
	wantResource(t, res, http.StatusOK, "AuditEvent")
	var ae struct {
		ID             string
		Type           struct{ System, Code string }
		Subtype        []struct{ System, Code string }
		PurposeOfEvent []struct {
			Coding []struct{ System, Code string }
		}
		Agent []struct {
			Who struct{ Reference, Display string }
		}
	}
	decode(t, res.body, &ae)
	if ae.ID != "7" || ae.Type.Code != "110113" || len(ae.Subtype) != 1 || ae.Subtype[0].Code != "110127" ||
		ae.PurposeOfEvent[0].Coding[0].Code != "ETREAT" || ae.Agent[0].Who.Display != "City Hospital" {
		t.Errorf("emergency export: %s", res.body)
	}
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent/12", role: api.RoleAdmin}), http.StatusNotFound, "not-found")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent/x", role: api.RoleAdmin}), http.StatusBadRequest, "value")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent/18446744073709551615", role: api.RoleAdmin}), http.StatusBadRequest, "value")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent/7", role: api.RoleClinician}), http.StatusForbidden, "forbidden")
}

// Pages follow the next link to the end: every event once, newest first.
func TestAuditEventPaging(t *testing.T) {
	e := newEnv(t, api.Config{})
	seedLog(t, e.f)
	path := "/fhir/AuditEvent?patient=" + alice + "&_count=4"
	var all []uint64
	var cursors []string
	for path != "" {
		b, got := e.search(path)
		all = append(all, got...)
		path = ""
		if next := b.link("next"); next != "" {
			u, err := url.Parse(next)
			if err != nil || !strings.HasPrefix(next, e.srv.URL+"/fhir/AuditEvent?") {
				t.Fatalf("next link %q", next)
			}
			if u.Query().Get("patient") != alice || u.Query().Get("_count") != "4" {
				t.Errorf("next link %q lost the search", next)
			}
			if b.Total != nil {
				t.Errorf("a page of many has total %d", *b.Total)
			}
			cursors = append(cursors, u.Query().Get("_cursor"))
			path = u.RequestURI()
		}
		if len(cursors) > 5 {
			t.Fatal("paging does not end")
		}
	}
	if want := []uint64{11, 10, 8, 7, 6, 5, 4, 3, 2}; !slices.Equal(all, want) {
		t.Errorf("all pages: %v, want %v", all, want)
	}
	if !slices.Equal(cursors, []string{"7", "3"}) {
		t.Errorf("cursors %v, want [7 3]", cursors)
	}
}

func TestAuditEventSearchErrors(t *testing.T) {
	e := newEnv(t, api.Config{})
	seedLog(t, e.f)
	tests := []struct {
		query  string
		status int
		code   string
	}{
		{"date=2026-13-01", 400, "value"},
		{"date=2026-1-1", 400, "value"},
		{"date=yesterday", 400, "value"},
		{"date=2026-01-01T10:00Z", 400, "value"},
		{"date=2026-01-01T10:00:00", 400, "value"},
		{"date=ne2026-01-01", 400, "not-supported"},
		{"date=ge2026-02-01&date=le2026-01-01", 400, "value"},
		{"date=lt1970", 400, "value"},
		{"kind=granted", 400, "value"},
		{"_count=0", 400, "value"},
		{"_count=501", 400, "value"},
		{"_count=ten", 400, "value"},
		{"_cursor=0", 400, "value"},
		{"_cursor=-3", 400, "value"},
		{"patient=alice", 400, "value"},
		{"patient=" + alice + "&patient=" + bob, 400, "invalid"},
		{"agent=Ada%20Hospital", 400, "value"},
		{"agent=Practitioner/1", 400, "value"},
		{"subject=" + alice, 400, "not-supported"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent?" + tt.query, role: api.RolePrivacyOfficer}), tt.status, tt.code)
		})
	}
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent?patient=" + alice}), http.StatusUnauthorized, "login")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent?patient=" + alice, role: api.RoleClinician}), http.StatusForbidden, "forbidden")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent?patient=" + alice, token: "not-a-token"}), http.StatusUnauthorized, "login")
	if n := e.f.count("AuditEvents"); n != 0 {
		t.Errorf("bad searches reached the chain %d times", n)
	}
}

// GET /audit/events is the chain's page as JSON, the filter passed as given.
func TestAuditEventsJSON(t *testing.T) {
	e := newEnv(t, api.Config{})
	log := seedLog(t, e.f)
	res := e.do(req{method: "GET", role: api.RoleAdmin,
		path: "/audit/events?patient=" + alice + "&hospital=city&kind=access-denied&from=2026-01-01&to=2026-01-31&before=9&limit=10"})
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %s", res.status, res.header.Get("Content-Type"), res.body)
	}
	var page consent.AuditPage
	decode(t, res.body, &page)
	if !slices.Equal(ids(page.Events), []uint64{6}) || page.Next != 0 {
		t.Errorf("page %+v, want event 6 only", page)
	}
	want := consent.AuditFilter{Patient: alice, Hospital: "city", Kind: consent.AuditAccessDenied, Before: 9, Limit: 10,
		From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), To: time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC).Unix()}
	if got := e.f.lastFilter(); got != want {
		t.Errorf("filter\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(page.Events[0], log[6]) {
		t.Errorf("event %+v, want %+v", page.Events[0], log[6])
	}

	res = e.do(req{method: "GET", path: "/audit/events?limit=3", role: api.RolePrivacyOfficer})
	decode(t, res.body, &page)
	if !slices.Equal(ids(page.Events), []uint64{11, 10, 9}) || page.Next != 9 {
		t.Errorf("first page %v next %d, want [11 10 9] next 9", ids(page.Events), page.Next)
	}
	res = e.do(req{method: "GET", path: "/audit/events?limit=3&before=9&to=2026-01-20T10:00:00Z", role: api.RolePrivacyOfficer})
	decode(t, res.body, &page)
	if !slices.Equal(ids(page.Events), []uint64{7, 6, 5}) {
		t.Errorf("second page %v, want [7 6 5]", ids(page.Events))
	}

	for _, q := range []string{"from=ge2026-01-01", "from=soon", "from=2026-02-01&to=2026-01-01", "limit=1000", "before=x",
		"hospital=City!", "kind=denied", "to=1969", "from=2026-01-01&from=2026-02-01"} {
		code := "value"
		if strings.Contains(q, "&from") {
			code = "invalid"
		}
		wantOutcome(t, e.do(req{method: "GET", path: "/audit/events?" + q, role: api.RoleAdmin}), http.StatusBadRequest, code)
	}
	wantOutcome(t, e.do(req{method: "GET", path: "/audit/events?patient=" + alice + "&format=csv", role: api.RoleAdmin}), http.StatusBadRequest, "not-supported")
	wantOutcome(t, e.do(req{method: "GET", path: "/audit/events", role: api.RoleClinician}), http.StatusForbidden, "forbidden")
	wantOutcome(t, e.do(req{method: "GET", path: "/audit/events"}), http.StatusUnauthorized, "login")
}

// The accounting reads every page of the patient's six years, and lists exactly the
// key releases to hospitals outside the record's custodians.
func TestAccountingEndpoint(t *testing.T) {
	e := newEnv(t, api.Config{})
	now := time.Now().UTC().Truncate(time.Second)
	ago := func(d time.Duration) int64 { return now.Add(-d).Unix() }
	year := 365 * 24 * time.Hour
	c := e.f.chain
	// access has hospital h request recA for p one second before sec and its
	// custodian release the key at sec (or has h break the glass).
	access := func(h consent.HospitalID, p consent.Purpose, record consent.RecordID, sec int64) consent.GrantID {
		t.Helper()
		e.f.at(sec - 1)
		d := must(c.Request(h, record, p))
		if !d.Granted {
			t.Fatalf("%s for %s denied: %s", h, p, d.Reason)
		}
		rec := must(c.Record(record))
		ok(t, c.Release(rec.Custodians[0], d.ID))
		return d.ID
	}
	e.f.at(ago(8 * year))
	e.f.register(t, "ada", alice, recA)
	e.f.register(t, "city", bob, recB)
	aliceConsent := must(c.Grant(aliceKey, permits("bayside", "TREAT", "city", "HPAYMT", "ada", "TREAT")))
	must(c.Grant(bobKey, permits("bayside", "TREAT")))
	access("bayside", "TREAT", recA, ago(7*year))         // too old
	toCity := access("city", "HPAYMT", recA, ago(5*year)) // row 1
	access("ada", "TREAT", recA, ago(5*year-time.Hour))   // to the custodian itself
	for i := range 1100 {                                 // enough of alice's events for three pages
		e.f.at(ago(2*year - time.Duration(i)*time.Minute))
		if d := must(c.Request("city", recA, "TREAT")); d.Granted {
			t.Fatal("city was granted TREAT")
		}
	}
	emergencyTime := ago(30 * 24 * time.Hour)
	e.f.at(emergencyTime)
	emergency := must(c.Emergency("bayside", recA, "unconscious-patient"))
	e.f.at(emergencyTime + 2)
	ok(t, c.Release("ada", emergency.ID))            // row 2
	access("bayside", "TREAT", recB, ago(time.Hour)) // bob's
	log := e.f.fullLog(t)
	relIndex := func(g consent.GrantID) uint64 {
		i := slices.IndexFunc(log, func(e consent.AuditEvent) bool { return e.Kind == consent.AuditKeyReleased && e.Grant == g })
		return log[i].Index
	}

	res := e.do(req{method: "GET", path: "/audit/accounting?patient=" + alice, role: api.RolePrivacyOfficer})
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d: %s", res.status, res.body)
	}
	var rep struct {
		Patient, Generated, Since string
		Disclosures               []auditor.Disclosure
	}
	decode(t, res.body, &rep)
	want := []auditor.Disclosure{
		{Date: time.Unix(ago(5*year), 0).UTC(), RecipientName: "City Hospital", Recipient: "city", Description: "Condition, Observation",
			Classes: []consent.DataClass{"Condition", "Observation"}, Statement: "payment", Purpose: "HPAYMT",
			CustodianName: "St Ada Infirmary", Custodian: "ada", Record: recA, Grant: toCity, Consent: aliceConsent, Event: relIndex(toCity)},
		{Date: time.Unix(emergencyTime+2, 0).UTC(), RecipientName: "Bayside General", Recipient: "bayside", Description: "Condition, Observation",
			Classes: []consent.DataClass{"Condition", "Observation"}, Statement: "emergency treatment (break-glass reason: unconscious-patient)",
			Purpose: "ETREAT", Emergency: "unconscious-patient", CustodianName: "St Ada Infirmary", Custodian: "ada", Record: recA,
			Grant: emergency.ID, Event: relIndex(emergency.ID)},
	}
	if rep.Patient != alice || !reflect.DeepEqual(rep.Disclosures, want) {
		t.Errorf("accounting %s\n got %+v\nwant %+v", rep.Patient, rep.Disclosures, want)
	}
	gen, err1 := time.Parse(time.RFC3339, rep.Generated)
	since, err2 := time.Parse(time.RFC3339, rep.Since)
	if err1 != nil || err2 != nil || !since.Equal(gen.AddDate(-6, 0, 0)) {
		t.Errorf("generated %s since %s: want six years apart", rep.Generated, rep.Since)
	}
	var pages, registrations int
	for _, f := range e.f.filtersAsked() {
		switch {
		case f.Patient != alice:
		case f.Kind == consent.AuditRecordRegistered: // who registered each record, however long ago
			registrations++
			if f.From != 0 {
				t.Errorf("registrations filter %+v: want no lower bound", f)
			}
		default:
			pages++
			if f.Limit != consent.MaxAuditLimit || f.From > ago(6*year) || f.From < ago(6*year+48*time.Hour) {
				t.Errorf("page filter %+v: want the largest pages from about six years ago", f)
			}
		}
	}
	if pages != 3 || registrations != 1 {
		t.Errorf("%d pages read, want 3 (1106 events of alice in the window); %d of registrations, want 1", pages, registrations)
	}

	res = e.do(req{method: "GET", path: "/audit/accounting?patient=Patient/" + alice + "&format=csv", role: api.RoleAdmin})
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", res.status, res.header.Get("Content-Type"))
	}
	if cd := res.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="accounting-`+alice[:16]+"-") {
		t.Errorf("Content-Disposition %q", cd)
	}
	var csvWant bytes.Buffer
	auditor.WriteCSV(&csvWant, want)
	if !bytes.Equal(res.body, csvWant.Bytes()) {
		t.Errorf("csv\n%s\nwant\n%s", res.body, csvWant.Bytes())
	}

	wantOutcome(t, e.do(req{method: "GET", path: "/audit/accounting", role: api.RoleAdmin}), http.StatusBadRequest, "required")
	wantOutcome(t, e.do(req{method: "GET", path: "/audit/accounting?patient=" + alice + "&format=xml", role: api.RoleAdmin}), http.StatusBadRequest, "value")
	wantOutcome(t, e.do(req{method: "GET", path: "/audit/accounting?patient=x", role: api.RoleAdmin}), http.StatusBadRequest, "value")
	wantOutcome(t, e.do(req{method: "GET", path: "/audit/accounting?patient=" + strings.Repeat("c", 64), role: api.RoleAdmin}), http.StatusNotFound, "not-found")
	wantOutcome(t, e.do(req{method: "GET", path: "/audit/accounting?patient=" + alice, role: api.RoleClinician}), http.StatusForbidden, "forbidden")
	wantOutcome(t, e.do(req{method: "GET", path: "/audit/accounting?patient=" + alice}), http.StatusUnauthorized, "login")
}

// seedEmergencies commits four emergency accesses by this node's hospital to alice's
// record, g[1] the newest and g[4] the oldest; ada, the custodian, reviews g[1] and
// g[3].
func seedEmergencies(t *testing.T, f *fake) []consent.GrantID {
	t.Helper()
	f.register(t, "ada", alice, recA)
	g := make([]consent.GrantID, 5)
	for i := 4; i >= 1; i-- {
		g[i] = must(f.chain.Emergency("bayside", recA, "life-threatening")).ID
	}
	for _, i := range []int{1, 3} {
		_, _, err := f.chain.Review("ada", g[i], "justified")
		ok(t, err)
	}
	return g
}

// queue is GET /audit/emergencies: the number unreviewed, and the grants in order.
func (e *env) queue() (int, []consent.GrantID) {
	e.t.Helper()
	res := e.do(req{method: "GET", path: "/audit/emergencies", role: api.RoleAdmin})
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
		e.t.Fatalf("%d: %s", res.status, res.body)
	}
	var q struct {
		Unreviewed  int
		Emergencies []api.Emergency
	}
	decode(e.t, res.body, &q)
	var gs []consent.GrantID
	for _, x := range q.Emergencies {
		gs = append(gs, x.Decision.ID)
	}
	return q.Unreviewed, gs
}

// reversedQueue is a node that lists the emergencies in the reverse of the chain's
// order.
type reversedQueue struct{ *fake }

func (r reversedQueue) Emergencies(ctx context.Context) ([]api.Emergency, error) {
	l, err := r.fake.Emergencies(ctx)
	slices.Reverse(l)
	return l, err
}

// The API lists the unreviewed first whatever order the node gives, keeping the
// node's order within each group.
func TestEmergencyQueueOrder(t *testing.T) {
	e := newEnvWith(t, api.Config{}, func(f *fake) api.Backend { return reversedQueue{f} })
	g := seedEmergencies(t, e.f)
	if n, gs := e.queue(); n != 2 || !slices.Equal(gs, []consent.GrantID{g[4], g[2], g[3], g[1]}) {
		t.Errorf("queue: %d unreviewed, %v; want 2, unreviewed first", n, gs)
	}
}

func TestEmergencyQueue(t *testing.T) {
	e := newEnv(t, api.Config{})
	g := seedEmergencies(t, e.f)
	queue := e.queue
	if n, gs := queue(); n != 2 || !slices.Equal(gs, []consent.GrantID{g[2], g[4], g[1], g[3]}) {
		t.Errorf("queue: %d unreviewed, %v; want 2, unreviewed first", n, gs)
	}

	body := `{"resourceType":"Parameters","parameter":[{"name":"outcome","valueCode":"unjustified"}]}`
	res := e.do(req{method: "POST", path: "/audit/emergencies/" + string(g[2]) + "/$review", role: api.RolePrivacyOfficer, body: strings.NewReader(body)})
	if res.status != http.StatusOK {
		t.Fatalf("review: %d %s", res.status, res.body)
	}
	var rv struct {
		Grant, Outcome, Tx string
		Height             int64
	}
	decode(t, res.body, &rv)
	if rv.Grant != string(g[2]) || rv.Outcome != "unjustified" || len(rv.Tx) != 32 || rv.Height != int64(e.f.chain.Height()) {
		t.Errorf("review answer %+v", rv)
	}
	if res := e.do(req{method: "POST", path: "/audit/emergencies/" + string(g[4]) + "/$review?outcome=referred", role: api.RolePrivacyOfficer}); res.status != http.StatusOK {
		t.Errorf("review by query: %d %s", res.status, res.body)
	}
	if n, gs := queue(); n != 0 || !slices.Equal(gs, []consent.GrantID{g[1], g[2], g[3], g[4]}) {
		t.Errorf("after reviews: %d unreviewed, %v", n, gs)
	}

	before := e.f.mutations()
	review := func(grant, query, body string, role api.Role) response {
		var b *strings.Reader
		r := req{method: "POST", path: "/audit/emergencies/" + grant + "/$review" + query, role: role}
		if body != "" {
			b = strings.NewReader(body)
			r.body = b
		}
		return e.do(r)
	}
	wantOutcome(t, review(string(g[4]), "?outcome=fine", "", api.RolePrivacyOfficer), http.StatusBadRequest, "value")
	wantOutcome(t, review(string(g[4]), "", "", api.RolePrivacyOfficer), http.StatusBadRequest, "required")
	wantOutcome(t, review(string(g[4]), "?outcome=justified", body, api.RolePrivacyOfficer), http.StatusBadRequest, "invalid")
	wantOutcome(t, review(string(g[4]), "", `{"resourceType":"Parameters","parameter":[{"name":"verdict","valueCode":"justified"}]}`,
		api.RolePrivacyOfficer), http.StatusBadRequest, "not-supported")
	wantOutcome(t, review(string(g[4]), "?outcome=justified&note=x", "", api.RolePrivacyOfficer), http.StatusBadRequest, "not-supported")
	wantOutcome(t, review("xyz", "?outcome=justified", "", api.RolePrivacyOfficer), http.StatusBadRequest, "value")
	wantOutcome(t, review(string(g[4]), "?outcome=justified", "", api.RoleAdmin), http.StatusForbidden, "forbidden")
	wantOutcome(t, review(string(g[4]), "?outcome=justified", "", ""), http.StatusUnauthorized, "login")
	if n := e.f.mutations(); n != before {
		t.Errorf("bad reviews reached the backend: %d calls", n-before)
	}
	wantOutcome(t, review(string(g[4]), "?outcome=justified", "", api.RolePrivacyOfficer), http.StatusConflict, "duplicate")
	wantOutcome(t, review(string(gid(9)), "?outcome=justified", "", api.RolePrivacyOfficer), http.StatusNotFound, "not-found")
	wantOutcome(t, e.do(req{method: "GET", path: "/audit/emergencies", role: api.RoleClinician}), http.StatusForbidden, "forbidden")
}

// The CapabilityStatement declares the AuditEvent search and its parameters.
func TestMetadataAuditEvent(t *testing.T) {
	e := newEnv(t, api.Config{})
	res := e.do(req{method: "GET", path: "/fhir/metadata"})
	wantResource(t, res, http.StatusOK, "CapabilityStatement")
	var cs struct {
		Rest []struct {
			Resource []struct {
				Type        string
				SearchParam []struct{ Name, Type string }
			}
		}
	}
	decode(t, res.body, &cs)
	var params []string
	for _, r := range cs.Rest[0].Resource {
		if r.Type == "AuditEvent" {
			for _, p := range r.SearchParam {
				params = append(params, p.Name+":"+p.Type)
			}
		}
	}
	if want := []string{"patient:reference", "agent:reference", "date:date", "kind:token"}; !slices.Equal(params, want) {
		t.Errorf("AuditEvent search params %v, want %v", params, want)
	}
}
