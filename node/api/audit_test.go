package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/audit"
)

const bob = "b0b0000000000000000000000000000000000000000000000000000000000b0b"

var (
	recA = consent.RecordID(strings.Repeat("1", 32)) // alice's, held by ada
	recB = consent.RecordID(strings.Repeat("2", 32)) // bob's, held by city
)

func gid(n int) consent.GrantID   { return consent.GrantID(fmt.Sprintf("%032x", n)) }
func cid(n int) consent.ConsentID { return consent.ConsentID(fmt.Sprintf("c%031x", n)) }
func jan(day int, sec int) int64  { return time.Date(2026, 1, day, 10, 0, sec, 0, time.UTC).Unix() }
func ids(es []consent.AuditEvent) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.Index)
	}
	return out
}

// seedLog writes ten events: alice's record registered, consented, read by bayside,
// denied to city, broken into by city (released and reviewed), revoked; and one read
// of bob's.
func seedLog(f *fake) []consent.AuditEvent {
	ada := []consent.HospitalID{"ada"}
	return f.addEvents(
		consent.AuditEvent{Kind: consent.AuditRecordRegistered, Patient: alice, Record: recA, Hospital: "ada", Custodians: ada, Time: jan(1, 0)},
		consent.AuditEvent{Kind: consent.AuditConsentGranted, Patient: alice, Consent: cid(1), Time: jan(2, 0)},
		consent.AuditEvent{Kind: consent.AuditAccessGranted, Patient: alice, Record: recA, Hospital: "bayside", Custodians: ada,
			Purpose: "TREAT", Consent: cid(1), Grant: gid(1), Time: jan(3, 0)},
		consent.AuditEvent{Kind: consent.AuditKeyReleased, Patient: alice, Record: recA, Hospital: "ada", Recipient: "bayside",
			Purpose: "TREAT", Consent: cid(1), Grant: gid(1), Time: jan(3, 1)},
		consent.AuditEvent{Kind: consent.AuditAccessDenied, Patient: alice, Record: recA, Hospital: "city", Custodians: ada,
			Purpose: "HPAYMT", Grant: gid(2), Reason: consent.ReasonNoConsent, Time: jan(10, 0)},
		consent.AuditEvent{Kind: consent.AuditEmergency, Patient: alice, Record: recA, Hospital: "city", Custodians: ada,
			Purpose: "ETREAT", Grant: gid(3), Reason: "life-threatening", Time: jan(20, 0)},
		consent.AuditEvent{Kind: consent.AuditKeyReleased, Patient: alice, Record: recA, Hospital: "ada", Recipient: "city",
			Purpose: "ETREAT", Grant: gid(3), Time: jan(20, 1)},
		consent.AuditEvent{Kind: consent.AuditAccessGranted, Patient: bob, Record: recB, Hospital: "bayside",
			Custodians: []consent.HospitalID{"city"}, Purpose: "TREAT", Consent: cid(2), Grant: gid(4), Time: jan(25, 0)},
		consent.AuditEvent{Kind: consent.AuditEmergencyReviewed, Patient: alice, Record: recA, Hospital: "ada", Custodians: ada,
			Grant: gid(3), Reason: "justified", Time: time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC).Unix()},
		consent.AuditEvent{Kind: consent.AuditConsentRevoked, Patient: alice, Consent: cid(1), Time: time.Date(2026, 2, 2, 9, 0, 0, 0, time.UTC).Unix()},
	)
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
	seedLog(e.f)
	tests := []struct {
		query string
		want  []uint64
	}{
		{"patient=" + alice, []uint64{9, 8, 6, 5, 4, 3, 2, 1, 0}},
		{"patient=Patient/" + alice + "&kind=access-denied", []uint64{4}},
		{"kind=emergency-access", []uint64{5}},
		{"kind=emergency-reviewed", []uint64{8}},
		{"agent=city", []uint64{7, 6, 5, 4}},
		{"agent=Organization/city&patient=" + alice, []uint64{6, 5, 4}},
		{"date=ge2026-01-10&date=le2026-01-20", []uint64{6, 5, 4}},
		{"date=2026-01-03", []uint64{3, 2}},
		{"date=gt2026-01-20", []uint64{9, 8, 7}},
		{"date=lt2026-01-03", []uint64{1, 0}},
		{"date=2026-02", []uint64{9, 8}},
		{"date=eq2026", []uint64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{"date=ge2026-01-20T10:00:01Z", []uint64{9, 8, 7, 6}},
		{"date=gt2026-01-20T10:00:01Z", []uint64{9, 8, 7}},
		{"date=lt2026-01-20T10:00:00Z", []uint64{4, 3, 2, 1, 0}},
		{"date=2026-01-20T10:00:01Z", []uint64{6}},
		{"date=le2026-01-20T11:00:00%2B01:00", []uint64{5, 4, 3, 2, 1, 0}},
		{"date=ge2026-01-20T10:00:00.5Z", []uint64{9, 8, 7, 6}},
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
	if got := e.f.filters[len(e.f.filters)-1]; got != want {
		t.Errorf("filter\n got %+v\nwant %+v", got, want)
	}
}

// The BALP shape survives the API: the emergency is a Security Alert with DCM 110127
// and ETREAT; names come from the registry.
func TestAuditEventShape(t *testing.T) {
	e := newEnv(t, api.Config{})
	seedLog(e.f)
	res := e.do(req{method: "GET", path: "/fhir/AuditEvent/5", role: api.RoleAdmin})
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
	if ae.ID != "5" || ae.Type.Code != "110113" || len(ae.Subtype) != 1 || ae.Subtype[0].Code != "110127" ||
		ae.PurposeOfEvent[0].Coding[0].Code != "ETREAT" || ae.Agent[0].Who.Display != "City Hospital" {
		t.Errorf("emergency export: %s", res.body)
	}
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent/10", role: api.RoleAdmin}), http.StatusNotFound, "not-found")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent/x", role: api.RoleAdmin}), http.StatusBadRequest, "value")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent/18446744073709551615", role: api.RoleAdmin}), http.StatusBadRequest, "value")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/AuditEvent/5", role: api.RoleClinician}), http.StatusForbidden, "forbidden")
}

