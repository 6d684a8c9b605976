package fhir

import "github.com/samber/lo"

// The FHIR R4 datatypes medledger writes and reads as Go structs: small JSON shapes
// holding only the elements medledger uses. They carry no validation of their own:
// input is validated by Parse first, and output is built by code that fills the
// required elements (the shapes' tests parse what they write).
//
// Every element is omitted when empty, as FHIR forbids empty strings.

// Coding is an R4 Coding: a code in a code system.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is an R4 CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Concept is the CodeableConcept of one coding without display.
func Concept(system, code string) CodeableConcept {
	return CodeableConcept{Coding: []Coding{{System: system, Code: code}}}
}

// CodesIn returns the codes of c's codings in system, in order (none for a nil c).
func (c *CodeableConcept) CodesIn(system string) []string {
	if c == nil {
		return nil
	}
	return lo.FilterMap(c.Coding, func(cd Coding, _ int) (string, bool) { return cd.Code, cd.System == system })
}

// Identifier is an R4 Identifier.
type Identifier struct {
	Type   *CodeableConcept `json:"type,omitempty"`
	System string           `json:"system,omitempty"`
	Value  string           `json:"value,omitempty"`
}

// Reference is an R4 Reference: a literal reference ("Patient/{id}"), a logical one
// (an identifier), or both, with an optional display.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Ref is the literal reference to the resource of type typ with id id.
func Ref(typ, id string) Reference { return Reference{Reference: typ + "/" + id} }

// Period is an R4 Period; Start and End are R4 dateTimes.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Meta is the part of an R4 Meta medledger writes: tags.
type Meta struct {
	Tag []Coding `json:"tag,omitempty"`
}
