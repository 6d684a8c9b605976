package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/consent"
)

// ErrNoProgress means the chain made no block for StallAfter while a submitted tx
// waited: validators holding more than 2/3 of the power are not reachable (or not
// voting). The tx was submitted and may still commit when they return.
var ErrNoProgress = errors.New("the chain is not making progress")

// NoProgress is ErrNoProgress with what the node could see.
type NoProgress struct {
	ID                 consent.TxID
	Hash               []byte // the tx's hash, for TxStatus
	Height             int64  // the node's height, unchanged for Stalled
	Stalled            time.Duration
	Reachable, Total   int // validators: this node (if one) and its connected peers, of the set
	PowerUp, PowerDown int64
}

func (e *NoProgress) Error() string {
	return fmt.Sprintf("%s (%d of %d validators reachable, no block for %s at height %d); "+
		"the tx %s was submitted and may still commit; check with `medledger tx status %X`",
		ErrNoProgress, e.Reachable, e.Total, e.Stalled.Round(time.Second), e.Height, e.ID, e.Hash)
}

func (e *NoProgress) Unwrap() error { return ErrNoProgress }

// Timing of a commit wait.
const (
	// StallAfter is how long a tx may wait with no new block before Submit gives up
	// with *NoProgress. A live chain with a tx pending makes a block within about a
	// second, even idle (empty blocks off) and loaded.
	StallAfter = 8 * time.Second
	// ProgressEvery is how often a waiting Submit writes a line to Client.Progress.
	ProgressEvery = 3 * time.Second
)

// watch follows one tx's wait for its commit.
type watch struct {
	c          *Client
	id         consent.TxID
	hash       []byte
	start      time.Time
	height     int64
	moved      time.Time // when height last changed
	lastPoll   time.Time
	lastReport time.Time
}

func (c *Client) newWatch(id consent.TxID, hash []byte) *watch {
	now := time.Now()
	return &watch{c: c, id: id, hash: hash, start: now, moved: now, lastReport: now, height: -1}
}

// check notes the node's height; it reports progress and returns *NoProgress once no
// block has come for StallAfter. A failed status read is not judged (the next check
// tries again; the caller's deadline bounds the whole).
func (w *watch) check(ctx context.Context) error {
	now := time.Now()
	if now.Sub(w.lastPoll) < 250*time.Millisecond {
		return nil // poll the height a few times a second, not at every Tx poll
	}
	w.lastPoll = now
	h, err := w.c.Height(ctx)
	if err != nil {
		return nil
	}
	if h != w.height {
		w.height, w.moved = h, now
	}
	if now.Sub(w.moved) >= StallAfter {
		np := &NoProgress{ID: w.id, Hash: w.hash, Height: w.height, Stalled: now.Sub(w.moved)}
		if r, err := w.c.Reachable(ctx); err == nil {
			np.Reachable, np.Total, np.PowerUp, np.PowerDown = r.Reachable, r.Total, r.PowerUp, r.PowerDown
		}
		return np
	}
	if w.c.Progress != nil && now.Sub(w.lastReport) >= ProgressEvery {
		w.lastReport = now
		fmt.Fprintf(w.c.Progress, "waiting for tx %s to commit (%s so far; node at height %d)\n",
			w.id, now.Sub(w.start).Round(time.Second), w.height)
	}
	return nil
}

// Reach is how much of the validator set a node reaches.
type Reach struct {
	Reachable, Total   int   // validators: the node itself (if one) and its connected peers
	PowerUp, PowerDown int64 // their voting power, and the rest's
}

// Quorum reports whether the reachable power is more than 2/3 of the whole.
func (r Reach) Quorum() bool { return 3*r.PowerUp > 2*(r.PowerUp+r.PowerDown) }

// Reachable counts the validators the node takes part in consensus with: itself, if
// it is one, and its connected peers (a hospital's node ID is its validator address;
// see reach for other chains).
func (c *Client) Reachable(ctx context.Context) (Reach, error) {
	return c.reachable(ctx, nil)
}

// ReachableWithout is Reachable as it would be once the validator with this node key
// (a hospital's) is out of the set: a leave that would leave the validators this node
// reaches with no more than 2/3 of the power would stop the chain (the leaver's own
// vote gone with it), until enough of the others are back.
func (c *Client) ReachableWithout(ctx context.Context, nodeKey ed25519.PublicKey) (Reach, error) {
	gone := cmted25519.PubKey(nodeKey).Address()
	return c.reachable(ctx, func(v *cmttypes.Validator) bool { return bytes.Equal(v.Address, gone) })
}

