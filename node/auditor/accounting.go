package auditor

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medledger/medledger/consent"
)

// The HIPAA accounting of disclosures (45 CFR 164.528): for each disclosure of a
// patient's PHI in the six years before the request, its date, the recipient's name,
// a brief description of the PHI disclosed and a brief statement of the purpose.
//
// The rule, from the chain's log (Accounting applies it):
//
//   - A disclosure is a key release (consent.AuditKeyReleased): the moment a custodian
//     made the record's plaintext obtainable by the recipient. A grant without a
//     release discloses nothing (the requester never got the key), nor does a denial,
//     a consent change, a registration or an erasure.
//   - Emergency (break-glass) accesses are disclosures when their key was released,
//     like any other grant; their rows carry the break-glass reason.
//   - The recipient must not hold the record's plaintext already: a release to the
//     releasing custodian itself, to a custodian of a whole-key record (it holds the
//     key; so does each custodian of a 1-of-r record), or to the hospital that
//     registered a record in threshold custody (it had the plaintext at ingest)
//     discloses nothing new. A custodian of a k-of-r record (k ≥ 2) holds one share,
//     not the key: a release to it is a disclosure. Hospital IDs are not reused (the
//     chain retires a leaver's), so an ID names one hospital throughout the log.
//   - Every release is a row: two custodians releasing the key (or their shares of it)
//     for one grant are two disclosures, each custodian's own (each is a covered
//     entity accounting for its disclosures).
//   - Disclosures for treatment, payment and health care operations are listed too:
//     §164.528(a)(1)(i) would exempt them, but the patient is shown everything the
//     chain knows (as HITECH §13405(c) intends for electronic records).
//   - The window is six years back from the request (§164.528(a)(3)): a release at or
//     after now minus six years is listed. There is no upper bound, so a release in a
//     block whose time runs a little ahead of this node's clock is not lost.
//   - Rows are in date order (oldest first), then log order.

// Report is an accounting as JSON: whose, when, its window and its rows.
type Report struct {
	Patient     consent.PatientID `json:"patient"`
	Generated   string            `json:"generated"` // RFC 3339
	Since       string            `json:"since"`     // the window's start: six years before Generated
	Disclosures []Disclosure      `json:"disclosures"`
}

// NewReport wraps rows made at now.
func NewReport(patient consent.PatientID, rows []Disclosure, now time.Time) Report {
	return Report{Patient: patient, Generated: now.UTC().Format(time.RFC3339), Since: Since(now).UTC().Format(time.RFC3339), Disclosures: rows}
}

// FetchFrom is where to start reading a patient's events for an accounting at now: a
// day before the window, so that the emergency behind a release just inside it is
// found.
func FetchFrom(now time.Time) time.Time { return Since(now).Add(-24 * time.Hour) }

// LookbackYears is how far back an accounting reaches.
const LookbackYears = 6

// Since is the start of the accounting window for a request at now.
func Since(now time.Time) time.Time { return now.AddDate(-LookbackYears, 0, 0) }

// Disclosure is one row of an accounting of disclosures. The JSON names are the CSV
// column names.
type Disclosure struct {
	Date          time.Time          `json:"date"` // the release's block time, UTC
	RecipientName string             `json:"recipient_name"`
	Recipient     consent.HospitalID `json:"recipient"`
	// Description describes the PHI disclosed: the record's data classes (FHIR
	// resource types), e.g. "Condition, Observation".
	Description string              `json:"description"`
	Classes     []consent.DataClass `json:"classes"`
	// Statement is the purpose in words, e.g. "treatment", "emergency treatment
	// (break-glass reason: life-threatening)".
	Statement     string             `json:"purpose_statement"`
	Purpose       consent.Purpose    `json:"purpose"`
	Emergency     string             `json:"emergency_reason,omitempty"` // the break-glass reason code
	CustodianName string             `json:"custodian_name"`
	Custodian     consent.HospitalID `json:"custodian"` // the hospital that released the key
	Record        consent.RecordID   `json:"record"`
	Grant         consent.GrantID    `json:"grant"`
	Consent       consent.ConsentID  `json:"consent,omitempty"` // the consent that permitted it ("" for an emergency)
	Event         uint64             `json:"log_index"`         // the release's index in the access log
}

