// Package audit turns the consent chain's access log into what auditors and patients
// read: FHIR R4 AuditEvent resources shaped after IHE Basic Audit Log Patterns (BALP),
// and a HIPAA accounting of disclosures.
//
// # Invariants
//
// The package is pure: it reads consent.AuditEvents (and the registry's names and the
// records' data classes) and writes JSON or CSV, with no clock of its own (the caller
// passes "now"), no network and no storage. It adds nothing the chain does not hold:
// pseudonymous IDs, codes and block times, never PHI. Every AuditEvent it produces is
// valid FHIR R4 (the tests run each through fhir.Parse); an event it cannot map
// faithfully is an error, never a silently thinner resource.
//
// The accounting is exact: one row per key release to a hospital outside the record's
// custodians (the moment a record's plaintext became obtainable by another covered
// entity), and nothing else; see Accounting for the rule.
package audit
