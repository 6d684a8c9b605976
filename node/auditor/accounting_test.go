package auditor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
)

// history scripts an access log: each event gets the next index and height, the
// given block time and a tx ID of its own.
type history struct{ events []consent.AuditEvent }

func (h *history) add(at string, e consent.AuditEvent) {
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		panic(err)
	}
	e.Index, e.Height, e.Time = uint64(len(h.events)), consent.Height(len(h.events)+1), t.Unix()
	if e.Tx == "" {
		e.Tx = consent.TxID(fmt.Sprintf("%032x", 0xf000+len(h.events)))
	}
	h.events = append(h.events, e)
}

func grant(n int) consent.GrantID      { return consent.GrantID(fmt.Sprintf("%032x", n)) }
func consentN(n int) consent.ConsentID { return consent.ConsentID(fmt.Sprintf("c%031x", n)) }

var (
	r1 = consent.RecordID(id32('1')) // alice's, held by ada
	r2 = consent.RecordID(id32('2')) // alice's, held by ada and city
	r3 = consent.RecordID(id32('3')) // bob's
	r9 = consent.RecordID(id32('9')) // alice's, unknown to the records given
)

var accountingRecords = map[consent.RecordID]consent.Record{
	r1: {ID: r1, Patient: alice, Classes: []consent.DataClass{"Condition", "Observation"}, Custodians: []consent.HospitalID{"ada"}},
	r2: {ID: r2, Patient: alice, Classes: []consent.DataClass{"MedicationRequest"}, Custodians: []consent.HospitalID{"ada", "city"}},
	r3: {ID: r3, Patient: bob, Classes: []consent.DataClass{"Observation"}, Custodians: []consent.HospitalID{"ada"}},
}

var accountingNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) // the window starts 2020-06-01T12:00:00Z

