// Package auditor is the privacy officer's verifier and exports: it checks what a node
// says about the consent chain without trusting the node, and turns the chain's
// access log into what auditors and patients read.
//
// # Verifying
//
// A Verifier checks what a node serves against block headers signed by validators
// holding more than 2/3 of the voting power of the validator set in force at their
// height, as a light client does: an access-log event against the log root the signed
// app hash binds (VerifyEvent), that the log only grew between two heights
// (VerifyConsistency). It trusts the genesis validator set and nothing else, and
// follows validator set changes (a hospital leaving by vote) sequentially: a set is
// accepted only as the one a verified header named as next, never on the word of an
// older set's minority, so validators holding 2/3 or less of the set in force cannot
// forge a header, nor a minority of an older set name a set of its own. Crossing a
// change the first time costs one header per height, from the last verified one. A
// header above the verified history that names the latest verified set is checked
// against that set without a walk: the Verifier assumes, as a light client without a
// trusting period must, that validators holding more than 2/3 of a set's power never
// sign a header at a height where that set is no longer in force.
// Replay checks the whole chain from genesis: every block must be the one the
// validators signed, re-executing every block's txs in a fresh consent machine (the
// chain's own ABCI adapter, package abci) must give the app hash the validators signed
// for it, and the access log the node serves must be the one the replay built.
//
// # Exports
//
// ToFHIR makes FHIR R4 AuditEvent resources shaped after IHE Basic Audit Log Patterns
// (BALP); Accounting makes a HIPAA accounting of disclosures (WriteCSV, NewReport).
// These are pure: they read consent.AuditEvents (and the registry's names and the
// records' data classes) and write JSON or CSV, with no clock of their own (the caller
// passes "now"), no network and no storage. They add nothing the chain does not hold:
// pseudonymous IDs, codes and block times, never PHI. Every AuditEvent produced is
// valid FHIR R4 (the tests run each through fhir.Parse); an event that cannot be
// mapped faithfully is an error, never a silently thinner resource.
//
// The accounting is exact: one row per key release to a hospital outside the record's
// custodians (the moment a record's plaintext became obtainable by another covered
// entity), and nothing else; see Accounting for the rule.
//
// # Dependencies
//
// The package talks to a node only through its RPC and API (node/client) and never
// imports the node, libp2p or boxo: an auditor's binary links no hospital.
package auditor
