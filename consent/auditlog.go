package consent

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
)

// The access log's proofs: a node builds them from the tree nodes kept in state; anyone
// checks them with VerifyInclusion and VerifyConsistency against a root they trust (one
// committed by the chain: the value of the tx result that appended the event, or
// /audit/root/<height> from a node they trust), so a node cannot lie about the log.

// ErrAuditProof is a log proof that does not verify.
var ErrAuditProof = errors.New("consent: audit log proof does not verify")

// LeafHash is the RFC 6962 leaf hash of leaf bytes.
func LeafHash(leaf []byte) []byte { return logHasher.HashLeaf(leaf) }

// EmptyLogRoot is the root of the empty log (the SHA-256 of nothing).
func EmptyLogRoot() []byte { return logHasher.EmptyRoot() }

// VerifyInclusion checks that leaf, the canonical encoding of an AuditEvent whose
// Index is index, is at that index in the log of the given size and root. It fails
// with ErrAuditProof.
func VerifyInclusion(leaf []byte, index, size uint64, proofHashes [][]byte, root []byte) error {
	e, err := DecodeAuditEvent(leaf)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAuditProof, err)
	}
	if e.Index != index {
		return fmt.Errorf("%w: the leaf is event %d, not %d", ErrAuditProof, e.Index, index)
	}
	if err := proof.VerifyInclusion(logHasher, index, size, LeafHash(leaf), proofHashes, root); err != nil {
		return fmt.Errorf("%w: inclusion of %d in %d: %s", ErrAuditProof, index, size, proofFailure(err))
	}
	return nil
}

// VerifyConsistency checks that the log of size2 with root2 extends the log of size1
// with root1 (it only appended). It fails with ErrAuditProof.
func VerifyConsistency(size1, size2 uint64, root1, root2 []byte, proofHashes [][]byte) error {
	if len(root1) != logHasher.Size() || len(root2) != logHasher.Size() {
		return fmt.Errorf("%w: roots must be %d bytes", ErrAuditProof, logHasher.Size())
	}
	if size1 == 0 && !bytes.Equal(root1, logHasher.EmptyRoot()) {
		return fmt.Errorf("%w: root of the empty log is wrong", ErrAuditProof)
	}
	if err := proof.VerifyConsistency(logHasher, size1, size2, proofHashes, root1, root2); err != nil {
		return fmt.Errorf("%w: consistency of %d with %d: %s", ErrAuditProof, size1, size2, proofFailure(err))
	}
	return nil
}

// proofFailure says in one line why the merkle package refused a proof.
func proofFailure(err error) string {
	var m proof.RootMismatchError
	if errors.As(err, &m) {
		return fmt.Sprintf("computed root %x… is not %x…", m.CalculatedRoot[:min(8, len(m.CalculatedRoot))], m.ExpectedRoot[:min(8, len(m.ExpectedRoot))])
	}
	return err.Error()
}

// LogEntry is one event of the log with its leaf bytes, for a verifier.
type LogEntry struct {
	Event    AuditEvent `json:"event"`
	Leaf     Hex        `json:"leaf"`      // the canonical CBOR of Event: what the log hashes
	LeafHash Hex        `json:"leaf_hash"` // RFC 6962: SHA-256(0x00 || leaf)
}

// InclusionProof proves that the event at Index is in the log of Size with Root.
type InclusionProof struct {
	Index uint64 `json:"index"`
	Size  uint64 `json:"size"`
	Root  Hex    `json:"root"`
	Proof []Hex  `json:"proof"`
}

// ConsistencyProof proves that the log of Size2 (Root2) extends that of Size1 (Root1).
type ConsistencyProof struct {
	Size1 uint64 `json:"size1"`
	Size2 uint64 `json:"size2"`
	Root1 Hex    `json:"root1"`
	Root2 Hex    `json:"root2"`
	Proof []Hex  `json:"proof"`
}

// Hashes returns the proof's hashes, for VerifyInclusion.
func (p *InclusionProof) Hashes() [][]byte { return hexes(p.Proof) }

// Hashes returns the proof's hashes, for VerifyConsistency.
func (p *ConsistencyProof) Hashes() [][]byte { return hexes(p.Proof) }

func hexes(in []Hex) [][]byte {
	out := make([][]byte, len(in))
	for i, h := range in {
		out[i] = h
	}
	return out
}

// LogHead returns the log's current size and root, with the last applied height.
func LogHead(r Reader) (LogRoot, error) {
	h, _, err := meta(r)
	if err != nil {
		return LogRoot{}, err
	}
	head, err := loadLogHead(r)
	if err != nil {
		return LogRoot{}, err
	}
	out, err := logRootAt(r, h)
	if err != nil || out.Size == head.Size {
		return out, err
	}
	// Appended to in a block that has not ended yet (no checkpoint yet).
	return LogRoot{Height: h, Size: head.Size, Root: head.Root}, nil
}

// LogRootAt returns the log's size and root at the end of height h, which must have
// been applied.
func LogRootAt(r Reader, h Height) (LogRoot, error) {
	last, _, err := meta(r)
	if err != nil {
		return LogRoot{}, err
	}
	if h < 0 || h > last {
		return LogRoot{}, reject(CodeNotFound, "height %d is not applied yet (last %d)", h, last)
	}
	return logRootAt(r, h)
}

