package fhir

import (
	"encoding/json"
	"errors"
)

// PHITerms returns the identifying strings of a Bundle's Patient resources — names,
// birth dates, address lines, telecom values and identifier values — so that block
// stores, wires, chain state and logs can be scanned for leaks. It is a test and audit
// aid: it does not validate (use ParseBundle first).
func PHITerms(bundle []byte) ([]string, error) {
	var b struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		return nil, err
	}
	var out []string
	for _, e := range b.Entry {
		var p struct {
			ResourceType string `json:"resourceType"`
			BirthDate    string `json:"birthDate"`
			Name         []struct {
				Family string   `json:"family"`
				Given  []string `json:"given"`
			} `json:"name"`
			Address []struct {
				Line []string `json:"line"`
			} `json:"address"`
			Telecom []struct {
				Value string `json:"value"`
			} `json:"telecom"`
			Identifier []struct {
				Value string `json:"value"`
			} `json:"identifier"`
		}
		if err := json.Unmarshal(e.Resource, &p); err != nil || p.ResourceType != "Patient" {
			continue
		}
		out = append(out, p.BirthDate)
		for _, n := range p.Name {
			out = append(out, n.Family)
			out = append(out, n.Given...)
		}
		for _, a := range p.Address {
			out = append(out, a.Line...)
		}
		for _, t := range p.Telecom {
			out = append(out, t.Value)
		}
		for _, id := range p.Identifier {
			out = append(out, id.Value)
		}
	}
	out = nonEmpty(out)
	if len(out) == 0 {
		return nil, errors.New("fhir: no Patient with identifying data in the bundle")
	}
	return out, nil
}

func nonEmpty(s []string) []string {
	out := s[:0]
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
