package auditor

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	alice = consent.PatientID("a11ce0000000000000000000000000000000000000000000000000000000a11c")
	bob   = consent.PatientID("b0b0000000000000000000000000000000000000000000000000000000000b0b")
)

func id32(c byte) string { return strings.Repeat(string(c), 32) }

var (
	recordA  = consent.RecordID(id32('1'))
	consentA = consent.ConsentID(id32('c'))
	grantA   = consent.GrantID(id32('9'))
	txA      = consent.TxID(id32('7'))
	t0       = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC).Unix()
)

var testChain = Chain{ID: "medledger-test", Names: map[consent.HospitalID]string{
	"ada": "St Ada Infirmary", "bayside": "Bayside General", "city": "City Hospital",
}}

// oneOfEach is an event of every kind, as the chain logs them (audit.go, access.go,
// grant.go, record.go, review.go), plus a kind this package does not know.
func oneOfEach() []consent.AuditEvent {
	base := consent.AuditEvent{Height: 42, Time: t0, Tx: txA, Patient: alice}
	with := func(i uint64, f func(e *consent.AuditEvent)) consent.AuditEvent {
		e := base
		e.Index = i
		f(&e)
		return e
	}
	custodians := []consent.HospitalID{"ada"}
	return []consent.AuditEvent{
		with(0, func(e *consent.AuditEvent) {
			e.Kind, e.Record, e.Hospital, e.Custodians = consent.AuditRecordRegistered, recordA, "ada", custodians
		}),
		with(1, func(e *consent.AuditEvent) { e.Kind, e.Consent = consent.AuditConsentGranted, consentA }),
		with(2, func(e *consent.AuditEvent) {
			e.Kind, e.Record, e.Hospital, e.Custodians = consent.AuditAccessGranted, recordA, "bayside", custodians
			e.Purpose, e.Consent, e.Grant, e.Tx = "TREAT", consentA, grantA, consent.TxID(grantA)
		}),
		with(3, func(e *consent.AuditEvent) {
			e.Kind, e.Record, e.Hospital, e.Custodians = consent.AuditAccessDenied, recordA, "city", custodians
			e.Purpose, e.Grant, e.Reason, e.Tx = "HPAYMT", consent.GrantID(id32('8')), consent.ReasonNoConsent, consent.TxID(id32('8'))
		}),
		with(4, func(e *consent.AuditEvent) {
			e.Kind, e.Record, e.Hospital, e.Recipient = consent.AuditKeyReleased, recordA, "ada", "bayside"
			e.Purpose, e.Consent, e.Grant = "TREAT", consentA, grantA
		}),
		with(5, func(e *consent.AuditEvent) {
			e.Kind, e.Record, e.Hospital, e.Custodians = consent.AuditEmergency, recordA, "city", custodians
			e.Purpose, e.Grant, e.Reason, e.Tx = "ETREAT", consent.GrantID(id32('6')), "life-threatening", consent.TxID(id32('6'))
		}),
		with(6, func(e *consent.AuditEvent) {
			e.Kind, e.Record, e.Hospital, e.Custodians = consent.AuditEmergencyReviewed, recordA, "ada", custodians
			e.Grant, e.Reason = consent.GrantID(id32('6')), "justified"
		}),
		with(7, func(e *consent.AuditEvent) { e.Kind, e.Consent = consent.AuditConsentRevoked, consentA }),
		with(8, func(e *consent.AuditEvent) {
			e.Kind, e.Record, e.Custodians = consent.AuditRecordErased, recordA, custodians
		}),
		with(9, func(e *consent.AuditEvent) {
			e.Kind, e.Record, e.Hospital, e.Purpose = "future-kind", recordA, "bayside", "HRESCH"
		}),
		with(10, func(e *consent.AuditEvent) {
			e.Kind, e.Record, e.Hospital, e.Custodians = consent.AuditErasureAttested, recordA, "bayside", []consent.HospitalID{"ada", "bayside"}
		}),
		with(11, func(e *consent.AuditEvent) {
			e.Kind, e.Record, e.Hospital, e.Custodians, e.Reason = consent.AuditCustodyChanged, recordA, "city", []consent.HospitalID{"ada", "bayside", "dunmore"}, "hand-over"
		}),
	}
}