// GetLogEntry returns the event at index with its leaf bytes.
func GetLogEntry(r Reader, index uint64) (*LogEntry, error) {
	leaf, err := r.Get([]byte(leafKey(index)))
	if err != nil {
		return nil, err
	}
	if leaf == nil {
		return nil, reject(CodeNotFound, "no audit event %d", index)
	}
	e, err := DecodeAuditEvent(leaf)
	if err != nil {
		return nil, err
	}
	return &LogEntry{Event: *e, Leaf: leaf, LeafHash: LeafHash(leaf)}, nil
}

// ProveInclusion builds the inclusion proof of the event at index in the log of size
// (0: the current size), which must have been reached.
func ProveInclusion(r Reader, index, size uint64) (*InclusionProof, error) {
	head, err := loadLogHead(r)
	if err != nil {
		return nil, err
	}
	if size == 0 {
		size = head.Size
	}
	if size > head.Size || index >= size {
		return nil, reject(CodeNotFound, "no audit event %d in a log of %d (the log holds %d)", index, size, head.Size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	hashes, err := rehash(r, nodes)
	if err != nil {
		return nil, err
	}
	root, err := rootOfSize(r, size, head)
	if err != nil {
		return nil, err
	}
	return &InclusionProof{Index: index, Size: size, Root: root, Proof: toHex(hashes)}, nil
}

// ProveConsistency builds the consistency proof between the log of size1 and that of
// size2 (size1 ≤ size2 ≤ the current size).
func ProveConsistency(r Reader, size1, size2 uint64) (*ConsistencyProof, error) {
	head, err := loadLogHead(r)
	if err != nil {
		return nil, err
	}
	if size1 > size2 || size2 > head.Size {
		return nil, reject(CodeNotFound, "no consistency proof from %d to %d (the log holds %d)", size1, size2, head.Size)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	hashes, err := rehash(r, nodes)
	if err != nil {
		return nil, err
	}
	root1, err := rootOfSize(r, size1, head)
	if err != nil {
		return nil, err
	}
	root2, err := rootOfSize(r, size2, head)
	if err != nil {
		return nil, err
	}
	return &ConsistencyProof{Size1: size1, Size2: size2, Root1: root1, Root2: root2, Proof: toHex(hashes)}, nil
}

// rehash fetches a proof's nodes and folds in its ephemeral node.
func rehash(r Reader, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := getNodes(r, nodes.IDs)
	if err != nil {
		return nil, err
	}
	return nodes.Rehash(hashes, logHasher.HashChildren)
}

// rootOfSize computes the root of the log's first size leaves from the perfect
// subtrees covering them: O(log size) reads.
func rootOfSize(r Reader, size uint64, head logHead) ([]byte, error) {
	switch size {
	case 0:
		return logHasher.EmptyRoot(), nil
	case head.Size:
		return head.Root, nil
	}
	hashes, err := getNodes(r, compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, err
	}
	rng, err := logRanges.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return rng.GetRootHash(nil)
}

func getNodes(r Reader, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		if id.Level == 0 {
			leaf, err := r.Get([]byte(leafKey(id.Index)))
			if err != nil {
				return nil, err
			}
			if leaf == nil {
				return nil, fmt.Errorf("consent: audit log leaf %d is missing: state is corrupt", id.Index)
			}
			out[i] = logHasher.HashLeaf(leaf)
			continue
		}
		h, err := r.Get([]byte(nodeKey(id)))
		if err != nil {
			return nil, err
		}
		if len(h) != logHasher.Size() {
			return nil, fmt.Errorf("consent: audit log node %d/%d is missing: state is corrupt", id.Level, id.Index)
		}
		out[i] = h
	}
	return out, nil
}

func toHex(hashes [][]byte) []Hex {
	out := make([]Hex, len(hashes))
	for i, h := range hashes {
		out[i] = h
	}
	return out
}

// LogCommitment is what the chain's app hash binds of the access log after each
// height: its size and root. With the height's hash parts (see node/chain) and two
// headers signed by the validators, a client checks a root no node can forge.
type LogCommitment struct {
	Size uint64 `cbor:"1,keyasint" json:"size"`
	Root Hex    `cbor:"2,keyasint" json:"root"`
}

// Commitment is the log's commitment as the state stands (after EndBlock: the height's
// final log).
func (m *Machine) Commitment(r Reader) ([]byte, error) {
	head, err := loadLogHead(r)
	if err != nil {
		return nil, err
	}
	root := head.Root
	if head.Size == 0 {
		root = EmptyLogRoot()
	}
	return encMode.Marshal(LogCommitment{Size: head.Size, Root: root})
}

// DecodeLogCommitment parses a commitment (canonical CBOR only).
func DecodeLogCommitment(b []byte) (*LogCommitment, error) {
	var c LogCommitment
	if err := strictUnmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("consent: log commitment: %w", err)
	}
	return &c, nil
}
