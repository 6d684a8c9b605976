package consent

import (
	"errors"
	"fmt"
)

// Reader reads state: committed state, plus inside a block the writes of its earlier
// txs. Iterate visits keys in ascending order in [start, end) (end nil: no bound).
type Reader interface {
	Get(key []byte) ([]byte, error)
	Iterate(start, end []byte, fn func(key, value []byte) error) error
}

// Store is a Reader that takes writes.
type Store interface {
	Reader
	Set(key, value []byte) error
	Delete(key []byte) error
}

// errStop ends an iteration early; it never escapes this package.
var errStop = errors.New("consent: stop iteration")

// Key layout. Heights are fixed-width hex so keys sort by height.
const (
	keyMeta          = "m/" // m/height, m/time: the last applied block
	keyParams        = "m/params"
	keyLayout        = "m/layout" // the state layout (stateLayout) the chain was made with
	keyHospital      = "h/"       // h/<hospital>
	keyOperator      = "hk/"      // hk/<operator key hex> -> hospital
	keyProposal      = "hp/"      // hp/<hospital> -> Proposal
	keyRecord        = "r/"       // r/<record>
	keyPatRecord     = "pr/"      // pr/<patient>/<record>
	keyCustRecord    = "cr/"      // cr/<custodian>/<record>: the threshold records a hospital holds a share of
	keyConsent       = "c/"       // c/<consent>
	keyPatCons       = "pc/"      // pc/<patient> -> the patient's consent IDs, ascending (one read per decision)
	keyDecision      = "g/"       // g/<grant>
	keyEmergency     = "e/"       // e/<height>/<grant>
	keyUnreviewed    = "eu/"      // eu/<^height>/<grant>: emergencies awaiting review, newest first
	keyReviewed      = "er/"      // er/<^height>/<grant>: reviewed emergencies, newest first
	keyReview        = "rv/"      // rv/<grant> -> ReviewEntry
	keyReceipt       = "k/"       // k/<grant>/<custodian>/<tx>: one per key release
	keyCustody       = "ca/"      // ca/<record>/<custodian> -> Attestation: custody accepted (threshold records)
	keyErasure       = "ea/"      // ea/<record>/<custodian> -> Attestation: erasure attested
	keyLeave         = "hl/"      // hl/<hospital> -> LeaveProposal: votes that it leave
	keyLeft          = "hr/"      // hr/<hospital> -> the height it left: its ID is retired
	keyValidator     = "vk/"      // vk/<node key hex> -> power: the validator set, as CometBFT runs it
	keyValidatorLeft = "vl/"      // vl/<node key hex> -> the height its validator left the set
	keyReshare       = "rs/"      // rs/<record> -> Reshare: a re-sharing in progress
	keyNonce         = "n/"       // n/<expiry>/<signer hex>/<nonce hex>: a nonce in use until its expiry

	// The access log (audit.go). <i> is an event's index as 16 hex digits; <^i> is
	// its bitwise complement (^i) as 16 hex digits, so that forward iteration over an
	// index visits the newest events first (the Reader iterates ascending only).
	keyAuditHead     = "al/head"  // the log's size, root and compact range of [0, size)
	keyAuditLeaf     = "al/l/"    // al/l/<i> -> the event's canonical CBOR (the leaf)
	keyAuditNode     = "al/n/"    // al/n/<level 2 hex>/<index 16 hex> -> tree node hash, levels ≥ 1 (a leaf's is hashed from al/l/)
	keyAuditRoot     = "al/root/" // al/root/<^height> -> LogRoot at the end of a height in which the log grew
	keyAuditPatient  = "ap/"      // ap/<patient>/<^i> -> kind
	keyAuditHospital = "ah/"      // ah/<hospital>/<^i> -> kind (the actor, each custodian, a key's recipient)
	keyAuditKind     = "ak/"      // ak/<kind>/<^i> -> kind
)

// stateLayout numbers this key layout. A binary refuses a state in another layout
// (EndBlock halts the node) instead of misreading it. Layout 2: nonces under their
// expiry, no leaf hashes in the access log's nodes, no decision indexes by patient or
// hospital (the log's indexes answer); layout 1 (no m/layout key) was before that.
// Layout 3: a receipt per key release (k/<grant>/<custodian>/<tx>), not per custodian.
// Layout 4: threshold custody: custody params, a record's threshold and commitments,
// custody acceptances (ca/) and erasure attestations (ea/).
// Layout 5: leaving by vote (hl/), the validator set (vk/, written at genesis),
// re-sharings (rs/), the threshold records by custodian (cr/) and a record's epoch.
// Layout 6: custody hand-overs (a re-sharing's Out and In), a custody-changed entry in
// the access log at each switch, and the height each removed validator left (vl/).
// Layout 7: a custody-changed entry for each custodian gone at a switch, a re-sharing
// that would change no custodian is not started, and the IDs of hospitals that left are
// retired (hr/).
const stateLayout = 7

func heightKey(h Height) string { return fmt.Sprintf("%016x", uint64(h)) }

func getValue(r Reader, key string, v any) (bool, error) {
	b, err := r.Get([]byte(key))
	if err != nil {
		return false, err
	}
	if b == nil {
		return false, nil
	}
	if err := decMode.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("consent: state %s: %w", key, err)
	}
	return true, nil
}

func setValue(s Store, key string, v any) error {
	b, err := encMode.Marshal(v)
	if err != nil {
		return fmt.Errorf("consent: encode %s: %w", key, err)
	}
	return s.Set([]byte(key), b)
}

// scan visits every key with prefix in order; fn returns false to stop.
func scan(r Reader, prefix string, fn func(key string, value []byte) (bool, error)) error {
	start := []byte(prefix)
	return scanBytes(r, start, prefixEnd(start), fn)
}