func export(t *testing.T, e consent.AuditEvent) ([]byte, fhir.AuditEvent) {
	t.Helper()
	b, err := ToFHIR(e, testChain)
	if err != nil {
		t.Fatalf("event %d (%s): %v", e.Index, e.Kind, err)
	}
	res, err := fhir.Parse(b, fhir.Limits{})
	if err != nil {
		t.Fatalf("event %d (%s) is not valid FHIR R4: %v\n%s", e.Index, e.Kind, err, b)
	}
	if res.Type != "AuditEvent" {
		t.Fatalf("resourceType %s, want AuditEvent", res.Type)
	}
	var ae fhir.AuditEvent
	if err := json.Unmarshal(b, &ae); err != nil {
		t.Fatal(err)
	}
	return b, ae
}

// Every kind the chain logs has a pattern of its own, not the fallback.
func TestEveryChainKindHasAPattern(t *testing.T) {
	for _, k := range consent.AuditKinds() {
		if _, ok := required[k]; !ok {
			t.Errorf("kind %s has no BALP pattern in ToFHIR (it would be exported as an unknown kind)", k)
		}
	}
}

// Every export is valid FHIR R4 with the common parts: id the log index, the kind as
// a tag, recorded the block time, the chain as observer, the patient and the tx.
func TestToFHIRValidR4(t *testing.T) {
	for _, e := range oneOfEach() {
		t.Run(string(e.Kind), func(t *testing.T) {
			b, ae := export(t, e)
			var raw struct{ Agent []map[string]json.RawMessage }
			json.Unmarshal(b, &raw)
			for i, a := range raw.Agent {
				if _, ok := a["requestor"]; !ok {
					t.Errorf("agent[%d] has no requestor (required in R4, which the schema does not check)", i)
				}
			}
			if want := (fhir.Coding{System: KindSystem, Code: string(e.Kind)}); len(ae.Meta.Tag) != 1 || ae.Meta.Tag[0] != want {
				t.Errorf("meta.tag %+v, want [%+v]", ae.Meta.Tag, want)
			}
			if ae.ID != itoa(e.Index) || ae.Recorded != "2026-03-01T09:30:00Z" {
				t.Errorf("id %s recorded %s, want %d and 2026-03-01T09:30:00Z", ae.ID, ae.Recorded, e.Index)
			}
			obs := ae.Source.Observer
			if obs.Identifier == nil || *obs.Identifier != (fhir.Identifier{System: ChainSystem, Value: "medledger-test"}) {
				t.Errorf("source.observer %+v, want the chain", obs)
			}
			if ae.Entity[0].What.Reference != "Patient/"+string(alice) || *ae.Entity[0].Role != rolePatient {
				t.Errorf("entity[0] %+v, want the patient", ae.Entity[0])
			}
			last := ae.Entity[len(ae.Entity)-1]
			if last.What.Identifier == nil || last.What.Identifier.Value != string(e.Tx) ||
				!slices.Contains(last.Detail, fhir.AuditDetail{Type: "log-index", ValueString: itoa(e.Index)}) || !slices.Contains(last.Detail, fhir.AuditDetail{Type: "height", ValueString: "42"}) {
				t.Errorf("last entity %+v, want the tx with height and log index", last)
			}
		})
	}
}

func itoa(i uint64) string { b, _ := json.Marshal(i); return string(b) }

