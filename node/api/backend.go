package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/medledger/medledger/consent"
)

// Backend is what the HTTP API asks of a hospital node (node.Node implements it).
// Every method that changes something either completes (its tx committed) or changes
// nothing.
type Backend interface {
	// Identity is this node's hospital and chain.
	Identity() Identity

	// Health is the node's state now and the facts it was judged by (its Hospital
	// and ChainID are filled in by the API). A failed node's ingest and record reads
	// are refused with 503.
	Health() Health

	// Ingest validates a FHIR Bundle (fhir.ReadRecord), encrypts it under a fresh DEK
	// into the block store and registers it on the chain for patient with this
	// hospital as custodian; it returns the committed record. Invalid FHIR gives a
	// *fhir.ValidationError (or fhir.ErrTooLarge) and stores nothing.
	Ingest(ctx context.Context, patient consent.PatientID, bundle io.Reader) (*consent.Record, error)

	// Records lists a patient's records from committed chain state (none: empty).
	Records(ctx context.Context, patient consent.PatientID) ([]consent.Record, error)

	// Read asks the chain for access to a record for purpose (a signed request tx,
	// decided in a block); if granted, it obtains the key from a custodian over the
	// key-release protocol, fetches the ciphertext over bitswap and decrypts it. A
	// denial — by the chain or by the custodian's re-check — is a *Denied.
	Read(ctx context.Context, record consent.RecordID, purpose consent.Purpose) (*Access, error)

	// Emergency is break-glass access with a coded reason (one of
	// consent.EmergencyReasons()): granted, flagged for review, then as Read.
	Emergency(ctx context.Context, record consent.RecordID, reason string) (*Access, error)

	// Record is one record from committed chain state (ErrNotFound if none).
	Record(ctx context.Context, id consent.RecordID) (*consent.Record, error)

	// Consent is one consent from committed chain state (ErrNotFound if none).
	Consent(ctx context.Context, id consent.ConsentID) (*consent.Consent, error)

	// Consents lists a patient's consents from committed chain state (none: empty).
	Consents(ctx context.Context, patient consent.PatientID) ([]consent.Consent, error)

	// NewBody is a tx body for this chain with a fresh nonce and an expiry, for a tx
	// signed elsewhere (a patient's device): fill in Kind and payload, encode it with
	// consent.EncodeBody, have it signed, then consent.Assemble and SubmitTx.
	NewBody(ctx context.Context) (consent.Body, error)

	// SubmitTx submits signed tx bytes and waits for the commit. A tx the chain
	// refuses is a *consent.Rejection with its code and log.
	SubmitTx(ctx context.Context, tx []byte) (*Committed, error)

	// Hospitals is the chain's hospital registry (IDs, names, keys), sorted by ID.
	Hospitals(ctx context.Context) ([]consent.Hospital, error)

	// AuditEvents reads the access log from committed state, newest first, one page
	// (consent.AuditEvents; the filter's limits apply).
	AuditEvents(ctx context.Context, f consent.AuditFilter) (*consent.AuditPage, error)

	// Follow delivers, in log order, the events matching f (its Before and Limit are
	// ignored) committed from the next block on, until ctx ends; then the channel is
	// closed. Each event arrives within one block of its commit.
	Follow(ctx context.Context, f consent.AuditFilter) (<-chan consent.AuditEvent, error)

	// Emergencies lists emergency accesses, unreviewed first, then newest first.
	Emergencies(ctx context.Context) ([]Emergency, error)

	// ReviewEmergency records on the chain, signed by this hospital, a privacy
	// officer's review of an emergency access with an outcome code (one of
	// consent.ReviewOutcomes()).
	ReviewEmergency(ctx context.Context, grant consent.GrantID, outcome string) (*Committed, error)
}

// Emergency is an emergency access and its review, if any.
type Emergency struct {
	Decision consent.Decision `json:"decision"`
	Review   *Review          `json:"review,omitempty"`
}

// Review is a privacy officer's review of an emergency access, as on the chain.
type Review struct {
	Outcome  string             `json:"outcome"`
	Reviewer consent.HospitalID `json:"reviewer"`
	Height   consent.Height     `json:"height"`
	Time     int64              `json:"time"` // block time, Unix seconds
}

// Identity names a node's hospital and chain.
type Identity struct {
	Hospital consent.HospitalID `json:"hospital"`
	Name     string             `json:"name"`
	ChainID  string             `json:"chain_id"`
	Version  string             `json:"version"`
}

// Access is a granted access: the decision on the chain and the record's plaintext.
type Access struct {
	Decision consent.Decision
	Bundle   []byte // the FHIR Bundle, byte-identical to what the custodian ingested
}

// Committed is a committed tx.
type Committed = consent.Committed

// Denied is an access refused by the chain's decision or by a custodian's re-check
// before releasing the key. It is not a failure of the node: the API answers 403.
type Denied struct {
	Record consent.RecordID
	Grant  consent.GrantID // the decision's ID (a denial is on the chain too); "" if none
	Reason string          // a consent reason code (consent.ReasonRevoked, …) or a custodian's refusal code
	Detail string          // one line, no PHI
}

func (d *Denied) Error() string {
	if d.Detail == "" {
		return fmt.Sprintf("access to record %s denied: %s", d.Record, d.Reason)
	}
	return fmt.Sprintf("access to record %s denied: %s (%s)", d.Record, d.Reason, d.Detail)
}

// Unavailable is a request this node cannot serve now but that may succeed if
// retried after RetryAfter: no custodian could show its chain state is current, the
// chain is not making progress, a custodian could not be reached. The API answers
// 503 with Retry-After.
type Unavailable struct {
	Reason     string // a code clients can branch on, e.g. "not-current"
	Detail     string // one line, no PHI
	RetryAfter time.Duration
}

func (u *Unavailable) Error() string {
	return fmt.Sprintf("unavailable: %s (%s); try again in %s", u.Reason, u.Detail, u.RetryAfter)
}

// ErrNotFound is a missing record, patient or consent.
var ErrNotFound = errors.New("not found")
