package auditor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/node/client"
)

// ErrUnverified means what a node said does not check out against the headers the
// validators signed: the node is lying, or serving tampered state.
var ErrUnverified = errors.New("auditor: does not verify")

// Node is what a Verifier reads from a node, all of it unverified: the Verifier checks
// every answer against signed headers. *client.Client is one.
type Node interface {
	ChainID() string
	// SignedHeader is the header at height h with the commit that signs it.
	SignedHeader(ctx context.Context, h int64) (*cmttypes.SignedHeader, error)
	// Validators is the validator set in force at height h.
	Validators(ctx context.Context, h int64) (*cmttypes.ValidatorSet, error)
	// LatestBlockHeight is the latest height the node has a block for.
	LatestBlockHeight(ctx context.Context) (int64, error)
	// Query decodes the JSON answer of the application's query path into v.
	Query(ctx context.Context, path string, v any) error
}

var _ Node = (*client.Client)(nil)

// epoch is a validator set and the first height it signed.
type epoch struct {
	from int64
	vals *cmttypes.ValidatorSet
}

// Verifier checks what a node says against block headers signed by validators holding
// more than 2/3 of the voting power of the validator set in force at their height, the
// way a light client does: it trusts the node for nothing but the genesis validators.
//
// It follows validator set changes sequentially: a set is in force from the height
// after the verified header whose NextValidatorsHash names it, so crossing a change the
// first time costs one header per height from the last verified one (see SignedHeader).
// A Verifier is safe for concurrent use; its verified history only grows.
type Verifier struct {
	src     Node
	chainID string
	initial int64 // the genesis' initial height: its header is by the genesis set

	walking chan struct{} // a one-slot semaphore held by the walk under way, if any

	mu       sync.Mutex
	epochs   []epoch // by ascending from; epochs[0] is the genesis set from initial
	last     int64   // the last height walked through (initial-1 before any)
	lastHash []byte  // header last's hash (nil before any)
	next     []byte  // header last's NextValidatorsHash: the hash of the set at last+1
}

// NewVerifier trusts the validator set of gen (the consortium's genesis.json) for the
// chain's first height.
func NewVerifier(c Node, gen *cmttypes.GenesisDoc) (*Verifier, error) {
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
	initial := gen.InitialHeight
	if initial < 1 {
		initial = 1 // CometBFT's default (GenesisDoc.ValidateAndComplete)
	}
	return &Verifier{src: c, chainID: gen.ChainID, initial: initial, walking: make(chan struct{}, 1),
		epochs: []epoch{{from: initial, vals: set}}, last: initial - 1, next: set.Hash()}, nil
}

// SignedHeader returns the header at height h, checked: well formed, for this chain,
// and committed by signatures of more than 2/3 of the power of the validator set in
// force at h. That set is:
//   - below the last height walked through, the verified history's;
//   - above it, the latest verified set if the header names it (but the height right
//     after it is a walk of one step);
//   - otherwise the one a walk finds: every header from the last walked through to h
//     is fetched and verified in turn, each by the set the header before it named as
//     next (the node's set at that height, checked against that hash). The walk ends
//     with ctx, and at the first header that does not verify (ErrUnverified).
func (v *Verifier) SignedHeader(ctx context.Context, h int64) (*cmttypes.SignedHeader, error) {
	if h < v.initial {
		return nil, fmt.Errorf("auditor: no header below the chain's initial height %d (asked for %d)", v.initial, h)
	}
	sh, err := v.fetch(ctx, h)
	if err != nil {
		return nil, err
	}
	vals, known, err := v.knownSet(sh)
	if err != nil {
		return nil, err
	}
	if !known {
		return sh, v.walk(ctx, sh)
	}
	return sh, v.verifyCommit(vals, sh)
}

// fetch returns the node's header at h, well formed, for this chain and at height h.
func (v *Verifier) fetch(ctx context.Context, h int64) (*cmttypes.SignedHeader, error) {
	sh, err := v.src.SignedHeader(ctx, h)
	if err != nil {
		return nil, err
	}
	if sh == nil {
		return nil, fmt.Errorf("%w: header %d: the node served none", ErrUnverified, h)
	}
	if err := sh.ValidateBasic(v.chainID); err != nil {
		return nil, fmt.Errorf("%w: header %d: %v", ErrUnverified, h, err)
	}
	if sh.Height != h {
		return nil, fmt.Errorf("%w: asked for header %d, the node served header %d", ErrUnverified, h, sh.Height)
	}
	return sh, nil
}

