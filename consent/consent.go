package consent

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Height is a block height.
type Height int64

// PatientID is a patient's pseudonym on the chain: the lowercase hex of their Ed25519
// public key, so that only the holder of that key can act for the patient.
type PatientID string

// HospitalID is a member hospital's short registered name, [a-z0-9-]{1,32}.
type HospitalID string

// RecordID is a record's ID (32 lowercase hex digits), fixed before encryption.
type RecordID string

// ConsentID names a consent: the TxID of the grant that created it.
type ConsentID string

// GrantID names an access decision (a grant or a denial): the TxID of its request.
type GrantID string

// TxID is the first 16 bytes of the SHA-256 of a tx's bytes, in lowercase hex.
type TxID string

// Purpose is a v3 ActReason purpose-of-use code (TREAT, ETREAT, HPAYMT, HRESCH, …).
type Purpose string

// DataClass is a FHIR resource type held in a record (Observation, Condition, …).
type DataClass string

// Block is what the state machine knows of the block being applied.
type Block struct {
	Height Height
	Time   time.Time
}

// IDOf returns the TxID of tx bytes: the first 16 bytes of their SHA-256, in hex (the
// IDs of consents and grants are the IDs of the txs that made them).
func IDOf(tx []byte) TxID {
	sum := sha256.Sum256(tx)
	return idOfSum(sum)
}

func idOfSum(sum [32]byte) TxID { return TxID(hex.EncodeToString(sum[:idLen/2])) }

// idLen is the length of a TxID (and so of a consent or grant ID) in hex digits.
const idLen = 32

// PatientIDOf returns the PatientID of a public key.
func PatientIDOf(pub []byte) PatientID { return PatientID(hex.EncodeToString(pub)) }

// Kind says what a tx does.
type Kind uint8

// Tx kinds.
const (
	KindProposeHospital Kind = iota + 1 // a member's vote to register a new hospital
	KindRegisterRecord                  // a custodian registers a record
	KindGrant                           // a patient grants consent
	KindRevoke                          // a patient revokes a consent
	KindRequest                         // a hospital requests access (decided on chain)
	KindEmergency                       // break-glass access, granted and flagged
	KindReceipt                         // a custodian's key-release receipt
	KindErase                           // a patient erases a record
	KindReview                          // a privacy officer reviews an emergency access
	KindAcceptCustody                   // a custodian holds a threshold record's blocks and a valid share
	KindAttestErasure                   // a custodian destroyed an erased record's key (or share) and blocks
	KindLeave                           // a member's vote that a hospital leave the consortium
	KindDealShares                      // a custodian deals its share again to a re-sharing's new custodians
	KindHandOver                        // a custodian hands its custody of a threshold record over to another member
)