// Accounting lists the disclosures of patient's records in events, by the rule above.
// events may hold any events (other patients', other kinds, duplicates); records gives
// the data classes and custodians of the records named (a record missing from it is
// still listed, described as such); names are the hospitals' registered names.
func Accounting(patient consent.PatientID, events []consent.AuditEvent, records map[consent.RecordID]consent.Record,
	names map[consent.HospitalID]string, now time.Time) []Disclosure {
	since := Since(now).Unix()
	reasons := emergencyReasons(patient, events)
	registrants := map[consent.RecordID]consent.HospitalID{}
	for _, e := range events {
		if e.Kind == consent.AuditRecordRegistered && e.Patient == patient {
			registrants[e.Record] = e.Hospital
		}
	}
	seen := map[uint64]bool{}
	out := []Disclosure{}
	for _, e := range events {
		if e.Kind != consent.AuditKeyReleased || e.Patient != patient || e.Time < since || seen[e.Index] {
			continue
		}
		seen[e.Index] = true
		rec, known := records[e.Record]
		if e.Recipient == "" || e.Recipient == e.Hospital || holdsPlaintext(rec, known, registrants[e.Record], e.Recipient) {
			continue
		}
		d := Disclosure{
			Date: time.Unix(e.Time, 0).UTC(), Recipient: e.Recipient, RecipientName: nameOf(names, e.Recipient),
			Description: describe(e.Record, rec, known), Classes: append([]consent.DataClass{}, rec.Classes...),
			Purpose: e.Purpose, Statement: PurposeStatement(e.Purpose), Emergency: reasons[e.Grant],
			Custodian: e.Hospital, CustodianName: nameOf(names, e.Hospital),
			Record: e.Record, Grant: e.Grant, Consent: e.Consent, Event: e.Index,
		}
		if d.Emergency != "" {
			d.Statement += " (break-glass reason: " + d.Emergency + ")"
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Disclosure) int {
		if c := a.Date.Compare(b.Date); c != 0 {
			return c
		}
		return compareUint(a.Event, b.Event)
	})
	return out
}

// holdsPlaintext reports whether h held rec's plaintext before a release to it: as a
// custodian of a whole-key record or of a 1-of-r record (whose every share is the key),
// or as the hospital that registered a threshold record (registrant, "" if its
// registration is not among the events read: then the release is listed). A record not
// known is judged by nothing: the release is listed.
func holdsPlaintext(rec consent.Record, known bool, registrant, h consent.HospitalID) bool {
	switch {
	case !known:
		return false
	case rec.Threshold > 1:
		return h == registrant
	default:
		return slices.Contains(rec.Custodians, h)
	}
}

// emergencyReasons maps each of patient's emergency grants in events to its reason.
func emergencyReasons(patient consent.PatientID, events []consent.AuditEvent) map[consent.GrantID]string {
	out := map[consent.GrantID]string{}
	for _, e := range events {
		if e.Kind == consent.AuditEmergency && e.Patient == patient && e.Grant != "" {
			out[e.Grant] = e.Reason
			if out[e.Grant] == "" {
				out[e.Grant] = "unspecified"
			}
		}
	}
	return out
}

func describe(id consent.RecordID, rec consent.Record, known bool) string {
	switch {
	case !known:
		return "record " + string(id) + " (its data classes are not known to this node)"
	case len(rec.Classes) == 0:
		return "record " + string(id)
	}
	cs := make([]string, len(rec.Classes))
	for i, c := range rec.Classes {
		cs[i] = string(c)
	}
	return strings.Join(cs, ", ")
}

func nameOf(names map[consent.HospitalID]string, h consent.HospitalID) string {
	if n := cleanText(names[h]); n != "" {
		return n
	}
	return string(h)
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// purposeStatements says each v3 PurposeOfUse code the chain accepts in words.
var purposeStatements = map[consent.Purpose]string{
	"BTG":       "emergency access (break the glass)",
	"CAREMGT":   "care management",
	"CLINTRCH":  "clinical trial research",
	"COVERAGE":  "coverage under a policy or program",
	"ETREAT":    "emergency treatment",
	"HDIRECT":   "health care directory",
	"HLEGAL":    "legal",
	"HMARKT":    "marketing",
	"HOPERAT":   "health care operations",
	"HPAYMT":    "payment",
	"HQUALIMP":  "health care quality improvement",
	"HRESCH":    "research",
	"HSYSADMIN": "system administration",
	"PATRQT":    "at the patient's request",
	"POPHLTH":   "population health",
	"PUBHLTH":   "public health",
	"RECORDMGT": "records management",
	"TREAT":     "treatment",
}

// PurposeStatement is a purpose of use in words ("TREAT": "treatment"); a code it does
// not know is named as such.
func PurposeStatement(p consent.Purpose) string {
	if s, ok := purposeStatements[p]; ok {
		return s
	}
	if p == "" {
		return "purpose not stated"
	}
	return "purpose " + string(p)
}

// csvHeader is the CSV's first row: Disclosure's JSON names, in reading order.
var csvHeader = []string{"date", "recipient_name", "recipient", "description", "purpose_statement", "purpose",
	"emergency_reason", "custodian_name", "custodian", "record", "grant", "consent", "log_index"}

// WriteCSV writes rows as CSV (RFC 4180, CRLF line ends): a header row, then one row
// per disclosure, dates in RFC 3339 UTC.
func WriteCSV(w io.Writer, rows []Disclosure) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("auditor: write accounting: %w", err)
	}
	for _, d := range rows {
		rec := []string{d.Date.UTC().Format(time.RFC3339), cell(d.RecipientName), string(d.Recipient), d.Description,
			d.Statement, string(d.Purpose), d.Emergency, cell(d.CustodianName), string(d.Custodian), string(d.Record),
			string(d.Grant), string(d.Consent), strconv.FormatUint(d.Event, 10)}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("auditor: write accounting: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("auditor: write accounting: %w", err)
	}
	return nil
}

// cell defuses a registry name that a spreadsheet would run as a formula (OWASP's CSV
// injection advice: prefix an apostrophe). The other columns are codes and IDs, which
// never start so.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