// scanBytes visits the keys in [start, end) in order (end nil: no bound); fn returns
// false to stop.
func scanBytes(r Reader, start, end []byte, fn func(key string, value []byte) (bool, error)) error {
	err := r.Iterate(start, end, func(k, v []byte) error {
		more, err := fn(string(k), v)
		if err != nil {
			return err
		}
		if !more {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Params are the chain's parameters, fixed in genesis.
type Params struct {
	MaxTxTTL      Height `cbor:"1,keyasint" json:"max_tx_ttl"`     // how far ahead a tx's expiry may be
	GrantValidity int64  `cbor:"2,keyasint" json:"grant_validity"` // seconds a grant stays usable for key release
	ChainID       string `cbor:"3,keyasint" json:"-"`              // set from the genesis chain ID
	// Custodians (r) and Threshold (k) are the consortium's default custody: a record's
	// ciphertext on r custodians and its key k-of-r shared among them (custody.go).
	// A record may name others within the bounds.
	Custodians int `cbor:"4,keyasint" json:"custodians"`
	Threshold  int `cbor:"5,keyasint" json:"threshold"`
}

func (p *Params) fill() {
	if p.MaxTxTTL <= 0 {
		p.MaxTxTTL = 1000
	}
	if p.GrantValidity <= 0 {
		p.GrantValidity = 15 * 60
	}
}

// Record is a registered record.
type Record struct {
	ID         RecordID     `cbor:"1,keyasint" json:"id"`
	CID        string       `cbor:"2,keyasint" json:"cid"`
	Patient    PatientID    `cbor:"3,keyasint" json:"patient"`
	Classes    []DataClass  `cbor:"4,keyasint" json:"classes"`
	Custodians []HospitalID `cbor:"5,keyasint" json:"custodians"`
	Height     Height       `cbor:"6,keyasint" json:"height"`
	Erased     Height       `cbor:"7,keyasint,omitempty" json:"erased,omitempty"` // height of erasure; 0 if not
	// Threshold and Commitments are set for a record in threshold custody: its key is
	// shared Threshold-of-len(Custodians), share i (ShareIndex) belonging to the i-th
	// custodian. A whole-key record has neither.
	Threshold   int `cbor:"8,keyasint,omitempty" json:"threshold,omitempty"`
	Commitments Hex `cbor:"9,keyasint,omitempty" json:"commitments,omitempty"`
	// Epoch counts the record's completed re-sharings (reshare.go): its shares and
	// commitments are those of this epoch. A custodian's share of another epoch does
	// not verify against them.
	Epoch uint32 `cbor:"10,keyasint,omitempty" json:"epoch,omitempty"`
	// Holders are the new custodians of a re-sharing in progress when the record was
	// erased that had taken their new shares: they destroy them and attest the erasure
	// as its custodians do.
	Holders []HospitalID `cbor:"11,keyasint,omitempty" json:"holders,omitempty"`
}

// Consent is a patient's consent as granted, and its revocation.
type Consent struct {
	ID      ConsentID `cbor:"1,keyasint" json:"id"`
	Patient PatientID `cbor:"2,keyasint" json:"patient"`
	Policy  Policy    `cbor:"3,keyasint" json:"policy"`
	Height  Height    `cbor:"4,keyasint" json:"height"`
	Time    int64     `cbor:"5,keyasint" json:"time"`
	Revoked Height    `cbor:"6,keyasint,omitempty" json:"revoked,omitempty"` // height of revocation; 0 if active
}

// Decision is the chain's answer to an access request or an emergency access.
type Decision struct {
	ID        GrantID    `cbor:"1,keyasint" json:"id"`
	Record    RecordID   `cbor:"2,keyasint" json:"record"`
	Patient   PatientID  `cbor:"3,keyasint" json:"patient"`
	Requester HospitalID `cbor:"4,keyasint" json:"requester"`
	Purpose   Purpose    `cbor:"5,keyasint" json:"purpose"`
	Granted   bool       `cbor:"6,keyasint" json:"granted"`
	Reason    string     `cbor:"7,keyasint,omitempty" json:"reason,omitempty"`    // why denied
	Consent   ConsentID  `cbor:"8,keyasint,omitempty" json:"consent,omitempty"`   // the consent that permitted
	Emergency string     `cbor:"9,keyasint,omitempty" json:"emergency,omitempty"` // break-glass reason code
	Height    Height     `cbor:"10,keyasint" json:"height"`
	Time      int64      `cbor:"11,keyasint" json:"time"`
	Expires   int64      `cbor:"12,keyasint,omitempty" json:"expires,omitempty"` // block time after which no key is released
}

// ReceiptEntry records a key release.
type ReceiptEntry struct {
	Grant     GrantID    `cbor:"1,keyasint" json:"grant"`
	Custodian HospitalID `cbor:"2,keyasint" json:"custodian"`
	Height    Height     `cbor:"3,keyasint" json:"height"`
}

// ReviewEntry is the review of an emergency access, as recorded.
type ReviewEntry struct {
	Outcome  string     `cbor:"1,keyasint" json:"outcome"`  // one of ReviewOutcomes()
	Reviewer HospitalID `cbor:"2,keyasint" json:"reviewer"` // the hospital that signed it
	Height   Height     `cbor:"3,keyasint" json:"height"`
	Time     int64      `cbor:"4,keyasint" json:"time"` // block time, Unix seconds
}

// Proposal collects votes to register a hospital.
type Proposal struct {
	Hospital Hospital     `cbor:"1,keyasint"`
	Votes    []HospitalID `cbor:"2,keyasint"` // sorted
}