// scriptedHistory is alice's (and a little of bob's) life on the chain over seven
// years. The comment on each release says whether it is a disclosure to account for.
func scriptedHistory() []consent.AuditEvent {
	var h history
	ada := []consent.HospitalID{"ada"}
	adaCity := []consent.HospitalID{"ada", "city"}
	access := func(k consent.AuditKind, req consent.HospitalID, rec consent.RecordID, cust []consent.HospitalID, p consent.Purpose, g int, c consent.ConsentID, reason string) consent.AuditEvent {
		return consent.AuditEvent{Kind: k, Patient: alice, Record: rec, Hospital: req, Custodians: cust, Purpose: p,
			Consent: c, Grant: grant(g), Tx: consent.TxID(grant(g)), Reason: reason}
	}
	release := func(from, to consent.HospitalID, rec consent.RecordID, p consent.Purpose, g int, c consent.ConsentID) consent.AuditEvent {
		return consent.AuditEvent{Kind: consent.AuditKeyReleased, Patient: alice, Record: rec, Hospital: from, Recipient: to,
			Purpose: p, Consent: c, Grant: grant(g)}
	}
	h.add("2019-01-10T08:00:00Z", consent.AuditEvent{Kind: consent.AuditRecordRegistered, Patient: alice, Record: r1, Hospital: "ada", Custodians: ada}) // 0
	h.add("2019-02-01T09:00:00Z", consent.AuditEvent{Kind: consent.AuditConsentGranted, Patient: alice, Consent: consentN(1)})                           // 1
	h.add("2019-03-01T10:00:00Z", access(consent.AuditAccessGranted, "bayside", r1, ada, "TREAT", 1, consentN(1), ""))                                   // 2
	h.add("2019-03-01T10:00:05Z", release("ada", "bayside", r1, "TREAT", 1, consentN(1)))                                                                // 3: older than six years
	h.add("2020-06-01T11:59:59Z", access(consent.AuditAccessGranted, "bayside", r1, ada, "TREAT", 2, consentN(1), ""))                                   // 4
	h.add("2020-06-01T11:59:59Z", release("ada", "bayside", r1, "TREAT", 2, consentN(1)))                                                                // 5: one second too old
	h.add("2020-06-01T12:00:00Z", access(consent.AuditAccessGranted, "bayside", r1, ada, "TREAT", 3, consentN(1), ""))                                   // 6
	h.add("2020-06-01T12:00:00Z", release("ada", "bayside", r1, "TREAT", 3, consentN(1)))                                                                // 7: row A, on the window's first second
	h.add("2021-04-02T09:00:00Z", consent.AuditEvent{Kind: consent.AuditRecordRegistered, Patient: alice, Record: r2, Hospital: "ada", Custodians: adaCity})
	h.add("2022-01-15T14:00:00Z", access(consent.AuditAccessDenied, "city", r1, ada, "HPAYMT", 4, "", consent.ReasonNoConsent))         // 9: a denial
	h.add("2022-01-15T14:05:00Z", access(consent.AuditAccessGranted, "city", r1, ada, "HPAYMT", 5, consentN(1), ""))                    // 10: granted, never released
	h.add("2023-07-04T16:00:00Z", access(consent.AuditAccessGranted, "bayside", r2, adaCity, "HPAYMT", 6, consentN(2), ""))             // 11
	h.add("2023-07-04T16:00:02Z", release("ada", "bayside", r2, "HPAYMT", 6, consentN(2)))                                              // 12: row B
	h.add("2023-07-04T16:00:03Z", release("city", "bayside", r2, "HPAYMT", 6, consentN(2)))                                             // 13: row C, the other custodian's release
	h.add("2024-02-29T03:00:00Z", access(consent.AuditAccessGranted, "city", r2, adaCity, "TREAT", 7, consentN(2), ""))                 // 14
	h.add("2024-02-29T03:00:01Z", release("ada", "city", r2, "TREAT", 7, consentN(2)))                                                  // 15: city holds r2 already
	h.add("2025-01-01T00:00:00Z", access(consent.AuditEmergency, "dunmore", r1, ada, "ETREAT", 8, "", "life-threatening"))              // 16
	h.add("2025-01-01T00:00:04Z", release("ada", "dunmore", r1, "ETREAT", 8, ""))                                                       // 17: row D, break-glass
	h.add("2025-01-01T00:10:00Z", access(consent.AuditEmergency, "city", r1, ada, "ETREAT", 9, "", "unconscious-patient"))              // 18: never released
	h.add("2025-02-01T08:00:00Z", consent.AuditEvent{Kind: consent.AuditEmergencyReviewed, Patient: alice, Record: r1, Hospital: "ada", // 19
		Custodians: ada, Grant: grant(8), Reason: "justified"})
	h.add("2025-03-01T10:00:00Z", consent.AuditEvent{Kind: consent.AuditAccessGranted, Patient: bob, Record: r3, Hospital: "bayside", // 20
		Custodians: ada, Purpose: "TREAT", Consent: consentN(9), Grant: grant(10)})
	h.add("2025-03-01T10:00:01Z", consent.AuditEvent{Kind: consent.AuditKeyReleased, Patient: bob, Record: r3, Hospital: "ada", // 21: bob's
		Recipient: "bayside", Purpose: "TREAT", Consent: consentN(9), Grant: grant(10)})
	h.add("2025-05-05T05:05:05Z", release("ada", "bayside", r9, "HRESCH", 11, consentN(3)))                                         // 22: row E, a record the node cannot describe
	h.add("2025-06-01T00:00:00Z", consent.AuditEvent{Kind: consent.AuditConsentRevoked, Patient: alice, Consent: consentN(1)})      // 23
	h.add("2026-01-01T00:00:00Z", consent.AuditEvent{Kind: consent.AuditRecordErased, Patient: alice, Record: r1, Custodians: ada}) // 24
	h.add("2026-06-01T12:00:29Z", access(consent.AuditAccessGranted, "bayside", r2, adaCity, "TREAT", 12, consentN(2), ""))         // 25
	h.add("2026-06-01T12:00:30Z", release("ada", "bayside", r2, "TREAT", 12, consentN(2)))                                          // 26: row F, block time ahead of "now"
	return h.events
}

