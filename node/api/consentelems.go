package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/medledger/medledger/consent"
)

// Every element of a FHIR R4 Consent, and what the mapping does with it. A Consent is
// walked against this table before it is mapped: an element the table does not list,
// or lists as refused, is refused with its path (not-supported), so nothing in a
// Consent is ever silently dropped. The table is the contract; README and the report
// of issue 10 list it.
//
//   - mapped: read into the chain's policy (consentmap.go), or checked against it
//     (performer must be the patient, a reference's type must match).
//   - descriptive: accepted because it carries no access semantics (a label, a
//     classification, when or by whom the resource was written down); it is not kept,
//     and nothing the API returns echoes it: a returned Consent is rendered from the
//     chain's policy alone.
//   - refused: it restricts or qualifies access, or claims something about the
//     consent, that the chain cannot enforce or check.
//
// Everywhere, at any depth: `id` (an element's or the resource's own label) is
// descriptive; `extension` and `modifierExtension` are refused (an extension may carry
// a restriction the chain does not know; a modifier extension changes the meaning of
// its element); a primitive's `_name` twin may carry only an `id`.

type elemRule uint8

const (
	elemMapped elemRule = iota + 1
	elemDescriptive
	elemRefused
)

// elem is one element's rule. A mapped or descriptive element with kids is an object
// whose own elements are checked against kids; without kids it is a primitive, or a
// descriptive datatype whose inside is only searched for extensions.
type elem struct {
	rule  elemRule
	why   string                                 // refused: the reason, which says what to do instead
	kids  []field                                // the element's own elements, in R4 definition order
	check func(v json.RawMessage) (string, bool) // a value check: false with the reason to refuse
}

type field struct {
	name string
	e    *elem
}

func (e *elem) kid(name string) *elem {
	for _, f := range e.kids {
		if f.name == name {
			return f.e
		}
	}
	return nil
}

func mappedElem(kids ...field) *elem { return &elem{rule: elemMapped, kids: kids} }
func descriptive(kids ...field) *elem {
	return &elem{rule: elemDescriptive, kids: kids}
}
func refusedElem(why string) *elem { return &elem{rule: elemRefused, why: why} }

// Reasons shared by several elements.
const (
	whyExtension = "extensions are not enforced by the chain: an extension may restrict or qualify the consent in a way the chain does not know, so a Consent carrying one is refused rather than enforced without it; remove it, or express the rule with provisions"
	whyModifier  = "a modifier extension changes the meaning of the element it is on; the chain cannot enforce it"
)

// codingElem is a Coding: system and code are mapped; version, display and
// userSelected describe it.
var codingElem = mappedElem(
	field{"system", mappedElem()}, field{"version", descriptive()}, field{"code", mappedElem()},
	field{"display", descriptive()}, field{"userSelected", descriptive()})

// conceptElem is a CodeableConcept whose codings are mapped; its text is the concept
// in words.
var conceptElem = mappedElem(field{"coding", codingElem}, field{"text", descriptive()})

// periodElem is a Period, mapped to whole seconds.
var periodElem = mappedElem(field{"start", mappedElem()}, field{"end", mappedElem()})

// referenceElem is a Reference that must name a resource of type typ by its literal
// reference; a logical identifier is refused (the chain cannot tell whom it names, or
// that it names the same one as the reference).
func referenceElem(typ string) *elem {
	return mappedElem(
		field{"reference", mappedElem()},
		field{"type", &elem{rule: elemMapped, check: func(v json.RawMessage) (string, bool) {
			var s string
			if json.Unmarshal(v, &s) != nil || s != typ {
				return fmt.Sprintf("the reference's type must be %s (or absent)", typ), false
			}
			return "", true
		}}},
		field{"identifier", refusedElem("the chain names " + typ + "s only by their literal reference (" + typ + "/{id}); a logical identifier cannot be checked to name the same one: remove it")},
		field{"display", descriptive()})
}

// provisionElem is Consent.provision and every nested provision.
var provisionElem = func() *elem {
	p := mappedElem(
		field{"type", mappedElem()},
		field{"period", periodElem},
		field{"actor", mappedElem(field{"role", conceptElem}, field{"reference", referenceElem("Organization")})},
		field{"action", conceptElem},
		field{"securityLabel", refusedElem("security labels cannot be enforced: the chain knows records by ID and FHIR resource type, not their labels (use class or data)")},
		field{"purpose", codingElem},
		field{"class", codingElem},
		field{"code", refusedElem("content codes cannot be enforced: the chain knows records by ID and FHIR resource type (use class or data)")},
		field{"dataPeriod", refusedElem("dataPeriod cannot be enforced: the chain knows when a record was registered, not when the data in it was recorded")},
		field{"data", mappedElem(field{"meaning", mappedElem()}, field{"reference", referenceElem("DocumentReference")})},
	)
	p.kids = append(p.kids, field{"provision", p})
	return p
}()

