package fhir

// Code systems of HL7, DICOM and SNOMED CT that medledger's resources use.
const (
	SystemActCode           = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	SystemActReason         = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemParticipationType = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	SystemRoleClass         = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
	SystemConsentAction     = "http://terminology.hl7.org/CodeSystem/consentaction"
	SystemConsentScope      = "http://terminology.hl7.org/CodeSystem/consentscope"
	SystemResourceTypes     = "http://hl7.org/fhir/resource-types"
	SystemLOINC             = "http://loinc.org"
	SystemURI               = "urn:ietf:rfc:3986"

	SystemAuditEventType     = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	SystemAuditEntityType    = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	SystemRestfulInteraction = "http://hl7.org/fhir/restful-interaction"
	SystemLifecycle          = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
	SystemObjectRole         = "http://terminology.hl7.org/CodeSystem/object-role"
	SystemSecurityRoleType   = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
	SystemSecuritySourceType = "http://terminology.hl7.org/CodeSystem/security-source-type"
	SystemDCM                = "http://dicom.nema.org/resources/ontology/DCM"
	SystemSNOMED             = "http://snomed.info/sct"
	// SystemBALPAuthZ is IHE BALP's AuthZsubType code system.
	SystemBALPAuthZ = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
)
