package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
)

// A generated FHIR Consent, kept as the model it was written from, so that a naive
// reading of FHIR's rules (fhirPermits) can be compared with the chain's policy.
type genConsent struct {
	optin bool
	root  *genProvision
	raw   []byte
	// refused is the element planted that the chain cannot enforce ("" for none): the
	// Consent must be refused, not-supported, at a path ending in it.
	refused string
}

type genProvision struct {
	typ        string // "", "permit", "deny"
	actors     []consent.HospitalID
	purposes   []consent.Purpose
	classes    []consent.DataClass
	records    []consent.RecordID
	start, end int64 // Unix seconds, 0 open
	kids       []*genProvision
}

var (
	genActors  = []consent.HospitalID{"st-ada", "bayside", "city"}
	genClasses = []consent.DataClass{"Observation", "Condition", "MedicationRequest"}
	genRecords = []consent.RecordID{"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"}
	// genTimes are the instants periods and accesses are drawn from: periods begin
	// and end on them, accesses fall on and between them.
	genTimes = []int64{1767225600, 1767225600 + 86400*40, 1767225600 + 86400*200, 1767225600 + 86400*400}
)

// TestConsentFixedPoint: over generated Consents (every root shape, types that do and
// do not alternate, periods in several FHIR forms, descriptive metadata, and now and
// then an element the chain cannot enforce), a Consent either is refused with a
// mapping error (not-supported at the planted element's path, when one was planted)
// or maps to a valid policy P such that
//   - P rendered is valid R4 and maps back to P (Consent → policy → Consent → policy
//     is a fixed point), and rendering P again gives the same bytes;
//   - P decides every generated access as a naive reading of the Consent's FHIR rules
//     does (so the mapping is exact, not only stable).
func TestConsentFixedPoint(t *testing.T) {
	var mapped, refused int
	rapid.Check(t, func(t *rapid.T) {
		gc := drawConsent(t)
		if _, err := fhir.Parse(gc.raw, fhir.Limits{}); err != nil {
			t.Fatalf("generated Consent is not valid R4: %v\n%s", err, gc.raw)
		}
		g, err := grantOf(gc.raw)
		if err != nil {
			refused++
			var me *mapError
			if !errors.As(err, &me) {
				t.Fatalf("not a mapping error: %v", err)
			}
			if gc.refused != "" && (me.Code != "not-supported" || !strings.Contains(me.Path, gc.refused)) {
				t.Fatalf("planted %s, refused %s (%s): %s", gc.refused, me.Path, me.Code, me.Msg)
			}
			return
		}
		mapped++
		if gc.refused != "" {
			t.Fatalf("planted %s, which the chain cannot enforce, and the Consent mapped: %+v\n%s", gc.refused, g.Policy, gc.raw)
		}
		if err := g.Policy.Validate(); err != nil {
			t.Fatalf("mapped to an invalid policy: %v", err)
		}
		c := consent.Consent{ID: "00112233445566778899aabbccddeeff", Patient: g.Patient, Policy: g.Policy, Time: 1764000000}
		again := roundTrip(t, c)
		if !reflect.DeepEqual(again, g) {
			t.Fatalf("Consent → policy → Consent → policy: got %+v\nwant %+v", again.Policy, g.Policy)
		}
		first, _ := fhirConsentOf(c)
		second, _ := fhirConsentOf(consent.Consent{ID: c.ID, Patient: again.Patient, Policy: again.Policy, Time: c.Time})
		if a, b := mustJSON(first), mustJSON(second); string(a) != string(b) {
			t.Fatalf("rendering is not a fixed point:\n%s\n%s", a, b)
		}
		for i := range 20 {
			a := drawAccess(t, i)
			want := fhirPermits(gc, a)
			if got, reason := g.Policy.Evaluate(a); got != want {
				t.Fatalf("access %+v: the chain's policy says %v (%s), the Consent's FHIR rules %v\npolicy %+v\n%s", a, got, reason, want, g.Policy, gc.raw)
			}
		}
	})
	t.Logf("mapped %d, refused %d", mapped, refused)
	if mapped == 0 || refused == 0 {
		t.Errorf("the generator should make both Consents that map (%d) and ones that are refused (%d)", mapped, refused)
	}
}

