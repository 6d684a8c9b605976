// Package consent is the consent chain's deterministic state machine.
//
// Every hospital's node runs it on the same blocks and must reach the same state: so it
// has no clock but the block's time, no randomness, no floats, no goroutines, and it
// iterates only sorted keys. It imports no CometBFT, libp2p, boxo or FHIR type: the
// FHIR Consent is translated to this package's Policy at the API edge, so a FHIR parsing
// change can never fork the chain.
//
// A transaction is a signed envelope {body bytes, signer key, Ed25519 signature} whose
// body (deterministic CBOR, re-encoded and compared so only the canonical form is
// accepted) carries the chain ID, a random nonce and an expiry height. Signatures are
// checked over the exact body bytes. A tx's nonce is kept, under its expiry, until the
// tx expires, so a replay is refused while the tx could still be included; one key per
// tx, swept by range at the end of each block.
//
// The chain holds pseudonymous IDs, CIDs, data classes (FHIR resource types), codes and
// heights — never names, birth dates, addresses or free text.
//
// The access log: every access decision (granted, denied, emergency), key release,
// consent grant and revocation, record registration and erasure, and review of an
// emergency access is appended, in the order its tx is applied, to an RFC 6962 Merkle
// log kept in state (audit.go): the leaves are the canonical CBOR of AuditEvents,
// every tree node above the leaves is stored (a leaf's hash is computed from the leaf)
// so inclusion and consistency proofs take O(log n) reads,
// and the log's root is in state (so the app hash commits to it) and in the result of
// each tx that appended. Anyone can check a node's proofs with VerifyInclusion and
// VerifyConsistency (auditlog.go).
//
// Custody (custody.go): a record is held whole by its custodian, or in threshold
// custody: registered with a threshold k and the public commitments of its key's
// k-of-r sharing among its r custodians (sorted; share i is the i-th's). Each
// custodian accepts custody on the chain once it holds the ciphertext and a share that
// verifies; the record is available once k have. After an erase each custodian attests
// that it destroyed its key or share; the erasure is complete once all have. Genesis
// fixes the consortium's default r and k; a record may name others within
// 1 ≤ k ≤ r ≤ 16.
//
// Membership (hospital.go, leave.go): hospitals join and leave by a vote of ≥ 2/3 of
// the members' power. One that leaves is out of the registry and the validator set,
// and each threshold record it held is re-shared to a new set (reshare.go): the
// remaining custodians deal their shares again, the chain checks the deals and
// computes the new commitments, and the record switches once k new custodians accept.
// A custodian may also hand its custody of a record over to another member
// (handover.go), which re-shares that record the same way.
//
// Authority: only a patient grants, revokes and erases for themself (a PatientID is
// their public key); only a registered hospital registers records (as a custodian) and
// requests access, each with its registered operator key; only a record's custodian
// accepts its custody or attests its erasure, with its operator key. An emergency access is
// reviewed (review.go) once, with an outcome code, by a privacy officer of the
// hospital that requested it or of a custodian of the record, signing with that
// hospital's operator key; until then it heads the review queue.
package consent
