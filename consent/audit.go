package consent

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// AuditKind says what an audit event records.
type AuditKind string

// Audit event kinds: every access decision, key release, consent change, record
// registration or erasure, each custodian's attestation that it destroyed its key or
// share of an erased record (crypto-shredding, per custodian), and review of an
// emergency access.
const (
	AuditConsentGranted    AuditKind = "consent-granted"
	AuditConsentRevoked    AuditKind = "consent-revoked"
	AuditAccessGranted     AuditKind = "access-granted"
	AuditAccessDenied      AuditKind = "access-denied"
	AuditEmergency         AuditKind = "emergency-access"
	AuditKeyReleased       AuditKind = "key-released"
	AuditRecordRegistered  AuditKind = "record-registered"
	AuditRecordErased      AuditKind = "record-erased"
	AuditEmergencyReviewed AuditKind = "emergency-reviewed"
	AuditErasureAttested   AuditKind = "erasure-attested"
	AuditCustodyChanged    AuditKind = "custody-changed"
)

// auditKinds lists every audit event kind. Never modified: the chain checks queries
// with it, so it is read through AuditKinds and IsAuditKind.
var auditKinds = []AuditKind{
	AuditConsentGranted, AuditConsentRevoked, AuditAccessGranted, AuditAccessDenied,
	AuditEmergency, AuditKeyReleased, AuditRecordRegistered, AuditRecordErased,
	AuditEmergencyReviewed, AuditErasureAttested, AuditCustodyChanged,
}

// AuditKinds returns every audit event kind (a copy).
func AuditKinds() []AuditKind { return slices.Clone(auditKinds) }

// IsAuditKind reports whether k is an audit event kind.
func IsAuditKind(k AuditKind) bool { return slices.Contains(auditKinds, k) }

// AuditEvent is one entry of the access log: an RFC 6962 Merkle log whose leaves are
// the canonical CBOR of the events, in the order their txs were applied. It holds
// pseudonymous IDs and codes only, never PHI. Fields that do not apply to a kind are
// empty.
type AuditEvent struct {
	Index  uint64    `cbor:"1,keyasint" json:"index"` // position in the log, from 0
	Height Height    `cbor:"2,keyasint" json:"height"`
	Time   int64     `cbor:"3,keyasint" json:"time"` // block time, Unix seconds
	Kind   AuditKind `cbor:"4,keyasint" json:"kind"`
	Tx     TxID      `cbor:"5,keyasint" json:"tx"`
	// Patient is whose record or consent the event is about.
	Patient PatientID `cbor:"6,keyasint" json:"patient"`
	Record  RecordID  `cbor:"7,keyasint,omitempty" json:"record,omitempty"`
	// Hospital is the hospital that acted: the requester of an access or emergency,
	// the custodian that released a key, registered a record or attested its
	// erasure, the reviewer of an emergency; for a custody change, the custodian that
	// handed its custody over or left. Empty when the patient acted.
	Hospital HospitalID `cbor:"8,keyasint,omitempty" json:"hospital,omitempty"`
	// Custodians are the record's custodians, for events about a record other than a
	// key release (for a custody change, the new ones).
	Custodians []HospitalID `cbor:"9,keyasint,omitempty" json:"custodians,omitempty"`
	// Recipient is, for a key release, the hospital the key was released to.
	Recipient HospitalID `cbor:"10,keyasint,omitempty" json:"recipient,omitempty"`
	Purpose   Purpose    `cbor:"11,keyasint,omitempty" json:"purpose,omitempty"`
	// Consent is the consent granted or revoked, or the one that permitted an access.
	Consent ConsentID `cbor:"12,keyasint,omitempty" json:"consent,omitempty"`
	Grant   GrantID   `cbor:"13,keyasint,omitempty" json:"grant,omitempty"`
	// Reason is a denial's reason code, an emergency's coded reason, a review's
	// outcome code, or a custody change's cause (hand-over or leave).
	Reason string `cbor:"14,keyasint,omitempty" json:"reason,omitempty"`
}

// Leaf returns the event's leaf bytes: its canonical CBOR.
func (e AuditEvent) Leaf() ([]byte, error) {
	b, err := encMode.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("consent: encode audit event: %w", err)
	}
	return b, nil
}

// DecodeAuditEvent parses leaf bytes, accepting only the canonical encoding.
func DecodeAuditEvent(leaf []byte) (*AuditEvent, error) {
	var e AuditEvent
	if err := strictUnmarshal(leaf, &e); err != nil {
		return nil, fmt.Errorf("consent: audit leaf: %w", err)
	}
	return &e, nil
}

// hospitals returns every hospital the event involves, sorted and unique.
func (e *AuditEvent) hospitals() []HospitalID {
	hs := append([]HospitalID{}, e.Custodians...)
	for _, h := range []HospitalID{e.Hospital, e.Recipient} {
		if h != "" {
			hs = append(hs, h)
		}
	}
	return sortedUnique(hs)
}

// Hex is bytes that are lowercase hex in JSON.
type Hex []byte

// MarshalText encodes h as lowercase hex.
func (h Hex) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText decodes hex.
func (h *Hex) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("consent: hex: %w", err)
	}
	*h = d
	return nil
}

// LogRoot is the access log's size and root hash as of a height.
type LogRoot struct {
	Height Height `cbor:"1,keyasint" json:"height"`
	Size   uint64 `cbor:"2,keyasint" json:"size"`
	Root   Hex    `cbor:"3,keyasint" json:"root"`
	// Since is the height at which the log reached this size (0 while it is empty).
	Since Height `cbor:"4,keyasint,omitempty" json:"since,omitempty"`
}