// Pages follow the next link to the end: every event once, newest first.
func TestAuditEventPaging(t *testing.T) {
	e := newEnv(t, api.Config{})
	seedLog(e.f)
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
	if want := []uint64{9, 8, 6, 5, 4, 3, 2, 1, 0}; !slices.Equal(all, want) {
		t.Errorf("all pages: %v, want %v", all, want)
	}
	if !slices.Equal(cursors, []string{"5", "1"}) {
		t.Errorf("cursors %v, want [5 1]", cursors)
	}
}

func TestAuditEventSearchErrors(t *testing.T) {
	e := newEnv(t, api.Config{})
	seedLog(e.f)
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
	if n := e.f.calls["AuditEvents"]; n != 0 {
		t.Errorf("bad searches reached the chain %d times", n)
	}
}

// GET /audit/events is the chain's page as JSON, the filter passed as given.
func TestAuditEventsJSON(t *testing.T) {
	e := newEnv(t, api.Config{})
	seedLog(e.f)
	res := e.do(req{method: "GET", role: api.RoleAdmin,
		path: "/audit/events?patient=" + alice + "&hospital=city&kind=access-denied&from=2026-01-01&to=2026-01-31&before=9&limit=10"})
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %s", res.status, res.header.Get("Content-Type"), res.body)
	}
	var page consent.AuditPage
	decode(t, res.body, &page)
	if !slices.Equal(ids(page.Events), []uint64{4}) || page.Next != 0 {
		t.Errorf("page %+v, want event 4 only", page)
	}
	want := consent.AuditFilter{Patient: alice, Hospital: "city", Kind: consent.AuditAccessDenied, Before: 9, Limit: 10,
		From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), To: time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC).Unix()}
	if got := e.f.filters[len(e.f.filters)-1]; got != want {
		t.Errorf("filter\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(page.Events[0], e.f.events[4]) {
		t.Errorf("event %+v, want %+v", page.Events[0], e.f.events[4])
	}

	res = e.do(req{method: "GET", path: "/audit/events?limit=3", role: api.RolePrivacyOfficer})
	decode(t, res.body, &page)
	if !slices.Equal(ids(page.Events), []uint64{9, 8, 7}) || page.Next != 7 {
		t.Errorf("first page %v next %d, want [9 8 7] next 7", ids(page.Events), page.Next)
	}
	res = e.do(req{method: "GET", path: "/audit/events?limit=3&before=7&to=2026-01-20T10:00:00Z", role: api.RolePrivacyOfficer})
	decode(t, res.body, &page)
	if !slices.Equal(ids(page.Events), []uint64{5, 4, 3}) {
		t.Errorf("second page %v, want [5 4 3]", ids(page.Events))
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
	e.f.records[recA] = &stored{rec: consent.Record{ID: recA, Patient: alice, Classes: []consent.DataClass{"Condition", "Observation"},
		Custodians: []consent.HospitalID{"ada"}}}
	release := func(to consent.HospitalID, p consent.Purpose, g int, at int64) consent.AuditEvent {
		return consent.AuditEvent{Kind: consent.AuditKeyReleased, Patient: alice, Record: recA, Hospital: "ada", Recipient: to,
			Purpose: p, Consent: cid(1), Grant: gid(g), Time: at}
	}
	events := []consent.AuditEvent{
		release("bayside", "TREAT", 1, ago(7*year)),       // too old
		release("city", "HPAYMT", 2, ago(5*year)),         // row 1
		release("ada", "TREAT", 3, ago(5*year-time.Hour)), // to the custodian itself
	}
	for i := range 1100 { // enough of alice's events for three pages
		events = append(events, consent.AuditEvent{Kind: consent.AuditAccessDenied, Patient: alice, Record: recA, Hospital: "city",
			Custodians: []consent.HospitalID{"ada"}, Purpose: "TREAT", Grant: gid(1000 + i), Reason: consent.ReasonNoConsent,
			Time: ago(2*year - time.Duration(i)*time.Minute)})
	}
	emergency := consent.AuditEvent{Kind: consent.AuditEmergency, Patient: alice, Record: recA, Hospital: "bayside",
		Custodians: []consent.HospitalID{"ada"}, Purpose: "ETREAT", Grant: gid(4), Reason: "unconscious-patient", Time: ago(30 * 24 * time.Hour)}
	events = append(events, emergency, release("bayside", "ETREAT", 4, emergency.Time+2)) // row 2
	events = append(events, consent.AuditEvent{Kind: consent.AuditKeyReleased, Patient: bob, Record: recB, Hospital: "city",
		Recipient: "bayside", Purpose: "TREAT", Grant: gid(5), Time: ago(time.Hour)}) // bob's
	log := e.f.addEvents(events...)
	relIndex := func(g int) uint64 {
		i := slices.IndexFunc(log, func(e consent.AuditEvent) bool { return e.Kind == consent.AuditKeyReleased && e.Grant == gid(g) })
		return log[i].Index
	}

	res := e.do(req{method: "GET", path: "/audit/accounting?patient=" + alice, role: api.RolePrivacyOfficer})
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d: %s", res.status, res.body)
	}
	var rep struct {
		Patient, Generated, Since string
		Disclosures               []audit.Disclosure
	}
	decode(t, res.body, &rep)
	want := []audit.Disclosure{
		{Date: time.Unix(ago(5*year), 0).UTC(), RecipientName: "City Hospital", Recipient: "city", Description: "Condition, Observation",
			Classes: []consent.DataClass{"Condition", "Observation"}, Statement: "payment", Purpose: "HPAYMT",
			CustodianName: "St Ada Infirmary", Custodian: "ada", Record: recA, Grant: gid(2), Consent: cid(1), Event: relIndex(2)},
		{Date: time.Unix(emergency.Time+2, 0).UTC(), RecipientName: "Bayside General", Recipient: "bayside", Description: "Condition, Observation",
			Classes: []consent.DataClass{"Condition", "Observation"}, Statement: "emergency treatment (break-glass reason: unconscious-patient)",
			Purpose: "ETREAT", Emergency: "unconscious-patient", CustodianName: "St Ada Infirmary", Custodian: "ada", Record: recA,
			Grant: gid(4), Consent: cid(1), Event: relIndex(4)},
	}
	if rep.Patient != alice || !reflect.DeepEqual(rep.Disclosures, want) {
		t.Errorf("accounting %s\n got %+v\nwant %+v", rep.Patient, rep.Disclosures, want)
	}
	gen, err1 := time.Parse(time.RFC3339, rep.Generated)
	since, err2 := time.Parse(time.RFC3339, rep.Since)
	if err1 != nil || err2 != nil || !since.Equal(gen.AddDate(-6, 0, 0)) {
		t.Errorf("generated %s since %s: want six years apart", rep.Generated, rep.Since)
	}
	var pages int
	for _, f := range e.f.filters {
		if f.Patient == alice {
			pages++
			if f.Limit != consent.MaxAuditLimit || f.From > ago(6*year) || f.From < ago(6*year+48*time.Hour) {
				t.Errorf("page filter %+v: want the largest pages from about six years ago", f)
			}
		}
	}
	if pages != 3 {
		t.Errorf("%d pages read, want 3 (1105 events of alice in the window)", pages)
	}

	res = e.do(req{method: "GET", path: "/audit/accounting?patient=Patient/" + alice + "&format=csv", role: api.RoleAdmin})
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", res.status, res.header.Get("Content-Type"))
	}
	if cd := res.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="accounting-`+alice[:16]+"-") {
		t.Errorf("Content-Disposition %q", cd)
	}
	var csvWant bytes.Buffer
	audit.WriteCSV(&csvWant, want)
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

