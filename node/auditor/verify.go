package auditor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	cmtmath "github.com/cometbft/cometbft/libs/math"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/client"
)

// ErrUnverified means what a node said does not check out against the headers the
// validators signed: the node is lying, or serving tampered state.
var ErrUnverified = errors.New("auditor: does not verify")

// Verifier checks what a node says against block headers signed by validators holding
// more than 2/3 of the voting power of a trusted validator set (the genesis one), the
// way a light client does: it trusts the node for nothing.
type Verifier struct {
	c       *client.Client
	chainID string
	mu      sync.Mutex
	vals    *cmttypes.ValidatorSet // the trusted set: genesis', then the latest verified change
}

// NewVerifier trusts the validator set of gen (the consortium's genesis.json).
func NewVerifier(c *client.Client, gen *cmttypes.GenesisDoc) (*Verifier, error) {
	if gen.ChainID != c.ChainID() {
		return nil, fmt.Errorf("auditor: the genesis is for chain %q, the node is on %q", gen.ChainID, c.ChainID())
	}
	vals := make([]*cmttypes.Validator, len(gen.Validators))
	for i, v := range gen.Validators {
		vals[i] = cmttypes.NewValidator(v.PubKey, v.Power)
	}
	set := cmttypes.NewValidatorSet(vals)
	if err := set.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("auditor: genesis validators: %w", err)
	}
	return &Verifier{c: c, chainID: gen.ChainID, vals: set}, nil
}

// SignedHeader returns the header at height h, checked: well formed, for this chain,
// by the trusted validator set, and committed by signatures of more than 2/3 of its
// power.
func (v *Verifier) SignedHeader(ctx context.Context, h int64) (*cmttypes.SignedHeader, error) {
	sh, err := v.c.SignedHeader(ctx, h)
	if err != nil {
		return nil, err
	}
	if err := sh.ValidateBasic(v.chainID); err != nil {
		return nil, fmt.Errorf("%w: header %d: %v", ErrUnverified, h, err)
	}
	vals, err := v.validatorsOf(ctx, sh)
	if err != nil {
		return nil, err
	}
	if err := vals.VerifyCommitLight(v.chainID, sh.Commit.BlockID, sh.Height, sh.Commit); err != nil {
		return nil, fmt.Errorf("%w: header %d: %v", ErrUnverified, h, err)
	}
	return sh, nil
}

// validatorsOf is the validator set that signed sh: the trusted one, or, when the set
// changed (a hospital left or joined the validators), the node's set at that height,
// accepted the way a light client skips: its hash is the header's, and validators of
// the trusted set holding more than 1/3 of its power signed the header (so at least
// one honest validator vouches for the change). It then becomes the trusted set.
func (v *Verifier) validatorsOf(ctx context.Context, sh *cmttypes.SignedHeader) (*cmttypes.ValidatorSet, error) {
	v.mu.Lock()
	trusted := v.vals
	v.mu.Unlock()
	if bytes.Equal(sh.ValidatorsHash, trusted.Hash()) {
		return trusted, nil
	}
	vals, err := v.c.Validators(ctx, sh.Height)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(vals.Hash(), sh.ValidatorsHash) {
		return nil, fmt.Errorf("%w: header %d: the node's validator set is not the one the header names", ErrUnverified, sh.Height)
	}
	if err := trusted.VerifyCommitLightTrusting(v.chainID, sh.Commit, cmtmath.Fraction{Numerator: 1, Denominator: 3}); err != nil {
		return nil, fmt.Errorf("%w: header %d is by another validator set than the trusted one, and the trusted one does not vouch for it: %v",
			ErrUnverified, sh.Height, err)
	}
	v.mu.Lock()
	v.vals = vals
	v.mu.Unlock()
	return vals, nil
}

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
	h, err := v.c.LatestBlockHeight(ctx)
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
	if err := v.c.Query(ctx, abci.HashPartsPath+strconv.FormatInt(h, 10), &parts); err != nil {
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
	if err := v.c.Query(ctx, fmt.Sprintf("/audit/inclusion/%d/%d", index, log.Size), &proof); err != nil {
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
		if err := v.c.Query(ctx, fmt.Sprintf("/audit/consistency/%d/%d", a.Size, b.Size), &proof); err != nil {
			return nil, nil, err
		}
	}
	if err := consent.VerifyConsistency(a.Size, b.Size, a.Root, b.Root, proof.Hashes()); err != nil {
		return nil, nil, fmt.Errorf("%w: heights %d → %d: %v", ErrUnverified, h1, h2, err)
	}
	return a, b, nil
}