// knownSet is the verified validator set that must have signed sh, if the verified
// history settles it (known): the set in force at a height walked through, which sh
// must name, or the latest set for a later height if sh names it. When sh is above the
// history and names another set, it is not known: a walk must settle it. Nor is it
// for the height right after the history: a walk of one step verifies sh as well and
// extends the history with it, so that callers asking in order (a replay) walk the
// chain at no extra cost.
func (v *Verifier) knownSet(sh *cmttypes.SignedHeader) (vals *cmttypes.ValidatorSet, known bool, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if sh.Height == v.last+1 {
		return nil, false, nil
	}
	if sh.Height > v.last {
		latest := v.epochs[len(v.epochs)-1].vals
		return latest, bytes.Equal(sh.ValidatorsHash, latest.Hash()), nil
	}
	i := sort.Search(len(v.epochs), func(i int) bool { return v.epochs[i].from > sh.Height }) - 1
	vals = v.epochs[i].vals // i ≥ 0: epochs[0].from is the initial height, at or below sh's
	if !bytes.Equal(sh.ValidatorsHash, vals.Hash()) {
		return nil, false, fmt.Errorf("%w: header %d names validators %X, the set in force there is %X",
			ErrUnverified, sh.Height, []byte(sh.ValidatorsHash), []byte(vals.Hash()))
	}
	return vals, true, nil
}

// verifyCommit checks that validators of vals holding more than 2/3 of its power
// signed sh.
func (v *Verifier) verifyCommit(vals *cmttypes.ValidatorSet, sh *cmttypes.SignedHeader) error {
	if err := vals.VerifyCommitLight(v.chainID, sh.Commit.BlockID, sh.Height, sh.Commit); err != nil {
		return fmt.Errorf("%w: header %d: %v", ErrUnverified, sh.Height, err)
	}
	return nil
}

// walk verifies every header from the last walked through up to target, in order,
// extending the verified history as it goes: what it verified stays verified when a
// later header fails. One walk runs at a time; a walk that waited for another first
// checks whether that one settled target.
func (v *Verifier) walk(ctx context.Context, target *cmttypes.SignedHeader) error {
	select {
	case v.walking <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-v.walking }()
	if vals, known, err := v.knownSet(target); err != nil || known {
		if err != nil {
			return err
		}
		return v.verifyCommit(vals, target)
	}
	v.mu.Lock()
	from := v.last + 1
	v.mu.Unlock()
	for h := from; h <= target.Height; h++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		sh := target
		if h < target.Height {
			var err error
			if sh, err = v.fetch(ctx, h); err != nil {
				return err
			}
		}
		if err := v.step(ctx, sh); err != nil {
			return err
		}
	}
	return nil
}

// step verifies sh, the header right after the last walked through, and makes it the
// last: it must name the set its predecessor named as next, be signed by more than 2/3
// of that set's power and link to its predecessor's hash. When it names another set as
// next, the node's set at the next height, whose hash must be that one, begins an
// epoch. Only the walk under way calls step.
func (v *Verifier) step(ctx context.Context, sh *cmttypes.SignedHeader) error {
	v.mu.Lock()
	cur, prevHash, next := v.epochs[len(v.epochs)-1].vals, v.lastHash, v.next
	v.mu.Unlock()
	if !bytes.Equal(sh.ValidatorsHash, next) {
		return fmt.Errorf("%w: header %d names validators %X, the header before it named %X as next",
			ErrUnverified, sh.Height, []byte(sh.ValidatorsHash), next)
	}
	if prevHash != nil && !bytes.Equal(sh.LastBlockID.Hash, prevHash) {
		return fmt.Errorf("%w: header %d does not follow the verified header before it", ErrUnverified, sh.Height)
	}
	if err := v.verifyCommit(cur, sh); err != nil {
		return err
	}
	var change *epoch
	if !bytes.Equal(sh.NextValidatorsHash, cur.Hash()) {
		vals, err := v.nodeSet(ctx, sh.Height+1, sh.NextValidatorsHash)
		if err != nil {
			return err
		}
		change = &epoch{from: sh.Height + 1, vals: vals}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if change != nil {
		v.epochs = append(v.epochs, *change)
	}
	v.last, v.lastHash, v.next = sh.Height, sh.Hash(), sh.NextValidatorsHash
	return nil
}

// nodeSet is the node's validator set at height h, checked: not empty, and its hash is
// want (a verified header's NextValidatorsHash).
func (v *Verifier) nodeSet(ctx context.Context, h int64, want []byte) (*cmttypes.ValidatorSet, error) {
	vals, err := v.src.Validators(ctx, h)
	if err != nil {
		return nil, err
	}
	if vals.IsNilOrEmpty() {
		return nil, fmt.Errorf("%w: the node serves no validators at height %d", ErrUnverified, h)
	}
	if !bytes.Equal(vals.Hash(), want) {
		return nil, fmt.Errorf("%w: the node's validator set at height %d is not the one header %d named (%X)",
			ErrUnverified, h, h-1, want)
	}
	return vals, nil
}
