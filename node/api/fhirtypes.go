package api

import "encoding/json"

// The few FHIR R4 datatypes the API reads and writes, as small JSON shapes. Input is
// always validated by fhir.Parse first; these only pick out the fields the API needs.

type coding struct {
	System string `json:"system,omitempty"`
	Code   string `json:"code,omitempty"`
}

type codeableConcept struct {
	Coding []coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

type reference struct {
	Reference string `json:"reference,omitempty"`
}

type period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// concept is a CodeableConcept of one coding.
func concept(system, code string) codeableConcept {
	return codeableConcept{Coding: []coding{{System: system, Code: code}}}
}

// codesIn returns the codes of c's codings in system.
func (c *codeableConcept) codesIn(system string) []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, cd := range c.Coding {
		if cd.System == system {
			out = append(out, cd.Code)
		}
	}
	return out
}

// parameters is a FHIR Parameters resource: the operations' input and output.
type parameters struct {
	ResourceType string      `json:"resourceType"`
	Parameter    []parameter `json:"parameter,omitempty"`
}

type parameter struct {
	Name              string          `json:"name"`
	ValueBase64Binary string          `json:"valueBase64Binary,omitempty"`
	ValueString       string          `json:"valueString,omitempty"`
	ValueCode         string          `json:"valueCode,omitempty"`
	Resource          json.RawMessage `json:"resource,omitempty"`
}

// bundle is a searchset Bundle.
type bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Total        int           `json:"total"`
	Link         []bundleLink  `json:"link,omitempty"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type bundleEntry struct {
	FullURL  string       `json:"fullUrl,omitempty"`
	Resource any          `json:"resource"`
	Search   *entrySearch `json:"search,omitempty"`
}

type entrySearch struct {
	Mode string `json:"mode"`
}
