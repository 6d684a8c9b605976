package api

import (
	"net/http"
	"time"

	"github.com/medledger/medledger/fhir"
)

var patientSearch = fhir.CapabilitySearchParam{Name: "patient", Type: "reference",
	Documentation: "the patient ID (64 lowercase hex digits: the patient's Ed25519 public key), or Patient/{patient ID}"}

var auditEventSearch = []fhir.CapabilitySearchParam{
	{Name: "patient", Type: "reference", Documentation: "the patient the event is about: a patient ID or Patient/{patient ID}"},
	{Name: "agent", Type: "reference", Documentation: "a hospital involved (the one that acted, a custodian, or a key's " +
		"recipient): a hospital ID or Organization/{hospital ID}"},
	{Name: "date", Type: "date", Documentation: "the block time: YYYY, YYYY-MM, YYYY-MM-DD (UTC) or a dateTime, with an " +
		"optional prefix eq, ge, gt, le or lt; repeat it for a range (date=ge2026-01-01&date=le2026-01-31)"},
	{Name: "kind", Type: "token", Documentation: "the chain's event kind (meta.tag in urn:medledger:audit-kind): " +
		"access-denied for denials, emergency-access for break-glass accesses, …"},
}

// metadata is GET /fhir/metadata: what this node serves, and how.
func (s *server) metadata(w http.ResponseWriter, r *http.Request) error {
	cs := fhir.CapabilityStatement{
		ResourceType: "CapabilityStatement",
		Status:       "active",
		Date:         s.started.Format(time.RFC3339),
		Kind:         "instance",
		Software:     fhir.CapabilitySoftware{Name: "medledger", Version: s.id.Version},
		Implementation: fhir.CapabilityImplementation{Description: "medledger node of " + s.id.Name +
			" (hospital " + string(s.id.Hospital) + ", chain " + s.id.ChainID + ")"},
		FHIRVersion: "4.0.1",
		Format:      []string{"json"},
		Rest: []fhir.CapabilityRest{{
			Mode: "server",
			Documentation: "Records are FHIR R4 Bundles, encrypted in the consortium's IPFS store; the consent chain " +
				"decides every access. Errors are OperationOutcomes.",
			Security: &fhir.CapabilitySecurity{Description: "Authorization: Bearer TOKEN, by role: clinician (ingest, read, " +
				"emergency access, search, the live audit stream), privacy-officer (search, the access log, " +
				"accountings of disclosures, emergency reviews), admin (ingest, search, the access log, accountings). " +
				"The Consent operations need no token: the patient's Ed25519 signature over the prepared tx body is " +
				"the authority."},
			Resource: []fhir.CapabilityResource{
				{Type: "Bundle", Interaction: fhir.Interactions("create"),
					Documentation: "POST /fhir/Bundle?patient={patient ID}: validate, encrypt and register a record " +
						"(201, Location /records/{record ID}, body its DocumentReference)."},
				{Type: "DocumentReference", Interaction: fhir.Interactions("search-type"),
					SearchParam: []fhir.CapabilitySearchParam{patientSearch},
					Documentation: "A record's metadata from the chain (no PHI). The record itself: GET /records/{record ID}" +
						"?purpose={v3 PurposeOfUse}, decided on the chain; break-glass: POST /records/{record ID}" +
						"/$emergency-access with a Parameters reason (valueCode)."},
				{Type: "Consent", Interaction: fhir.Interactions("create", "search-type"),
					SearchParam: []fhir.CapabilitySearchParam{patientSearch},
					Documentation: "Grant: POST /fhir/Consent/$prepare with a Consent returns a Parameters {body, signer, " +
						"policy}; the patient signs body with Ed25519; POST /fhir/Consent with a Parameters {resource, body, " +
						"signature}. Revoke: POST /fhir/Consent/{id}/$revoke-prepare?patient={patient ID}, then " +
						"POST /fhir/Consent/{id}/$revoke?patient={patient ID} with a Parameters {body, signature}."},
				{Type: "AuditEvent", Interaction: fhir.Interactions("read", "search-type"),
					SearchParam: auditEventSearch,
					Documentation: "The consent chain's access log (every access decision, emergency access, key release, " +
						"consent change, record registration and erasure, emergency review), shaped after IHE Basic Audit " +
						"Log Patterns; id is the event's index in the log, newest first, paged by the next link (_count " +
						"1-500, default 50). Also: GET /audit/events (JSON pages), GET /audit/accounting?patient={patient ID}" +
						"&format=json|csv (HIPAA accounting of disclosures, six years), GET /audit/stream (Server-Sent " +
						"Events), GET /audit/emergencies and POST /audit/emergencies/{grant}/$review (the review queue)."},
			},
		}},
	}
	return writeResource(w, http.StatusOK, cs)
}
