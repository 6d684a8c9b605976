package fhir

// requiredElements lists, by schema definition, the elements with minimum
// cardinality 1 in FHIR R4 (4.0.1) that the JSON schema's "required" leaves
// out: primitives (which may appear as the _element companion only) and
// choice elements ("medication[x]"). Complex elements the schema already
// requires are listed too where the spec does, for readability; they are
// merged, not doubled. The table covers the resource types of the Synthea
// bundles, Consent, AuditEvent, OperationOutcome, and Extension.url.
func requiredElements() map[string][]string {
	return map[string][]string{
		"Extension":                {"url"},
		"Bundle":                   {"type"},
		"Encounter":                {"status", "class"},
		"Condition":                {"subject"},
		"Observation":              {"status", "code"},
		"DiagnosticReport":         {"status", "code"},
		"Procedure":                {"status", "subject"},
		"MedicationRequest":        {"status", "intent", "medication[x]", "subject"},
		"Immunization":             {"status", "vaccineCode", "patient", "occurrence[x]"},
		"CarePlan":                 {"status", "intent", "subject"},
		"Claim":                    {"status", "type", "use", "patient", "created", "provider", "priority", "insurance"},
		"ExplanationOfBenefit":     {"status", "type", "use", "patient", "created", "insurer", "provider", "outcome", "insurance"},
		"AllergyIntolerance":       {"patient"},
		"ImagingStudy":             {"status", "subject"},
		"Goal":                     {"lifecycleStatus", "description", "subject"},
		"DocumentReference":        {"status", "content"},
		"Provenance":               {"target", "recorded", "agent"},
		"MedicationAdministration": {"status", "medication[x]", "subject", "effective[x]"},
		"Consent":                  {"status", "scope", "category"},
		"AuditEvent":               {"type", "recorded", "agent", "source"},
		"OperationOutcome":         {"issue"},
	}
}
