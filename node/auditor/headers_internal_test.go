package auditor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/crypto/tmhash"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"
)

const testChainID = "verifier-test"

// fakeNode serves a chain built in memory, forged or not: a Node the tests control.
type fakeNode struct {
	mu      sync.Mutex
	headers map[int64]*cmttypes.SignedHeader
	vals    map[int64]*cmttypes.ValidatorSet
}

func (n *fakeNode) ChainID() string { return testChainID }

func (n *fakeNode) SignedHeader(_ context.Context, h int64) (*cmttypes.SignedHeader, error) {
	return served(n, n.headers, h, "header")
}

func (n *fakeNode) Validators(_ context.Context, h int64) (*cmttypes.ValidatorSet, error) {
	return served(n, n.vals, h, "validators")
}

// served is what n serves of m at height h.
func served[T any](n *fakeNode, m map[int64]T, h int64, what string) (T, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	x, ok := m[h]
	if !ok {
		return x, fmt.Errorf("fake node: no %s at %d", what, h)
	}
	return x, nil
}

func (n *fakeNode) LatestBlockHeight(context.Context) (int64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return int64(len(n.headers)), nil
}

func (n *fakeNode) Query(context.Context, string, any) error {
	return errors.New("fake node: no queries")
}

// signers4 is four validators A, B, C, D of equal power, and the keys that sign.
type signers4 struct {
	keys map[string]crypto.PrivKey // by address
	val  []*cmttypes.Validator     // A, B, C, D
	gen  *cmttypes.GenesisDoc
}

func newSigners4(t *testing.T) *signers4 {
	t.Helper()
	tc := &signers4{keys: map[string]crypto.PrivKey{}, gen: &cmttypes.GenesisDoc{ChainID: testChainID, InitialHeight: 1}}
	for i := 0; i < 4; i++ {
		k := ed25519.GenPrivKey()
		v := cmttypes.NewValidator(k.PubKey(), 10)
		tc.keys[string(v.Address)] = k
		tc.val = append(tc.val, v)
		tc.gen.Validators = append(tc.gen.Validators, cmttypes.GenesisValidator{PubKey: k.PubKey(), Power: 10})
	}
	return tc
}

// set is a validator set of the named validators (0 = A … 3 = D).
func (tc *signers4) set(idx ...int) *cmttypes.ValidatorSet {
	vals := make([]*cmttypes.Validator, len(idx))
	for i, j := range idx {
		vals[i] = cmttypes.NewValidator(tc.val[j].PubKey, tc.val[j].VotingPower)
	}
	return cmttypes.NewValidatorSet(vals)
}

// header is header h after prev (nil at the first height), naming vals and next, with
// a commit that the validators of vals in signers sign.
func (tc *signers4) header(t *testing.T, h int64, prev *cmttypes.SignedHeader, vals, next *cmttypes.ValidatorSet,
	signers *cmttypes.ValidatorSet) *cmttypes.SignedHeader {
	t.Helper()
	hdr := &cmttypes.Header{
		Version: cmtversion.Consensus{Block: version.BlockProtocol}, ChainID: testChainID, Height: h,
		Time:           time.Unix(1_700_000_000+h, 0).UTC(),
		ValidatorsHash: vals.Hash(), NextValidatorsHash: next.Hash(), ConsensusHash: tmhash.Sum([]byte("params")),
		AppHash: []byte{byte(h)}, ProposerAddress: vals.Validators[0].Address,
	}
	if prev != nil {
		hdr.LastBlockID = prev.Commit.BlockID
	}
	id := cmttypes.BlockID{Hash: hdr.Hash(), PartSetHeader: cmttypes.PartSetHeader{Total: 1, Hash: tmhash.Sum(hdr.Hash())}}
	commit := &cmttypes.Commit{Height: h, BlockID: id, Signatures: make([]cmttypes.CommitSig, vals.Size())}
	for i, v := range vals.Validators {
		commit.Signatures[i] = cmttypes.NewCommitSigAbsent()
		if signers.HasAddress(v.Address) {
			commit.Signatures[i] = cmttypes.CommitSig{BlockIDFlag: cmttypes.BlockIDFlagCommit, ValidatorAddress: v.Address, Timestamp: hdr.Time}
		}
	}
	for i, v := range vals.Validators {
		if commit.Signatures[i].BlockIDFlag != cmttypes.BlockIDFlagCommit {
			continue
		}
		sig, err := tc.keys[string(v.Address)].Sign(commit.VoteSignBytes(testChainID, int32(i)))
		if err != nil {
			t.Fatal(err)
		}
		commit.Signatures[i].Signature = sig
	}
	return &cmttypes.SignedHeader{Header: hdr, Commit: commit}
}

// removal is an honest chain of heights 1..10 on which D leaves: the validators vote
// it out in block 3, header 4 names {A, B, C} as next, and they sign from height 5.
func (tc *signers4) removal(t *testing.T) *fakeNode {
	t.Helper()
	all, abc := tc.set(0, 1, 2, 3), tc.set(0, 1, 2)
	n := &fakeNode{headers: map[int64]*cmttypes.SignedHeader{}, vals: map[int64]*cmttypes.ValidatorSet{}}
	var prev *cmttypes.SignedHeader
	for h := int64(1); h <= 10; h++ {
		vals, next := abc, abc
		if h < 5 {
			vals = all
		}
		if h < 4 {
			next = all
		}
		prev = tc.header(t, h, prev, vals, next, vals)
		n.headers[h], n.vals[h] = prev, vals
	}
	n.vals[11] = abc
	return n
}