func drawConsent(t *rapid.T) genConsent {
	gc := genConsent{optin: rapid.Bool().Draw(t, "optin")}
	base := "deny"
	if !gc.optin {
		base = "permit"
	}
	if rapid.IntRange(0, 5).Draw(t, "root?") > 0 {
		gc.root = drawProvision(t, rapid.SampledFrom([]string{"", base, flip(base)}).Draw(t, "root type"), base, 0)
	}
	m := map[string]any{
		"resourceType": "Consent",
		"status":       "active",
		"scope":        fhir.Concept(fhir.SystemConsentScope, "patient-privacy"),
		"category":     []any{fhir.Concept(fhir.SystemLOINC, "59284-0")},
		"patient":      fhir.Reference{Reference: "Patient/" + alice},
		"policyRule":   fhir.Concept(fhir.SystemActCode, map[bool]string{true: "OPTIN", false: "OPTOUT"}[gc.optin]),
	}
	if gc.root != nil {
		if root := gc.root.json(t, true); len(root) > 0 {
			m["provision"] = root
		} else {
			gc.root = nil // an empty element is not R4
		}
	}
	if rapid.Bool().Draw(t, "metadata") { // descriptive: accepted, not kept
		m["id"] = "c1"
		m["meta"] = map[string]any{"versionId": "2", "tag": []any{map[string]any{"code": "x"}}}
		m["language"] = "en"
		m["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">consent</div>`}
		m["identifier"] = []any{map[string]any{"system": "urn:x", "value": "1"}}
		m["dateTime"] = "2025-11-24T10:00:00+01:00"
		m["organization"] = []any{map[string]any{"reference": "Organization/st-ada", "display": "St Ada"}}
		m["performer"] = []any{map[string]any{"reference": "Patient/" + alice}}
	}
	gc.refused = plant(t, m)
	gc.raw = mustJSON(m)
	return gc
}

// plant adds, one time in four, an element the chain cannot enforce, at the top or
// in the root provision, and returns its name.
func plant(t *rapid.T, m map[string]any) string {
	if rapid.IntRange(0, 3).Draw(t, "plant?") > 0 {
		return ""
	}
	ext := []any{map[string]any{"url": "http://example.org/restriction", "valueString": "ward 7"}}
	top := map[string]any{
		"extension": ext, "modifierExtension": ext, "implicitRules": "http://example.org/rules",
		"sourceReference": map[string]any{"reference": "Consent/x"},
		"policy":          []any{map[string]any{"uri": "http://example.org/policy"}},
		"verification":    []any{map[string]any{"verified": true}},
	}
	inner := map[string]any{
		"extension": ext, "modifierExtension": ext,
		"securityLabel": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}},
		"code":          []any{fhir.Concept(fhir.SystemLOINC, "34133-9")},
		"dataPeriod":    map[string]any{"start": "2020-01-01"},
	}
	names := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if p, ok := m["provision"].(map[string]any); ok && rapid.Bool().Draw(t, "plant inside") {
		name := rapid.SampledFrom(names(inner)).Draw(t, "planted")
		p[name] = inner[name]
		return name
	}
	name := rapid.SampledFrom(names(top)).Draw(t, "planted")
	m[name] = top[name]
	return name
}

func flip(typ string) string {
	if typ == "deny" {
		return "permit"
	}
	return "deny"
}

// drawProvision draws a provision of type typ under a rule parent; its kids are mostly
// of the opposite type, now and then of the same (which is refused).
func drawProvision(t *rapid.T, typ, parent string, depth int) *genProvision {
	p := &genProvision{typ: typ}
	if typ != "" || depth == 0 && rapid.IntRange(0, 9).Draw(t, "untyped root criteria?") == 0 {
		p.actors = rapid.SliceOfNDistinct(rapid.SampledFrom(genActors), 0, 2, rapid.ID[consent.HospitalID]).Draw(t, "actors")
		purposes := consent.Purposes()
		if rapid.IntRange(0, 9).Draw(t, "any purpose?") > 0 { // a deny of an emergency purpose now and then
			purposes = []consent.Purpose{"TREAT", "HPAYMT", "HRESCH", "ETREAT"}
		}
		p.purposes = rapid.SliceOfNDistinct(rapid.SampledFrom(purposes), 0, 2, rapid.ID[consent.Purpose]).Draw(t, "purposes")
		p.classes = rapid.SliceOfNDistinct(rapid.SampledFrom(genClasses), 0, 2, rapid.ID[consent.DataClass]).Draw(t, "classes")
		p.records = rapid.SliceOfNDistinct(rapid.SampledFrom(genRecords), 0, 1, rapid.ID[consent.RecordID]).Draw(t, "records")
	}
	if rapid.IntRange(0, 2).Draw(t, "period?") == 0 {
		i := rapid.IntRange(0, len(genTimes)-1).Draw(t, "start")
		j := rapid.IntRange(i, len(genTimes)-1).Draw(t, "end")
		p.start, p.end = genTimes[i], genTimes[j]+rapid.SampledFrom([]int64{0, 86399}).Draw(t, "end of day")
		if i == j {
			p.end = p.start + 86399 // one whole day
		}
		if rapid.Bool().Draw(t, "open start") {
			p.start = 0
		}
	}
	if depth >= 3 {
		return p
	}
	effect := typ
	if effect == "" {
		effect = parent
	}
	for range rapid.IntRange(0, 2).Draw(t, "kids") {
		kid := flip(effect)
		if rapid.IntRange(0, 14).Draw(t, "same type?") == 0 {
			kid = effect
		}
		p.kids = append(p.kids, drawProvision(t, kid, effect, depth+1))
	}
	return p
}

// json writes p as FHIR, with descriptive elements and an 'access' action now and then.
func (p *genProvision) json(t *rapid.T, root bool) map[string]any {
	m := map[string]any{}
	if p.typ != "" {
		m["type"] = p.typ
	}
	if p.start != 0 || p.end != 0 {
		per := map[string]any{}
		asDate := rapid.Bool().Draw(t, "as dates") // both, or neither: R4 cannot order a date and a time on one day
		if p.start != 0 {
			per["start"] = drawDateTime(t, p.start, false, asDate)
		}
		if p.end != 0 {
			per["end"] = drawDateTime(t, p.end, true, asDate)
		}
		if asDate && (p.start != 0 && len(per["start"].(string)) != 10 || p.end != 0 && len(per["end"].(string)) != 10) {
			if p.start != 0 {
				per["start"] = drawDateTime(t, p.start, false, false)
			}
			if p.end != 0 {
				per["end"] = drawDateTime(t, p.end, true, false)
			}
		}
		m["period"] = per
	}
	var actors, purposes, classes, data, kids []any
	for _, a := range p.actors {
		actors = append(actors, map[string]any{
			"role":      fhir.Concept(fhir.SystemParticipationType, rapid.SampledFrom([]string{"PRCP", "IRCP"}).Draw(t, "role")),
			"reference": map[string]any{"reference": "Organization/" + string(a), "display": "a hospital"}})
	}
	for _, pu := range p.purposes {
		purposes = append(purposes, map[string]any{"system": fhir.SystemActReason, "code": string(pu), "display": "a purpose"})
	}
	for _, c := range p.classes {
		classes = append(classes, fhir.Coding{System: fhir.SystemResourceTypes, Code: string(c)})
	}
	for _, r := range p.records {
		data = append(data, fhirData{Meaning: "instance", Reference: &fhir.Reference{Reference: "DocumentReference/" + string(r)}})
	}
	for _, k := range p.kids {
		kids = append(kids, k.json(t, false))
	}
	for name, v := range map[string][]any{"actor": actors, "purpose": purposes, "class": classes, "data": data, "provision": kids} {
		if len(v) > 0 {
			m[name] = v
		}
	}
	if p.typ != "" && rapid.Bool().Draw(t, "action") {
		m["action"] = []any{fhir.Concept(fhir.SystemConsentAction, "access")}
	}
	if !root && rapid.Bool().Draw(t, "element id") {
		m["id"] = "p"
	}
	return m
}

// drawDateTime writes sec (a start, or with last an end) as a FHIR date or dateTime
// naming exactly it: a dateTime in some offset, or a date when sec is the first (last)
// second of a UTC day.
func drawDateTime(t *rapid.T, sec int64, last, asDate bool) string {
	u := time.Unix(sec, 0).UTC()
	day := u.Hour() == 0 && u.Minute() == 0 && u.Second() == 0
	if last {
		day = u.Hour() == 23 && u.Minute() == 59 && u.Second() == 59
	}
	if day && asDate {
		return u.Format("2006-01-02")
	}
	off := rapid.SampledFrom([]int{0, 3600, -5 * 3600, 5*3600 + 1800}).Draw(t, "offset")
	return u.In(time.FixedZone("", off)).Format(time.RFC3339)
}

func drawAccess(t *rapid.T, i int) consent.Access {
	label := fmt.Sprintf("access %d ", i)
	return consent.Access{
		Actor:   rapid.SampledFrom(genActors).Draw(t, label+"actor"),
		Purpose: rapid.SampledFrom([]consent.Purpose{"TREAT", "HPAYMT", "HRESCH"}).Draw(t, label+"purpose"),
		Record:  rapid.SampledFrom(genRecords).Draw(t, label+"record"),
		Classes: rapid.SliceOfNDistinct(rapid.SampledFrom(genClasses), 1, 2, rapid.ID[consent.DataClass]).Draw(t, label+"classes"),
		Time:    rapid.SampledFrom(genTimes).Draw(t, label+"time") + rapid.SampledFrom([]int64{-1, 0, 1, 86399, 86400}).Draw(t, label+"skew"),
	}
}

// fhirPermits reads the Consent's rules naively, as FHIR R4 states them: the base rule
// (OPTIN deny, OPTOUT permit); the root provision's period bounds the whole consent;
// a provision applies when each criterion it names matches (a permit's classes must
// cover every class in the record, a deny's any one) and then decides as its type
// says (an untyped one as its parent), unless nested provisions that apply decide
// otherwise, a deny among them winning.
func fhirPermits(gc genConsent, a consent.Access) bool {
	base := "permit"
	if gc.optin {
		base = "deny"
	}
	r := gc.root
	if r == nil {
		return base == "permit"
	}
	if r.start != 0 && a.Time < r.start || r.end != 0 && a.Time > r.end {
		return false
	}
	effect := base
	if r.matches(a, base, true) {
		effect = r.decide(a, base)
	}
	return effect == "permit"
}

func (p *genProvision) decide(a consent.Access, parent string) string {
	effect := p.typ
	if effect == "" {
		effect = parent
	}
	var deny, permit bool
	for _, k := range p.kids {
		if !k.matches(a, effect, false) {
			continue
		}
		switch k.decide(a, effect) {
		case "deny":
			deny = true
		case "permit":
			permit = true
		}
	}
	switch {
	case deny:
		return "deny"
	case permit:
		return "permit"
	}
	return effect
}

func (p *genProvision) matches(a consent.Access, parent string, root bool) bool {
	typ := p.typ
	if typ == "" {
		typ = parent
	}
	switch {
	case len(p.actors) > 0 && !slices.Contains(p.actors, a.Actor),
		len(p.purposes) > 0 && !slices.Contains(p.purposes, a.Purpose),
		len(p.records) > 0 && !slices.Contains(p.records, a.Record):
		return false
	case !root && (p.start != 0 && a.Time < p.start || p.end != 0 && a.Time > p.end):
		return false
	case len(p.classes) == 0:
		return true
	case typ == "permit":
		return !slices.ContainsFunc(a.Classes, func(c consent.DataClass) bool { return !slices.Contains(p.classes, c) })
	}
	return slices.ContainsFunc(a.Classes, func(c consent.DataClass) bool { return slices.Contains(p.classes, c) })
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