// DecodeLogRoot parses the value of a tx result that appended to the log: the log's
// size and root after that tx (so a light client can check a root against the block
// results a header commits to).
func DecodeLogRoot(b []byte) (*LogRoot, error) {
	var r LogRoot
	if err := strictUnmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("consent: log root: %w", err)
	}
	return &r, nil
}

// logHead is the log's current state: its size, root and the compact range of
// [0, size), from which the next append computes the new root in O(log size).
type logHead struct {
	Size   uint64   `cbor:"1,keyasint"`
	Root   []byte   `cbor:"2,keyasint"`
	Hashes [][]byte `cbor:"3,keyasint"`
}

var logHasher = rfc6962.DefaultHasher

var logRanges = &compact.RangeFactory{Hash: logHasher.HashChildren}

// hex16 is v as 16 lowercase hex digits.
func hex16(v uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return hex.EncodeToString(b[:])
}

// newestFirst is the key suffix that sorts v descending: forward iteration over an
// index visits the newest entries first.
func newestFirst(v uint64) string { return hex16(^v) }

func parseNewestFirst(s string) (uint64, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 8 {
		return 0, fmt.Errorf("consent: malformed index key suffix %q", s)
	}
	return ^binary.BigEndian.Uint64(b), nil
}

func leafKey(i uint64) string { return keyAuditLeaf + hex16(i) }

func nodeKey(id compact.NodeID) string {
	return fmt.Sprintf("%s%02x/%s", keyAuditNode, id.Level, hex16(id.Index))
}

func loadLogHead(r Reader) (logHead, error) {
	var h logHead
	_, err := getValue(r, keyAuditHead, &h)
	return h, err
}

// audit appends e to the log, stamped with its index, the block and the tx, and
// indexes it by patient, by every hospital it involves and by kind. CheckTx's writes
// are thrown away, so it appends nothing.
func (a *action) audit(e AuditEvent) error {
	if a.check {
		return nil
	}
	head, err := loadLogHead(a.st)
	if err != nil {
		return err
	}
	e.Index, e.Height, e.Time, e.Tx = head.Size, a.block.Height, a.block.Time.Unix(), a.id
	leaf, err := e.Leaf()
	if err != nil {
		return err
	}
	rng, err := logRanges.NewRange(0, head.Size, head.Hashes)
	if err != nil {
		return fmt.Errorf("consent: audit log head: %w", err)
	}
	var werr error
	err = rng.Append(logHasher.HashLeaf(leaf), func(id compact.NodeID, h []byte) {
		if werr == nil && id.Level > 0 { // a leaf's hash is its leaf's: stored already
			werr = a.st.Set([]byte(nodeKey(id)), h)
		}
	})
	if err := firstError(err, werr); err != nil {
		return err
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return err
	}
	head = logHead{Size: rng.End(), Root: root, Hashes: rng.Hashes()}
	if err := setValue(a.st, keyAuditHead, head); err != nil {
		return err
	}
	if err := a.st.Set([]byte(leafKey(e.Index)), leaf); err != nil {
		return err
	}
	if err := a.indexEvent(&e); err != nil {
		return err
	}
	a.logRoot = &LogRoot{Height: a.block.Height, Size: head.Size, Root: root, Since: a.block.Height}
	return nil
}

// indexEvent writes the event's index keys; each value is the event's kind, so a
// query filtering on kind need not read the events it skips.
func (a *action) indexEvent(e *AuditEvent) error {
	suffix := newestFirst(e.Index)
	keys := []string{keyAuditPatient + string(e.Patient) + "/" + suffix, keyAuditKind + string(e.Kind) + "/" + suffix}
	for _, h := range e.hospitals() {
		keys = append(keys, keyAuditHospital+string(h)+"/"+suffix)
	}
	for _, k := range keys {
		if err := a.st.Set([]byte(k), []byte(e.Kind)); err != nil {
			return err
		}
	}
	return nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkpointLog records, at the end of a block in which the log grew, its size and root
// under the block's height, for consistency proofs between heights.
func checkpointLog(st Store, h Height) error {
	head, err := loadLogHead(st)
	if err != nil || head.Size == 0 {
		return err
	}
	last, err := logRootAt(st, h)
	if err != nil || last.Size == head.Size {
		return err
	}
	return setValue(st, keyAuditRoot+newestFirst(uint64(h)), LogRoot{Height: h, Size: head.Size, Root: head.Root, Since: h})
}

// logRootAt returns the log's size and root at the end of height h: the latest
// checkpoint at or below h, or the empty log.
func logRootAt(r Reader, h Height) (LogRoot, error) {
	out := LogRoot{Height: h, Root: logHasher.EmptyRoot()}
	err := scanFrom(r, keyAuditRoot, keyAuditRoot+newestFirst(uint64(h)), func(_ string, v []byte) (bool, error) {
		if err := decMode.Unmarshal(v, &out); err != nil {
			return false, fmt.Errorf("consent: audit log checkpoint: %w", err)
		}
		return false, nil
	})
	out.Height = h
	return out, err
}

// scanFrom visits the keys with prefix from start (inclusive) in order; fn returns
// false to stop.
func scanFrom(r Reader, prefix, start string, fn func(key string, value []byte) (bool, error)) error {
	return scanRange(r, start, string(prefixEnd([]byte(prefix))), fn)
}