func newTestVerifier(t *testing.T, n Node, gen *cmttypes.GenesisDoc) *Verifier {
	t.Helper()
	v, err := NewVerifier(n, gen)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVerifierFollowsRemoval: every header of a chain on which a validator leaves
// verifies, asked for in order (a replay), from the top (one walk), or backwards, and
// the verified history holds the two sets with the change at height 5.
func TestVerifierFollowsRemoval(t *testing.T) {
	tc := newSigners4(t)
	n := tc.removal(t)
	for _, order := range [][]int64{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {10, 1, 4, 5, 9}, {5, 4, 3}} {
		v := newTestVerifier(t, n, tc.gen)
		for _, h := range order {
			sh, err := v.SignedHeader(context.Background(), h)
			if err != nil {
				t.Fatalf("order %v: header %d: %v", order, h, err)
			}
			if sh.Height != h {
				t.Fatalf("order %v: got header %d, want %d", order, sh.Height, h)
			}
		}
		if len(v.epochs) != 2 || v.epochs[1].from != 5 || v.epochs[1].vals.Size() != 3 {
			t.Fatalf("order %v: got %d epochs (%+v), want the genesis set and {A,B,C} from 5", order, len(v.epochs), v.epochs)
		}
	}
}

// TestVerifierRefuses: what a node that forges serves does not verify, whatever the
// verifier walked through before.
func TestVerifierRefuses(t *testing.T) {
	tc := newSigners4(t)
	all, abc, ab := tc.set(0, 1, 2, 3), tc.set(0, 1, 2), tc.set(0, 1)
	cases := []struct {
		name    string
		forge   func(n *fakeNode)
		walked  int64 // the height the verifier verified before the forgery (0: none)
		ask     int64
		wantErr error
	}{
		{"A and B (half the genesis power) sign header 7 naming a set of their own", func(n *fakeNode) {
			n.headers[7] = tc.header(t, 7, n.headers[6], ab, ab, ab)
			n.vals[7], n.vals[8] = ab, ab
		}, 0, 7, ErrUnverified},
		{"the same, to a verifier that walked to 6", func(n *fakeNode) {
			n.headers[7] = tc.header(t, 7, n.headers[6], ab, ab, ab)
			n.vals[7], n.vals[8] = ab, ab
		}, 6, 7, ErrUnverified},
		{"the same, to a verifier that walked to 10 (a lookup backwards)", func(n *fakeNode) {
			n.headers[7] = tc.header(t, 7, n.headers[6], ab, ab, ab)
		}, 10, 7, ErrUnverified},
		{"the first header is not by the genesis set", func(n *fakeNode) {
			n.headers[1] = tc.header(t, 1, nil, ab, ab, ab)
		}, 0, 1, ErrUnverified},
		{"header 5 names the genesis set (all four sign), header 4 named {A,B,C}", func(n *fakeNode) {
			n.headers[5] = tc.header(t, 5, n.headers[4], all, abc, all)
		}, 0, 8, ErrUnverified},
		{"header 5 names the genesis set to a verifier that walked to 4", func(n *fakeNode) {
			n.headers[5] = tc.header(t, 5, n.headers[4], all, abc, all)
		}, 4, 5, ErrUnverified},
		{"the node's set at 5 is not the one header 4 names", func(n *fakeNode) {
			n.vals[5] = tc.set(0, 1, 3)
		}, 0, 10, ErrUnverified},
		{"the node serves no set at 5", func(n *fakeNode) {
			n.vals[5] = cmttypes.NewValidatorSet(nil)
		}, 0, 10, ErrUnverified},
		{"header 6 does not follow header 5", func(n *fakeNode) {
			n.headers[6] = tc.header(t, 6, n.headers[4], abc, abc, abc)
		}, 0, 10, ErrUnverified},
		{"header 8 is signed by A and B only (2/3, not more)", func(n *fakeNode) {
			n.headers[8] = tc.header(t, 8, n.headers[7], abc, abc, ab)
		}, 0, 8, ErrUnverified},
		{"the node serves header 9 when asked for 8", func(n *fakeNode) {
			n.headers[8] = n.headers[9]
		}, 0, 8, ErrUnverified},
		{"below the initial height", func(*fakeNode) {}, 0, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := tc.removal(t)
			v := newTestVerifier(t, n, tc.gen)
			if c.walked > 0 {
				for h := int64(1); h <= c.walked; h++ {
					if _, err := v.SignedHeader(context.Background(), h); err != nil {
						t.Fatalf("honest header %d: %v", h, err)
					}
				}
			}
			c.forge(n)
			_, err := v.SignedHeader(context.Background(), c.ask)
			if err == nil {
				t.Fatalf("header %d verified, want it refused", c.ask)
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
		})
	}
}

// TestVerifierConcurrent: callers asking for heights at once all verify, and the
// verified history ends at the highest height walked, never behind it.
func TestVerifierConcurrent(t *testing.T) {
	tc := newSigners4(t)
	n := tc.removal(t)
	v := newTestVerifier(t, n, tc.gen)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(h int64) {
			defer wg.Done()
			if _, err := v.SignedHeader(context.Background(), h); err != nil {
				errs <- fmt.Errorf("header %d: %w", h, err)
			}
		}(int64(10 - i%10))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Which callers walked and which were checked directly against the latest set
	// depends on the interleaving; the history does not: the removal's epoch, from 5.
	if len(v.epochs) != 2 || v.epochs[1].from != 5 || v.last < 5 {
		t.Fatalf("got %d epochs (last walked %d), want the genesis one and the one from 5", len(v.epochs), v.last)
	}
}

// TestVerifierWalkEndsWithContext: a walk stops when its context ends.
func TestVerifierWalkEndsWithContext(t *testing.T) {
	tc := newSigners4(t)
	v := newTestVerifier(t, tc.removal(t), tc.gen)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.SignedHeader(ctx, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if v.last != 0 {
		t.Fatalf("the cancelled walk verified up to %d, want none", v.last)
	}
}