func TestEmergencyQueue(t *testing.T) {
	e := newEnv(t, api.Config{})
	em := func(g int, h consent.Height, rv *api.Review) api.Emergency {
		return api.Emergency{Decision: consent.Decision{ID: gid(g), Record: recA, Patient: alice, Requester: "city", Purpose: "ETREAT",
			Granted: true, Emergency: "life-threatening", Height: h}, Review: rv}
	}
	done := &api.Review{Outcome: "justified", Reviewer: "ada", Height: 12}
	// Out of order on purpose: the API lists the unreviewed first whatever it gets.
	e.f.emergencies = []api.Emergency{em(1, 10, done), em(2, 9, nil), em(3, 8, done), em(4, 7, nil)}
	queue := func() (int, []consent.GrantID) {
		t.Helper()
		res := e.do(req{method: "GET", path: "/audit/emergencies", role: api.RoleAdmin})
		if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%d: %s", res.status, res.body)
		}
		var q struct {
			Unreviewed  int
			Emergencies []api.Emergency
		}
		decode(t, res.body, &q)
		var gs []consent.GrantID
		for _, x := range q.Emergencies {
			gs = append(gs, x.Decision.ID)
		}
		return q.Unreviewed, gs
	}
	if n, gs := queue(); n != 2 || !slices.Equal(gs, []consent.GrantID{gid(2), gid(4), gid(1), gid(3)}) {
		t.Errorf("queue: %d unreviewed, %v; want 2, unreviewed first", n, gs)
	}

	body := `{"resourceType":"Parameters","parameter":[{"name":"outcome","valueCode":"unjustified"}]}`
	res := e.do(req{method: "POST", path: "/audit/emergencies/" + string(gid(2)) + "/$review", role: api.RolePrivacyOfficer, body: strings.NewReader(body)})
	if res.status != http.StatusOK {
		t.Fatalf("review: %d %s", res.status, res.body)
	}
	var rv struct {
		Grant, Outcome, Tx string
		Height             int64
	}
	decode(t, res.body, &rv)
	if rv.Grant != string(gid(2)) || rv.Outcome != "unjustified" || len(rv.Tx) != 32 || rv.Height != e.f.height {
		t.Errorf("review answer %+v", rv)
	}
	if res := e.do(req{method: "POST", path: "/audit/emergencies/" + string(gid(4)) + "/$review?outcome=referred", role: api.RolePrivacyOfficer}); res.status != http.StatusOK {
		t.Errorf("review by query: %d %s", res.status, res.body)
	}
	if n, gs := queue(); n != 0 || !slices.Equal(gs, []consent.GrantID{gid(1), gid(2), gid(3), gid(4)}) {
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
	wantOutcome(t, review(string(gid(4)), "?outcome=fine", "", api.RolePrivacyOfficer), http.StatusBadRequest, "value")
	wantOutcome(t, review(string(gid(4)), "", "", api.RolePrivacyOfficer), http.StatusBadRequest, "required")
	wantOutcome(t, review(string(gid(4)), "?outcome=justified", body, api.RolePrivacyOfficer), http.StatusBadRequest, "invalid")
	wantOutcome(t, review(string(gid(4)), "", `{"resourceType":"Parameters","parameter":[{"name":"verdict","valueCode":"justified"}]}`,
		api.RolePrivacyOfficer), http.StatusBadRequest, "not-supported")
	wantOutcome(t, review(string(gid(4)), "?outcome=justified&note=x", "", api.RolePrivacyOfficer), http.StatusBadRequest, "not-supported")
	wantOutcome(t, review("xyz", "?outcome=justified", "", api.RolePrivacyOfficer), http.StatusBadRequest, "value")
	wantOutcome(t, review(string(gid(4)), "?outcome=justified", "", api.RoleAdmin), http.StatusForbidden, "forbidden")
	wantOutcome(t, review(string(gid(4)), "?outcome=justified", "", ""), http.StatusUnauthorized, "login")
	if n := e.f.mutations(); n != before {
		t.Errorf("bad reviews reached the backend: %d calls", n-before)
	}
	wantOutcome(t, review(string(gid(4)), "?outcome=justified", "", api.RolePrivacyOfficer), http.StatusConflict, "duplicate")
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