// The BALP codes of each pattern.
func TestToFHIRPatterns(t *testing.T) {
	tests := []struct {
		kind    consent.AuditKind
		typ     fhir.Coding
		subtype fhir.Coding
		action  string
		outcome string
		purpose string
		agents  []string // type code @ who, requestor marked *
	}{
		{consent.AuditRecordRegistered, typeRest, subCreate, "C", "0", "",
			[]string{"CST@Organization/ada*", "110152@chain"}},
		{consent.AuditConsentGranted, typeRest, subCreate, "C", "0", "",
			[]string{"PAT@Patient/" + string(alice) + "*", "110152@chain"}},
		{consent.AuditAccessGranted, typeSecurityAlert, subAuthZConsent, "E", "0", "TREAT",
			[]string{"IRCP@Organization/bayside*", "CST@Organization/ada", "authserver@chain"}},
		{consent.AuditAccessDenied, typeSecurityAlert, subAuthZConsent, "E", "4", "HPAYMT",
			[]string{"IRCP@Organization/city*", "CST@Organization/ada", "authserver@chain"}},
		{consent.AuditKeyReleased, typeExport, subDisclose, "R", "0", "TREAT",
			[]string{"110153@Organization/ada", "110152@Organization/bayside*", "429577009@Patient/" + string(alice), "authserver@chain"}},
		{consent.AuditEmergency, typeSecurityAlert, subEmergencyStarted, "E", "0", "ETREAT",
			[]string{"IRCP@Organization/city*", "CST@Organization/ada", "authserver@chain"}},
		{consent.AuditEmergencyReviewed, typeSecurityAlert, subReviewed, "E", "0", "",
			[]string{"VRF@Organization/ada*", "authserver@chain"}},
		{consent.AuditConsentRevoked, typeRest, subUpdate, "U", "0", "",
			[]string{"PAT@Patient/" + string(alice) + "*", "110152@chain"}},
		{consent.AuditRecordErased, typeRest, subDelete, "D", "0", "",
			[]string{"PAT@Patient/" + string(alice) + "*", "CST@Organization/ada", "110152@chain"}},
		{consent.AuditErasureAttested, typeRest, subDelete, "D", "0", "",
			[]string{"CST@Organization/bayside*", "CST@Organization/ada", "110152@chain"}},
		{consent.AuditCustodyChanged, typeRest, subUpdate, "U", "0", "",
			[]string{"110153@Organization/city*", "CST@Organization/ada", "CST@Organization/bayside", "CST@Organization/dunmore", "110152@chain"}},
		{"future-kind", fhir.Coding{System: KindSystem, Code: "future-kind"}, fhir.Coding{}, "", "", "HRESCH",
			[]string{"@Organization/bayside*", "@chain"}},
	}
	// more are the subtypes a pattern has after the first.
	more := map[consent.AuditKind][]fhir.Coding{consent.AuditErasureAttested: {subDestroy}}
	events := map[consent.AuditKind]consent.AuditEvent{}
	for _, e := range oneOfEach() {
		events[e.Kind] = e
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			_, ae := export(t, events[tt.kind])
			if ae.Type != tt.typ {
				t.Errorf("type %+v, want %+v", ae.Type, tt.typ)
			}
			switch {
			case tt.subtype == fhir.Coding{} && len(ae.Subtype) != 0:
				t.Errorf("subtype %+v, want none", ae.Subtype)
			case tt.subtype != fhir.Coding{} && !slices.Equal(ae.Subtype, append([]fhir.Coding{tt.subtype}, more[tt.kind]...)):
				t.Errorf("subtype %+v, want %+v", ae.Subtype, append([]fhir.Coding{tt.subtype}, more[tt.kind]...))
			}
			if ae.Action != tt.action || ae.Outcome != tt.outcome {
				t.Errorf("action %q outcome %q, want %q %q", ae.Action, ae.Outcome, tt.action, tt.outcome)
			}
			var purposes []string
			for _, p := range ae.PurposeOfEvent {
				if p.Coding[0].System != fhir.SystemActReason {
					t.Errorf("purposeOfEvent system %s, want v3-ActReason", p.Coding[0].System)
				}
				purposes = append(purposes, p.Coding[0].Code)
			}
			if strings.Join(purposes, ",") != tt.purpose {
				t.Errorf("purposeOfEvent %v, want %s", purposes, tt.purpose)
			}
			if got := agentsOf(ae); !slices.Equal(got, tt.agents) {
				t.Errorf("agents\n got %v\nwant %v", got, tt.agents)
			}
		})
	}
}

func agentsOf(ae fhir.AuditEvent) []string {
	var out []string
	for _, a := range ae.Agent {
		s := ""
		if a.Type != nil {
			s = a.Type.Coding[0].Code
		}
		who := a.Who.Reference
		if a.Who.Identifier != nil && a.Who.Identifier.System == ChainSystem {
			who = "chain"
		}
		s += "@" + who
		if a.Requestor {
			s += "*"
		}
		out = append(out, s)
	}
	return out
}

// The details each kind carries beyond its codes.
func TestToFHIRDetails(t *testing.T) {
	events := oneOfEach()
	_, denied := export(t, events[3])
	if denied.OutcomeDesc != "denied: no-consent" {
		t.Errorf("denial outcomeDesc %q, want the reason", denied.OutcomeDesc)
	}
	_, granted := export(t, events[2])
	if !hasEntity(granted, "Consent/"+string(consentA)) || !hasEntity(granted, "DocumentReference/"+string(recordA)) {
		t.Errorf("grant entities %+v, want the consent and the record", granted.Entity)
	}
	if granted.Agent[0].Who.Display != "Bayside General" {
		t.Errorf("requester display %q, want the registry name", granted.Agent[0].Who.Display)
	}
	_, em := export(t, events[5])
	if g := grantEntityOf(em); g == nil || !slices.Contains(g.Detail, fhir.AuditDetail{Type: "emergency-reason", ValueString: "life-threatening"}) {
		t.Errorf("emergency grant entity %+v, want its reason", g)
	}
	_, rv := export(t, events[6])
	if g := grantEntityOf(rv); g == nil || g.What.Identifier.Value != id32('6') || !slices.Contains(g.Detail, fhir.AuditDetail{Type: "review-outcome", ValueString: "justified"}) {
		t.Errorf("review grant entity %+v, want the emergency's grant and the outcome", g)
	}
	if ap := granted.Agent[0].PurposeOfUse; len(ap) != 1 || ap[0].Coding[0].Code != "TREAT" || ap[0].Text != "treatment" {
		t.Errorf("requester purposeOfUse %+v, want TREAT", ap)
	}
}