var kindNames = map[Kind]string{
	KindProposeHospital: "propose-hospital", KindRegisterRecord: "register-record",
	KindGrant: "grant", KindRevoke: "revoke", KindRequest: "request",
	KindEmergency: "emergency", KindReceipt: "receipt", KindErase: "erase", KindReview: "review",
	KindAcceptCustody: "accept-custody", KindAttestErasure: "attest-erasure",
	KindLeave: "leave", KindDealShares: "deal-shares", KindHandOver: "hand-over",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// Body is a tx's signed content. Exactly one payload field is set, the one its Kind
// names.
type Body struct {
	ChainID string `cbor:"1,keyasint"`
	Nonce   []byte `cbor:"2,keyasint"` // 16 random bytes: replay protection that allows concurrent txs
	Expiry  Height `cbor:"3,keyasint"` // the last height at which the tx may be included
	Kind    Kind   `cbor:"4,keyasint"`

	ProposeHospital *Hospital       `cbor:"10,keyasint,omitempty"`
	RegisterRecord  *RegisterRecord `cbor:"11,keyasint,omitempty"`
	Grant           *Grant          `cbor:"12,keyasint,omitempty"`
	Revoke          *Revoke         `cbor:"13,keyasint,omitempty"`
	Request         *Request        `cbor:"14,keyasint,omitempty"`
	Emergency       *Emergency      `cbor:"15,keyasint,omitempty"`
	Receipt         *Receipt        `cbor:"16,keyasint,omitempty"`
	Erase           *Erase          `cbor:"17,keyasint,omitempty"`
	Review          *Review         `cbor:"18,keyasint,omitempty"`
	AcceptCustody   *AcceptCustody  `cbor:"19,keyasint,omitempty"`
	AttestErasure   *AttestErasure  `cbor:"20,keyasint,omitempty"`
	Leave           *Leave          `cbor:"21,keyasint,omitempty"`
	DealShares      *DealShares     `cbor:"22,keyasint,omitempty"`
	HandOver        *HandOver       `cbor:"23,keyasint,omitempty"`
}

// Hospital is a member hospital as registered: its keys and its voting power.
type Hospital struct {
	ID       HospitalID `cbor:"1,keyasint" json:"id"`
	Name     string     `cbor:"2,keyasint" json:"name"`
	Operator []byte     `cbor:"3,keyasint" json:"operator_key"` // Ed25519: signs its txs
	Node     []byte     `cbor:"4,keyasint" json:"node_key"`     // Ed25519: libp2p / CometBFT identity
	Wrap     []byte     `cbor:"5,keyasint" json:"wrap_key"`     // X25519: receives wrapped DEKs
	Addrs    []string   `cbor:"6,keyasint,omitempty" json:"addrs,omitempty"`
	Power    int64      `cbor:"7,keyasint" json:"power"` // votes on new members
}

// RegisterRecord registers a record the signing hospital holds.
//
// Without Threshold and Commitments the record's key is held whole by its custodian
// (a whole-key record, as before threshold custody). With them it is in threshold
// custody (custody.go): the key is shared Threshold-of-len(Custodians), share i
// belonging to the i-th custodian, so Custodians must be listed sorted and once each;
// Commitments are the sharing's public Feldman commitments in crypto's encoding
// (crypto.Commitments.Bytes), Threshold of them.
type RegisterRecord struct {
	Record      RecordID     `cbor:"1,keyasint"`
	CID         string       `cbor:"2,keyasint"`
	Patient     PatientID    `cbor:"3,keyasint"`
	Classes     []DataClass  `cbor:"4,keyasint"`
	Custodians  []HospitalID `cbor:"5,keyasint"`
	Threshold   int          `cbor:"6,keyasint,omitempty"` // k; 0 for a whole-key record
	Commitments []byte       `cbor:"7,keyasint,omitempty"`
}

// Grant is a patient's consent: a policy over their records.
type Grant struct {
	Patient PatientID `cbor:"1,keyasint"`
	Policy  Policy    `cbor:"2,keyasint"`
}

// Revoke revokes one of the patient's consents.
type Revoke struct {
	Consent ConsentID `cbor:"1,keyasint"`
}

// Request asks for access to a record for a purpose; the chain decides.
type Request struct {
	Requester HospitalID `cbor:"1,keyasint"`
	Record    RecordID   `cbor:"2,keyasint"`
	Purpose   Purpose    `cbor:"3,keyasint"`
}

// Emergency is break-glass access with a coded reason: granted, flagged for review.
type Emergency struct {
	Requester HospitalID `cbor:"1,keyasint"`
	Record    RecordID   `cbor:"2,keyasint"`
	Reason    string     `cbor:"3,keyasint"` // one of EmergencyReasons()
}

// Receipt records that a custodian released a record's key for a grant.
type Receipt struct {
	Custodian HospitalID `cbor:"1,keyasint"`
	Grant     GrantID    `cbor:"2,keyasint"`
}

// Erase erases a record: custodians destroy its key; the chain keeps a tombstone.
type Erase struct {
	Record RecordID `cbor:"1,keyasint"`
}

// Review is a privacy officer's review of an emergency access, with an outcome code,
// signed with their hospital's operator key: the hospital that requested the access or
// a custodian of the record. An emergency is reviewed once.
type Review struct {
	Grant   GrantID `cbor:"1,keyasint"`
	Outcome string  `cbor:"2,keyasint"` // one of ReviewOutcomes()
}

// AcceptCustody is a custodian's statement that it holds every block of a threshold
// record's ciphertext and a share that verifies against the record's commitments.
// Commitments is the SHA-256 of the commitments it verified against, so a statement
// about another sharing (after a re-sharing) never counts for this one.
type AcceptCustody struct {
	Custodian   HospitalID `cbor:"1,keyasint"`
	Record      RecordID   `cbor:"2,keyasint"`
	Commitments []byte     `cbor:"3,keyasint"`
}

// Leave is a member's vote that Hospital leave the consortium (the hospital itself may
// vote). At ≥ 2/3 of the members' power it leaves: it is removed from the registry
// (so from every node's allowlists), from the validator set if it validates, and every
// threshold record it is a custodian of is re-shared to a new set (reshare.go).
type Leave struct {
	Hospital HospitalID `cbor:"1,keyasint"`
}

// DealShares is an old custodian's deal in a re-sharing of a threshold record: its
// share dealt again Threshold-of-len(To) (crypto.Reshare), the commitments to that
// dealing (whose constant term the chain checks against the record's commitments) and
// one sub-share per new custodian, in the re-sharing's To order, each HPKE-wrapped to
// that custodian's registered key (crypto.WrapSubShare). Epoch and Round name the
// re-sharing.
type DealShares struct {
	Dealer      HospitalID `cbor:"1,keyasint"`
	Record      RecordID   `cbor:"2,keyasint"`
	Epoch       uint32     `cbor:"3,keyasint"`
	Commitments []byte     `cbor:"4,keyasint"`
	Shares      [][]byte   `cbor:"5,keyasint"`
	// Round is the height the re-sharing started at (Reshare.Height): a re-sharing
	// started again for another new set is another round, and a deal for an earlier
	// one (whose sub-shares are wrapped to an earlier set) does not count.
	Round Height `cbor:"6,keyasint"`
}

// HandOver is a custodian's hand-over of its custody of a threshold record, signed
// with its operator key (a hospital retiring its store, or one that lost its share): the
// record is re-shared (reshare.go) to its other custodians and To in its place — a
// member not among them, or, if To is empty, one the chain chooses as after a leave.
// Until the new sharing is in force the custodian keeps its share and releases it as
// before, and it deals it again like the others.
type HandOver struct {
	Custodian HospitalID `cbor:"1,keyasint"`
	Record    RecordID   `cbor:"2,keyasint"`
	To        HospitalID `cbor:"3,keyasint,omitempty"`
	// Withdraw ends the custodian's hand-over of Record before the switch instead
	// (handover.go).
	Withdraw bool `cbor:"4,keyasint,omitempty"`
}

// AttestErasure is a custodian's statement that it destroyed an erased record's key
// (or its share) and unpinned its ciphertext.
type AttestErasure struct {
	Custodian HospitalID `cbor:"1,keyasint"`
	Record    RecordID   `cbor:"2,keyasint"`
}
