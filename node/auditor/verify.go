package auditor

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/client"
)

// AppHash returns the app hash after height h, from the signed header h+1.
func (v *Verifier) AppHash(ctx context.Context, h int64) ([]byte, error) {
	sh, err := v.SignedHeader(ctx, h+1)
	if err != nil {
		return nil, err
	}
	return sh.AppHash, nil
}

// LatestVerifiable is the highest height whose app hash a signed header holds (the
// node's latest height minus one).
func (v *Verifier) LatestVerifiable(ctx context.Context) (int64, error) {
	h, err := v.src.LatestBlockHeight(ctx)
	if err != nil {
		return 0, err
	}
	return h - 1, nil
}

// LogAt returns the access log's size and root after height h, checked: the node's
// hash parts for h must rebuild the app hash the validators signed in header h+1.
func (v *Verifier) LogAt(ctx context.Context, h int64) (*consent.LogCommitment, error) {
	want, err := v.AppHash(ctx, h)
	if err != nil {
		return nil, err
	}
	var parts abci.HashParts
	if err := v.src.Query(ctx, abci.HashPartsPath+strconv.FormatInt(h, 10), &parts); err != nil {
		return nil, err
	}
	// A height without txs leaves the app hash as it was: its parts are those of the
	// height that made the hash, at or below h.
	if parts.Height > h || parts.Height < 0 || !bytes.Equal(abci.AppHashOf(parts.Prev, parts.Digest, parts.Height, parts.Commitment), want) {
		return nil, fmt.Errorf("%w: the node's hash parts for height %d do not rebuild the signed app hash", ErrUnverified, h)
	}
	c, err := consent.DecodeLogCommitment(parts.Commitment)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnverified, err)
	}
	return c, nil
}

// EventProof is an event checked against a signed log root.
type EventProof struct {
	Event  consent.AuditEvent
	Height int64                 // the height whose signed app hash binds the root
	Log    consent.LogCommitment // the log's size and root at Height
	Proof  [][]byte              // the inclusion proof's hashes
}

// Entries serves the access log's entries with their leaf bytes. Events are role-
// scoped: a node's API serves them to privacy officers (API.LogEntry), not its RPC.
type Entries interface {
	LogEntry(ctx context.Context, index uint64) (*consent.LogEntry, error)
}

var _ Entries = (*client.API)(nil)

// VerifyEvent fetches the log's event at index from entries and checks it: its leaf
// must be included, by the node's inclusion proof (public, over the RPC), in the log
// root that the validators' signed app hash binds at the latest verifiable height.
// Neither the entry's source nor the node is trusted.
func (v *Verifier) VerifyEvent(ctx context.Context, index uint64, entries Entries) (*EventProof, error) {
	h, err := v.LatestVerifiable(ctx)
	if err != nil {
		return nil, err
	}
	log, err := v.LogAt(ctx, h)
	if err != nil {
		return nil, err
	}
	if index >= log.Size {
		return nil, fmt.Errorf("%w: event %d is not in the log of %d events at height %d", client.ErrNotFound, index, log.Size, h)
	}
	entry, err := entries.LogEntry(ctx, index)
	if err != nil {
		return nil, err
	}
	var proof consent.InclusionProof
	if err := v.src.Query(ctx, fmt.Sprintf("/audit/inclusion/%d/%d", index, log.Size), &proof); err != nil {
		return nil, err
	}
	if err := consent.VerifyInclusion(entry.Leaf, index, log.Size, proof.Hashes(), log.Root); err != nil {
		return nil, fmt.Errorf("%w: event %d: %v", ErrUnverified, index, err)
	}
	e, err := consent.DecodeAuditEvent(entry.Leaf)
	if err != nil {
		return nil, fmt.Errorf("%w: event %d: %v", ErrUnverified, index, err)
	}
	return &EventProof{Event: *e, Height: h, Log: *log, Proof: proof.Hashes()}, nil
}

// VerifyConsistency checks that the log at height h2 extends the log at h1 (nothing
// was rewritten or dropped), both roots checked against signed headers.
func (v *Verifier) VerifyConsistency(ctx context.Context, h1, h2 int64) (*consent.LogCommitment, *consent.LogCommitment, error) {
	a, err := v.LogAt(ctx, h1)
	if err != nil {
		return nil, nil, err
	}
	b, err := v.LogAt(ctx, h2)
	if err != nil {
		return nil, nil, err
	}
	if a.Size > b.Size {
		return nil, nil, fmt.Errorf("%w: the log shrank from %d to %d events between heights %d and %d", ErrUnverified, a.Size, b.Size, h1, h2)
	}
	var proof consent.ConsistencyProof
	if a.Size > 0 && a.Size < b.Size {
		if err := v.src.Query(ctx, fmt.Sprintf("/audit/consistency/%d/%d", a.Size, b.Size), &proof); err != nil {
			return nil, nil, err
		}
	}
	if err := consent.VerifyConsistency(a.Size, b.Size, a.Root, b.Root, proof.Hashes()); err != nil {
		return nil, nil, fmt.Errorf("%w: heights %d → %d: %v", ErrUnverified, h1, h2, err)
	}
	return a, b, nil
}