var accountingNames = map[consent.HospitalID]string{
	"ada": "St Ada Infirmary", "bayside": "Bayside General", "city": "City Hospital", // dunmore has no name
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The ground truth of the scripted history: six disclosures, written out.
var accountingTruth = []Disclosure{
	{Date: at("2020-06-01T12:00:00Z"), RecipientName: "Bayside General", Recipient: "bayside",
		Description: "Condition, Observation", Classes: []consent.DataClass{"Condition", "Observation"},
		Statement: "treatment", Purpose: "TREAT", CustodianName: "St Ada Infirmary", Custodian: "ada",
		Record: r1, Grant: grant(3), Consent: consentN(1), Event: 7},
	{Date: at("2023-07-04T16:00:02Z"), RecipientName: "Bayside General", Recipient: "bayside",
		Description: "MedicationRequest", Classes: []consent.DataClass{"MedicationRequest"},
		Statement: "payment", Purpose: "HPAYMT", CustodianName: "St Ada Infirmary", Custodian: "ada",
		Record: r2, Grant: grant(6), Consent: consentN(2), Event: 12},
	{Date: at("2023-07-04T16:00:03Z"), RecipientName: "Bayside General", Recipient: "bayside",
		Description: "MedicationRequest", Classes: []consent.DataClass{"MedicationRequest"},
		Statement: "payment", Purpose: "HPAYMT", CustodianName: "City Hospital", Custodian: "city",
		Record: r2, Grant: grant(6), Consent: consentN(2), Event: 13},
	{Date: at("2025-01-01T00:00:04Z"), RecipientName: "dunmore", Recipient: "dunmore",
		Description: "Condition, Observation", Classes: []consent.DataClass{"Condition", "Observation"},
		Statement: "emergency treatment (break-glass reason: life-threatening)", Purpose: "ETREAT", Emergency: "life-threatening",
		CustodianName: "St Ada Infirmary", Custodian: "ada", Record: r1, Grant: grant(8), Event: 17},
	{Date: at("2025-05-05T05:05:05Z"), RecipientName: "Bayside General", Recipient: "bayside",
		Description: "record 99999999999999999999999999999999 (its data classes are not known to this node)", Classes: []consent.DataClass{},
		Statement: "research", Purpose: "HRESCH", CustodianName: "St Ada Infirmary", Custodian: "ada",
		Record: r9, Grant: grant(11), Consent: consentN(3), Event: 22},
	{Date: at("2026-06-01T12:00:30Z"), RecipientName: "Bayside General", Recipient: "bayside",
		Description: "MedicationRequest", Classes: []consent.DataClass{"MedicationRequest"},
		Statement: "treatment", Purpose: "TREAT", CustodianName: "St Ada Infirmary", Custodian: "ada",
		Record: r2, Grant: grant(12), Consent: consentN(2), Event: 26},
}

// The accounting of the scripted history is its ground truth exactly: no row missing,
// none extra, in date order — whatever order the events come in, duplicates included.
func TestAccountingGroundTruth(t *testing.T) {
	events := scriptedHistory()
	newestFirst := slices.Clone(events)
	slices.Reverse(newestFirst)
	withDuplicates := append(slices.Clone(events), events[12], events[17], events[3])
	for name, in := range map[string][]consent.AuditEvent{"log order": events, "newest first": newestFirst, "duplicates": withDuplicates} {
		t.Run(name, func(t *testing.T) {
			got := Accounting(alice, in, accountingRecords, accountingNames, accountingNow)
			if len(got) != len(accountingTruth) {
				t.Errorf("%d rows, want %d", len(got), len(accountingTruth))
			}
			for i := range max(len(got), len(accountingTruth)) {
				switch {
				case i >= len(got):
					t.Errorf("missing row %d: %+v", i, accountingTruth[i])
				case i >= len(accountingTruth):
					t.Errorf("extra row %d: %+v", i, got[i])
				case !reflect.DeepEqual(got[i], accountingTruth[i]):
					t.Errorf("row %d\n got %+v\nwant %+v", i, got[i], accountingTruth[i])
				}
			}
		})
	}
}

// Bob's accounting holds his one disclosure; a patient with no releases gets no rows
// (an empty list, not nil, so JSON says []).
func TestAccountingOtherPatients(t *testing.T) {
	got := Accounting(bob, scriptedHistory(), accountingRecords, accountingNames, accountingNow)
	if len(got) != 1 || got[0].Event != 21 || got[0].Recipient != "bayside" || got[0].Description != "Observation" {
		t.Errorf("bob's accounting %+v, want the release at index 21", got)
	}
	none := Accounting(consent.PatientID(strings.Repeat("c", 64)), scriptedHistory(), accountingRecords, accountingNames, accountingNow)
	if none == nil || len(none) != 0 {
		t.Errorf("accounting of a patient with no releases: %#v, want empty", none)
	}
}

// The window moves with "now": a year later, row A is out.
func TestAccountingWindow(t *testing.T) {
	if got := Since(accountingNow); !got.Equal(at("2020-06-01T12:00:00Z")) {
		t.Errorf("Since %v, want 2020-06-01T12:00:00Z", got)
	}
	later := Accounting(alice, scriptedHistory(), accountingRecords, accountingNames, accountingNow.AddDate(1, 0, 0))
	if len(later) != len(accountingTruth)-1 || later[0].Event != 12 {
		t.Errorf("a year later: %d rows starting at %d, want %d starting at 12", len(later), later[0].Event, len(accountingTruth)-1)
	}
}

// The CSV of the ground truth, byte for byte.
func TestWriteCSVGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, accountingTruth); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "accounting.csv"), b.Bytes())
	b.Reset()
	if err := WriteCSV(&b, nil); err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(csvHeader, ",") + "\r\n"; b.String() != want {
		t.Errorf("empty accounting %q, want the header only", b.String())
	}
}

