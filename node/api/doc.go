// Package api is a hospital node's HTTP API, FHIR-flavoured: ingest a FHIR R4 Bundle as
// an encrypted record, list a patient's records and consents from the chain, read a
// record once the consent chain has granted access (or break the glass with a coded
// reason), and let patients grant and revoke consent with their own keys.
//
// # Invariants
//
//   - Every error is a FHIR OperationOutcome (application/fhir+json) with a status
//     that says what kind of error it is (one table: problemOf and rejections); an
//     unexpected error or a panic is a 500 that reveals nothing of the cause.
//   - A malformed request changes nothing: every parameter, header and body is checked
//     before a Backend call that can change anything (Ingest, Read, Emergency,
//     SubmitTx). Invalid FHIR inside an ingested Bundle is the one check left to the
//     Backend, whose contract is to store nothing then.
//   - A record's plaintext is served only for a granted decision on that very record;
//     anything else is a 403 naming the chain's reason.
//   - A consent is translated from FHIR to the chain's policy form here, and strictly:
//     what the chain cannot enforce as written is rejected with the path and the
//     reason, never widened to fit (consentmap.go).
//   - A patient's grant or revocation reaches the chain only signed by the patient,
//     over exactly the body the node prepared, and only if that body says what the
//     request says.
//   - No PHI and no secrets in logs: one line per request with method, route pattern,
//     status and duration (and an error code) — never a body, a token or a query.
//     Tokens are configured by their SHA-256 only and compared in constant time.
//
// # Roles
//
// Bearer tokens carry a role. clinician: ingest, read, emergency access, search.
// privacy-officer: search (records' metadata, consents). admin: ingest, search. No
// token: /fhir/metadata, /healthz and the Consent operations (the patient's signature
// is the authority there).
package api
