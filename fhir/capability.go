package fhir

import "github.com/samber/lo"

// CapabilityStatement is an R4 CapabilityStatement with the elements a server states
// about itself at GET [base]/metadata. ResourceType is "CapabilityStatement".
type CapabilityStatement struct {
	ResourceType   string                   `json:"resourceType"`
	Status         string                   `json:"status"`
	Date           string                   `json:"date"`
	Kind           string                   `json:"kind"`
	Software       CapabilitySoftware       `json:"software"`
	Implementation CapabilityImplementation `json:"implementation"`
	FHIRVersion    string                   `json:"fhirVersion"`
	Format         []string                 `json:"format"`
	Rest           []CapabilityRest         `json:"rest"`
}

// CapabilitySoftware is a CapabilityStatement.software.
type CapabilitySoftware struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// CapabilityImplementation is a CapabilityStatement.implementation.
type CapabilityImplementation struct {
	Description string `json:"description"`
}

// CapabilityRest is a CapabilityStatement.rest.
type CapabilityRest struct {
	Mode          string               `json:"mode"`
	Documentation string               `json:"documentation,omitempty"`
	Security      *CapabilitySecurity  `json:"security,omitempty"`
	Resource      []CapabilityResource `json:"resource"`
}

// CapabilitySecurity is a CapabilityStatement.rest.security.
type CapabilitySecurity struct {
	Description string `json:"description"`
}

// CapabilityResource is a CapabilityStatement.rest.resource: a resource type served.
type CapabilityResource struct {
	Type          string                  `json:"type"`
	Documentation string                  `json:"documentation,omitempty"`
	Interaction   []CapabilityInteraction `json:"interaction"`
	SearchParam   []CapabilitySearchParam `json:"searchParam,omitempty"`
}

// CapabilityInteraction is a CapabilityStatement.rest.resource.interaction: read,
// create, search-type, ...
type CapabilityInteraction struct {
	Code string `json:"code"`
}

// Interactions is the interactions of the given codes.
func Interactions(codes ...string) []CapabilityInteraction {
	return lo.Map(codes, func(c string, _ int) CapabilityInteraction { return CapabilityInteraction{Code: c} })
}

// CapabilitySearchParam is a CapabilityStatement.rest.resource.searchParam.
type CapabilitySearchParam struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}