func hasEntity(ae fhir.AuditEvent, ref string) bool {
	return slices.ContainsFunc(ae.Entity, func(e fhir.AuditEntity) bool { return e.What.Reference == ref })
}

func grantEntityOf(ae fhir.AuditEvent) *fhir.AuditEntity {
	for i, e := range ae.Entity {
		if e.What.Identifier != nil && e.What.Identifier.System == GrantSystem {
			return &ae.Entity[i]
		}
	}
	return nil
}

// An event the export cannot map faithfully is an error, never a thinner resource.
func TestToFHIRRejects(t *testing.T) {
	good := oneOfEach()[4] // a key release
	tests := []struct {
		name  string
		chain Chain
		edit  func(e *consent.AuditEvent)
	}{
		{"no chain ID", Chain{}, nil},
		{"chain ID with a space", Chain{ID: "a b"}, nil},
		{"bad patient", testChain, func(e *consent.AuditEvent) { e.Patient = "Patient/1" }},
		{"no patient", testChain, func(e *consent.AuditEvent) { e.Patient = "" }},
		{"bad record", testChain, func(e *consent.AuditEvent) { e.Record = "../x" }},
		{"bad custodian", testChain, func(e *consent.AuditEvent) { e.Custodians = []consent.HospitalID{"Ada Hospital"} }},
		{"bad kind", testChain, func(e *consent.AuditEvent) { e.Kind = "Key Released" }},
		{"no kind", testChain, func(e *consent.AuditEvent) { e.Kind = "" }},
		{"bad purpose", testChain, func(e *consent.AuditEvent) { e.Purpose = "treat me" }},
		{"bad reason", testChain, func(e *consent.AuditEvent) { e.Reason = "no consent, sorry" }},
		{"no time", testChain, func(e *consent.AuditEvent) { e.Time = 0 }},
		{"release without a recipient", testChain, func(e *consent.AuditEvent) { e.Recipient = "" }},
		{"release without a grant", testChain, func(e *consent.AuditEvent) { e.Grant = "" }},
		{"consent change without a consent", testChain, func(e *consent.AuditEvent) {
			e.Kind, e.Consent = consent.AuditConsentGranted, ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good
			if tt.edit != nil {
				tt.edit(&e)
			}
			b, err := ToFHIR(e, tt.chain)
			if !errors.Is(err, ErrUnmappable) {
				t.Fatalf("got %v (%s), want ErrUnmappable", err, b)
			}
		})
	}
}

// A hospital name with control characters still makes valid FHIR; an unnamed hospital
// is shown by its reference alone.
func TestToFHIRNames(t *testing.T) {
	e := oneOfEach()[4]
	c := Chain{ID: "medledger-test", Names: map[consent.HospitalID]string{"ada": "St\tAda\x00 ", "bayside": ""}}
	b, err := ToFHIR(e, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fhir.Parse(b, fhir.Limits{}); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	var ae fhir.AuditEvent
	json.Unmarshal(b, &ae)
	if ae.Agent[0].Who.Display != "St Ada" || ae.Agent[1].Who.Display != "" {
		t.Errorf("displays %q, %q; want \"St Ada\" and none", ae.Agent[0].Who.Display, ae.Agent[1].Who.Display)
	}
}

// The golden export of a key release, an emergency access and a custodian's erasure
// attestation: the whole shape.
func TestToFHIRGolden(t *testing.T) {
	events := oneOfEach()
	for _, c := range []struct {
		file string
		e    consent.AuditEvent
	}{{"key-released.json", events[4]}, {"emergency-access.json", events[5]}, {"erasure-attested.json", events[10]}} {
		b, _ := export(t, c.e)
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		out.WriteByte('\n')
		golden(t, filepath.Join("testdata", c.file), out.Bytes())
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./node/auditor -run %s -update writes it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (-update rewrites it after a deliberate change)\n got:\n%s\nwant:\n%s", path, got, want)
	}
}