// A registry name that a spreadsheet would run as a formula is defused.
func TestWriteCSVFormula(t *testing.T) {
	d := accountingTruth[0]
	d.RecipientName = "=HYPERLINK(\"http://x\")"
	var b bytes.Buffer
	if err := WriteCSV(&b, []Disclosure{d}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"'=HYPERLINK(""http://x"")"`) {
		t.Errorf("formula not defused:\n%s", b.String())
	}
}

// The JSON names are the CSV's columns (plus the data classes as a list).
func TestDisclosureJSONNames(t *testing.T) {
	b, err := json.Marshal(accountingTruth[3]) // every field set
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	want := append(slices.Clone(csvHeader), "classes")
	slices.Sort(keys)
	slices.Sort(want)
	want = slices.DeleteFunc(want, func(k string) bool { return k == "consent" }) // an emergency has none
	if !slices.Equal(keys, want) {
		t.Errorf("JSON names %v, want %v", keys, want)
	}
}

func TestPurposeStatements(t *testing.T) {
	for _, p := range consent.Purposes() {
		if _, ok := purposeStatements[p]; !ok {
			t.Errorf("purpose %s has no statement", p)
		}
	}
	if got := PurposeStatement("NEWCODE"); got != "purpose NEWCODE" {
		t.Errorf("unknown purpose: %q", got)
	}
}

// A record in threshold custody: its custodians hold shares, not the key, so a release
// to a custodian is a disclosure — each custodian's release its own row, a custodian's
// release to itself none — while the hospital that registered it had the plaintext, so
// releases to it are none. Without its registration among the events, a release to it
// is listed (the accounting errs on the side of disclosure).
func TestAccountingThreshold(t *testing.T) {
	r4 := consent.RecordID(id32('4'))
	records := map[consent.RecordID]consent.Record{r4: {ID: r4, Patient: alice, Classes: []consent.DataClass{"Observation"},
		Custodians: []consent.HospitalID{"ada", "bayside", "city"}, Threshold: 2, Commitments: consent.Hex{1}}}
	release := func(from, to consent.HospitalID, g int) consent.AuditEvent {
		return consent.AuditEvent{Kind: consent.AuditKeyReleased, Patient: alice, Record: r4, Hospital: from, Recipient: to,
			Purpose: "TREAT", Consent: consentN(1), Grant: grant(g)}
	}
	var h history
	h.add("2025-01-01T00:00:00Z", consent.AuditEvent{Kind: consent.AuditRecordRegistered, Patient: alice, Record: r4, Hospital: "ada",
		Custodians: records[r4].Custodians}) // 0
	h.add("2025-02-01T00:00:00Z", release("ada", "bayside", 1))     // 1: a row
	h.add("2025-02-01T00:00:00Z", release("bayside", "bayside", 1)) // 2: its own share
	h.add("2025-02-01T00:00:01Z", release("city", "bayside", 1))    // 3: a row
	h.add("2025-03-01T00:00:00Z", release("bayside", "ada", 2))     // 4: ada registered it
	h.add("2025-03-01T00:00:00Z", release("city", "ada", 2))        // 5: likewise
	h.add("2025-04-01T00:00:00Z", release("ada", "dunmore", 3))     // 6: a row
	rows := Accounting(alice, h.events, records, accountingNames, accountingNow)
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%d %s>%s", r.Event, r.Custodian, r.Recipient))
	}
	if want := []string{"1 ada>bayside", "3 city>bayside", "6 ada>dunmore"}; !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	rows = Accounting(alice, h.events[1:], records, accountingNames, accountingNow)
	if len(rows) != 5 {
		t.Errorf("without the registration: %d rows, want 5 (the releases to ada listed)", len(rows))
	}

	// 1 of 2: every share is the key, so each custodian holds the plaintext.
	one := records[r4]
	one.Custodians, one.Threshold = []consent.HospitalID{"ada", "bayside"}, 1
	rows = Accounting(alice, h.events[1:], map[consent.RecordID]consent.Record{r4: one}, accountingNames, accountingNow)
	got = nil
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%d %s>%s", r.Event, r.Custodian, r.Recipient))
	}
	if want := []string{"6 ada>dunmore"}; !slices.Equal(got, want) {
		t.Errorf("1-of-2 rows %v, want %v", got, want)
	}
}
