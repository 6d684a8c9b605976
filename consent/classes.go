package consent

import "slices"

// r4ResourceTypes is the data class vocabulary: the 146 resource type names of FHIR R4
// (4.0.1), ascending (byte order), as in the discriminator of the R4 JSON schema
// (TestDataClassesAreR4ResourceTypes checks it against fhir/schema). A record's data
// classes and a consent's classes are names from this table and no others, so a typo
// in a consent ("Observatoin") is refused instead of denying nothing. Never modified.
var r4ResourceTypes = []DataClass{
	"Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment",
	"AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct",
	"BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam", "CatalogEntry",
	"ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse", "ClinicalImpression",
	"CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition",
	"Composition", "ConceptMap", "Condition", "Consent", "Contract", "Coverage",
	"CoverageEligibilityRequest", "CoverageEligibilityResponse", "DetectedIssue", "Device",
	"DeviceDefinition", "DeviceMetric", "DeviceRequest", "DeviceUseStatement",
	"DiagnosticReport", "DocumentManifest", "DocumentReference", "EffectEvidenceSynthesis",
	"Encounter", "Endpoint", "EnrollmentRequest", "EnrollmentResponse", "EpisodeOfCare",
	"EventDefinition", "Evidence", "EvidenceVariable", "ExampleScenario",
	"ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal", "GraphDefinition", "Group",
	"GuidanceResponse", "HealthcareService", "ImagingStudy", "Immunization",
	"ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide",
	"InsurancePlan", "Invoice", "Library", "Linkage", "List", "Location", "Measure",
	"MeasureReport", "Media", "Medication", "MedicationAdministration", "MedicationDispense",
	"MedicationKnowledge", "MedicationRequest", "MedicationStatement", "MedicinalProduct",
	"MedicinalProductAuthorization", "MedicinalProductContraindication",
	"MedicinalProductIndication", "MedicinalProductIngredient", "MedicinalProductInteraction",
	"MedicinalProductManufactured", "MedicinalProductPackaged",
	"MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect",
	"MessageDefinition", "MessageHeader", "MolecularSequence", "NamingSystem",
	"NutritionOrder", "Observation", "ObservationDefinition", "OperationDefinition",
	"OperationOutcome", "Organization", "OrganizationAffiliation", "Parameters", "Patient",
	"PaymentNotice", "PaymentReconciliation", "Person", "PlanDefinition", "Practitioner",
	"PractitionerRole", "Procedure", "Provenance", "Questionnaire", "QuestionnaireResponse",
	"RelatedPerson", "RequestGroup", "ResearchDefinition", "ResearchElementDefinition",
	"ResearchStudy", "ResearchSubject", "RiskAssessment", "RiskEvidenceSynthesis", "Schedule",
	"SearchParameter", "ServiceRequest", "Slot", "Specimen", "SpecimenDefinition",
	"StructureDefinition", "StructureMap", "Subscription", "Substance",
	"SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein",
	"SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification",
	"SupplyDelivery", "SupplyRequest", "Task", "TerminologyCapabilities", "TestReport",
	"TestScript", "ValueSet", "VerificationResult", "VisionPrescription",
}

// DataClasses returns the data class vocabulary (FHIR R4 resource type names), ascending.
func DataClasses() []DataClass { return slices.Clone(r4ResourceTypes) }

// IsDataClass reports whether c is an FHIR R4 resource type name (exactly, case and all).
func IsDataClass(c DataClass) bool {
	_, ok := slices.BinarySearch(r4ResourceTypes, c)
	return ok
}
