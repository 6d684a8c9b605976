// Package fhir is medledger's gate for FHIR R4 JSON: every resource that
// enters the system passes Parse (or ParseBundle) first, and what passes is
// kept as the exact bytes that were validated.
//
// # What it checks
//
// Parsing is strict JSON (RFC 8259) with positions: malformed input, a
// duplicate property (which encoding/json would silently merge), nesting
// deeper than Limits.MaxDepth, input longer than Limits.MaxBytes, or data
// after the top-level value stop the parse with one fatal issue that says
// where, by line, column and the FHIR path reached.
//
// A well-formed document is then validated against HL7's R4 JSON schema
// (embedded, compiled once on first use by a small evaluator of the
// keywords the schema uses; resources are dispatched on resourceType, never
// tried one by one), and against the R4 rules the schema cannot express:
// no empty strings, arrays or objects; no string over 1024*1024 characters
// (but base64Binary, which R4 leaves unbounded); no HTML or XML tag in any
// string-valued primitive but the narrative (markdown included; "<" as text,
// "< 7.0", stays allowed); base64Binary is base64; the narrative is parsed as
// XML (encoding/xml, strict, no DTD: no DOCTYPE, no entities but the
// predefined and numeric ones) and must be one <div> in the XHTML namespace
// holding only the elements and attributes the HL7 validator allows (txt-1),
// with no script-running URL or style, and some content (txt-2); required
// primitives and choice elements (a table, for the resource types medledger
// handles); Extension.url present and unversioned; per-1 on every Period with
// FHIRPath's precision semantics; ras-2; Reference.reference shapes and local
// references that resolve to a contained resource (ref-1); absolute and
// unique Bundle fullUrls and unique resource ids (bdl-7); the Bundle elements
// that depend on its type (bdl-1 to bdl-5) and at most one self, first,
// previous, next and last link. ReadRecord and ParseRecord further require a
// Bundle type a health record may be (RecordBundleTypes: collection, document,
// transaction, batch; never a searchset, history, response or message).
// Every issue found is reported
// (up to 100), in input order, each at a FHIRPath-style path that uses the
// JSON property names: "Bundle.entry[2].resource.valueQuantity.value".
//
// # Invariants
//
// Validation never changes the input: Resource.Raw is a copy of the bytes
// given (for ReadBundle, the bytes read), byte for byte, so signatures and hashes cover what was checked,
// never a re-marshalled form. No input makes the package panic, and the
// verdict depends on the bytes alone (no clock, no network, no terminology
// server: codes are checked only where the schema lists them).
//
// The compiled schema is the package's only state: built on first use
// (about 70 ms, once per process), read-only afterwards, safe for
// concurrent use. A 1.5 MB Synthea bundle parses and validates in about
// 10 ms.
//
// # Memory
//
// The input is held once (ReadBundle reads it into one buffer, of the size
// the reader announces when it can); parse-tree strings are slices of it. A
// Bundle's entries are validated one at a time as they are parsed, each in
// memory reused for the next, so validation needs about one entry's tree
// beyond the input, not five times the input; Limits.MaxValues bounds the
// tree of any one resource (or entry). Streaming never changes a verdict: a
// test and a fuzz target hold it to the whole-tree parse.
//
// The package does not convert input resources into Go structs: callers read
// the few fields they need (Bundle.Entries, PatientID, ResourceTypes) and build
// their own small domain types.
//
// # Shapes
//
// For what medledger writes, the package has small Go shapes holding only the
// elements medledger uses: the R4 datatypes (Coding, CodeableConcept, Reference,
// Identifier, Period, Meta), the code systems (System constants), the
// AuditEvent (after IHE Basic Audit Log Patterns), DocumentReference,
// CapabilityStatement, searchset Bundle (SearchSet) and Parameters. Callers convert their own types
// into these at their edge; the shapes know nothing of the consent chain.
package fhir