func (c *Client) reachable(ctx context.Context, drop func(*cmttypes.Validator) bool) (Reach, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return Reach{}, fmt.Errorf("client: %w", err)
	}
	ni, err := c.rpc.NetInfo(ctx)
	if err != nil {
		return Reach{}, fmt.Errorf("client: %w", err)
	}
	var vals []*cmttypes.Validator
	for page := 1; ; page++ { // every page: CometBFT serves 30 a page by default
		perPage := 100
		res, err := c.rpc.Validators(ctx, nil, &page, &perPage)
		if err != nil {
			return Reach{}, fmt.Errorf("client: %w", err)
		}
		vals = append(vals, res.Validators...)
		if len(vals) >= res.Total || len(res.Validators) == 0 || page == 10 {
			break
		}
	}
	self := strings.ToLower(string(st.NodeInfo.DefaultNodeID))
	up := map[string]bool{self: true}
	for _, p := range ni.Peers {
		up[strings.ToLower(string(p.NodeInfo.DefaultNodeID))] = true
	}
	return reach(vals, up, drop), nil
}

// reach matches node IDs to validator addresses, as a hospital's node key is its
// validator key, leaving out the validators drop reports (drop may be nil). Only on a
// chain where no node it reaches is a validator by its node key (a bare chain, e.g.
// nodetest.Validators, whose nodes sign with other keys) is each node counted as one
// validator of the same power.
func reach(vals []*cmttypes.Validator, up map[string]bool, drop func(*cmttypes.Validator) bool) Reach {
	matched := slices.ContainsFunc(vals, func(v *cmttypes.Validator) bool {
		return up[strings.ToLower(hex.EncodeToString(v.Address))]
	})
	if drop != nil {
		vals = slices.DeleteFunc(slices.Clone(vals), drop)
	}
	r := Reach{Total: len(vals)}
	var total int64
	for _, v := range vals {
		total += v.VotingPower
		if up[strings.ToLower(hex.EncodeToString(v.Address))] {
			r.Reachable++
			r.PowerUp += v.VotingPower
		}
	}
	if !matched && len(vals) > 0 {
		r.Reachable = min(len(up), len(vals))
		r.PowerUp = total * int64(r.Reachable) / int64(len(vals))
	}
	r.PowerDown = total - r.PowerUp
	return r
}

// TxState is where a tx stands on one node.
type TxState string

// TxStates.
const (
	TxCommitted TxState = "committed" // in a block: Height, Code and Log say how it fared
	TxPending   TxState = "pending"   // in this node's mempool, waiting for a block
	TxUnknown   TxState = "unknown"   // neither: not (yet) received, expired, or evicted
)

// TxStatus is a tx's state on one node, as `medledger tx status` and GET /tx/{hash}
// report it.
type TxStatus struct {
	Hash   string  `json:"hash"` // hex, upper case, as CometBFT prints it
	State  TxState `json:"state"`
	Height int64   `json:"height,omitempty"`
	Code   uint32  `json:"code"` // 0: accepted; otherwise a consent.Code
	Log    string  `json:"log,omitempty"`
	// Pending is how many txs this node's mempool holds (for State pending or unknown).
	Pending int `json:"pending,omitempty"`
}

// ParseTxHash reads a tx hash: 64 hex digits (the SHA-256 of the tx bytes).
func ParseTxHash(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("tx hash %q: want 64 hex digits (the hash Submit printed)", s)
	}
	return b, nil
}

// mempoolScan is how many pending txs TxStatus looks through (CometBFT's RPC answers at
// most 100 per call).
const mempoolScan = 100

// TxStatus looks a tx up by its hash: committed (from the node's tx index), pending
// (among the first mempoolScan txs of its mempool), or unknown.
func (c *Client) TxStatus(ctx context.Context, hash []byte) (*TxStatus, error) {
	out := &TxStatus{Hash: fmt.Sprintf("%X", hash)}
	if r, err := c.rpc.Tx(ctx, hash, false); err == nil {
		out.State, out.Height, out.Code, out.Log = TxCommitted, r.Height, r.TxResult.Code, r.TxResult.Log
		return out, nil
	} else if !strings.Contains(err.Error(), "not found") {
		return nil, fmt.Errorf("client: tx %X: %w", hash, err)
	}
	limit := mempoolScan
	u, err := c.rpc.UnconfirmedTxs(ctx, &limit)
	if err != nil {
		return nil, fmt.Errorf("client: mempool: %w", err)
	}
	out.State, out.Pending = TxUnknown, u.Total
	for _, tx := range u.Txs {
		if bytes.Equal(tx.Hash(), hash) {
			out.State = TxPending
			break
		}
	}
	return out, nil
}