// consentElem is the Consent resource.
var consentElem = mappedElem(
	field{"resourceType", mappedElem()},
	field{"meta", descriptive(
		field{"versionId", descriptive()}, field{"lastUpdated", descriptive()}, field{"source", descriptive()},
		field{"profile", descriptive()},
		field{"security", refusedElem("security labels on the Consent itself cannot be enforced: the chain does not restrict who may read a consent by its labels")},
		field{"tag", descriptive()})},
	field{"implicitRules", refusedElem("implicit rules cannot be enforced: the chain enforces only the provisions written in the Consent")},
	field{"language", descriptive()},
	field{"text", descriptive(
		field{"status", &elem{rule: elemDescriptive, check: narrativeStatus}},
		field{"div", descriptive()})},
	field{"contained", refusedElem("contained resources are not kept by the chain: name each hospital as Organization/{hospital ID} and each record as DocumentReference/{record ID}")},
	field{"identifier", descriptive()},
	field{"status", mappedElem()},
	field{"scope", conceptElem},
	field{"category", descriptive()},
	field{"patient", referenceElem("Patient")},
	field{"dateTime", descriptive()},
	field{"performer", referenceElem("Patient")},
	field{"organization", descriptive()},
	field{"sourceAttachment", refusedElem("the chain enforces only the provisions in this Consent, not a source document's text (a signed form may say more than the chain holds): remove sourceAttachment and keep the form elsewhere")},
	field{"sourceReference", refusedElem("the chain enforces only the provisions in this Consent, not those of the source it refers to (another Consent, a form, a document): remove sourceReference")},
	field{"policy", refusedElem("policies referenced by URI cannot be enforced by the chain; express the rules as provisions under a policyRule")},
	field{"policyRule", conceptElem},
	field{"verification", refusedElem("verification cannot be checked by the chain: the patient's own signature over the consent is what the chain verifies; remove verification")},
	field{"provision", provisionElem},
)

// narrativeStatus refuses a narrative that may say more than the structured content.
func narrativeStatus(v json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil && s == "additional" {
		return "a narrative of status 'additional' may hold rules not in the structured content, which the chain would not enforce: remove it, or use a generated narrative", false
	}
	return "", true
}

// checkElements walks a Consent (JSON that passed fhir.Parse) against consentElem.
func checkElements(raw []byte) error {
	return walkObject(json.RawMessage(raw), consentElem, "Consent")
}

// walk checks one element's value v (an object, an array of them, or a primitive).
func walk(v json.RawMessage, e *elem, path string) error {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return &mapError{Path: path, Code: "structure", Msg: err.Error()}
		}
		for i, item := range items {
			if err := walk(item, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	}
	if e.check != nil {
		if why, ok := e.check(v); !ok {
			return unmappable(path, "%s", why)
		}
	}
	if len(v) == 0 || v[0] != '{' {
		return nil // a primitive
	}
	if len(e.kids) == 0 {
		return noExtensions(v, path) // a descriptive datatype: only its extensions matter
	}
	return walkObject(v, e, path)
}

// walkObject checks an object's members against e's kids, in definition order and
// then the rest in name order, so the first refusal is stable.
func walkObject(v json.RawMessage, e *elem, path string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return &mapError{Path: path, Code: "structure", Msg: err.Error()}
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	order := func(name string) int {
		i := slices.IndexFunc(e.kids, func(f field) bool { return f.name == strings.TrimPrefix(name, "_") })
		if i < 0 {
			return len(e.kids)
		}
		return i
	}
	slices.SortFunc(names, func(a, b string) int {
		if oa, ob := order(a), order(b); oa != ob {
			return oa - ob
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		if err := member(m[name], e, name, path); err != nil {
			return err
		}
	}
	return nil
}

// member checks one member of an object whose rule is e.
func member(v json.RawMessage, e *elem, name, path string) error {
	switch {
	case name == "id":
		return nil
	case name == "extension":
		return extensionRefusal(v, path+".extension", whyExtension)
	case name == "modifierExtension":
		return extensionRefusal(v, path+".modifierExtension", whyModifier)
	case strings.HasPrefix(name, "_"): // a primitive's id and extensions
		if e.kid(name[1:]) == nil {
			return unknownElem(path + "." + name[1:])
		}
		return noExtensions(v, path+"."+name[1:])
	}
	k := e.kid(name)
	switch {
	case k == nil:
		return unknownElem(path + "." + name)
	case k.rule == elemRefused:
		return unmappable(path+"."+name, "%s", k.why)
	}
	return walk(v, k, path+"."+name)
}

func unknownElem(path string) error {
	return unmappable(path, "this element is not one the mapping of an R4 Consent knows, so it cannot be enforced")
}

// extensionRefusal refuses the first extension in v (an array), naming its URL.
func extensionRefusal(v json.RawMessage, path, why string) error {
	var exts []struct {
		URL string `json:"url"`
	}
	if json.Unmarshal(v, &exts) != nil || len(exts) == 0 {
		return unmappable(path, "%s", why)
	}
	return unmappable(path+"[0]", "extension '%s': %s", consent.Truncate(exts[0].URL, 200), why)
}

// noExtensions refuses an extension or modifier extension anywhere inside v.
func noExtensions(v json.RawMessage, path string) error {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) > 0 && v[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return &mapError{Path: path, Code: "structure", Msg: err.Error()}
		}
		for i, item := range items {
			if err := noExtensions(item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case len(v) > 0 && v[0] == '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return &mapError{Path: path, Code: "structure", Msg: err.Error()}
		}
		names := make([]string, 0, len(m))
		for name := range m {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			var err error
			switch name {
			case "extension":
				err = extensionRefusal(m[name], path+".extension", whyExtension)
			case "modifierExtension":
				err = extensionRefusal(m[name], path+".modifierExtension", whyModifier)
			default:
				err = noExtensions(m[name], path+"."+strings.TrimPrefix(name, "_"))
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
