// Package client builds, signs and submits consent-chain txs to a node over its
// CometBFT RPC (loopback or LAN), waits for them to commit, and reads chain state.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	coretypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/consent"
)

// Client talks to one node.
type Client struct {
	rpc     *rpchttp.HTTP
	chainID string
	// Progress, if set, gets a line every ProgressEvery while Submit waits for a
	// commit (the CLI passes stderr).
	Progress io.Writer
}

// TxTTL is how many blocks a submitted tx stays valid.
const TxTTL = 100

// Dial connects to a node's RPC address (e.g. http://127.0.0.1:26657) and learns
// the chain ID.
func Dial(ctx context.Context, addr string) (*Client, error) {
	rpc, err := rpchttp.NewWithTimeout(addr, "/websocket", 30)
	if err != nil {
		return nil, fmt.Errorf("client: node %s: %w", addr, err)
	}
	st, err := rpc.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: node %s does not answer: %w", addr, err)
	}
	return &Client{rpc: rpc, chainID: st.NodeInfo.Network}, nil
}

// ChainID is the chain the node runs.
func (c *Client) ChainID() string { return c.chainID }

// Rejected is a tx the chain refused, with its code and log.
type Rejected struct {
	Code consent.Code
	Log  string
}

func (r *Rejected) Error() string { return fmt.Sprintf("rejected (%s): %s", r.Code, r.Log) }

// Submit fills in the chain ID, a fresh nonce and an expiry, signs body with signer,
// and waits until the tx is committed. A tx the chain refuses gives *Rejected.
//
// A node catching up with the chain (by block sync, for a few seconds after it starts)
// refuses txs and knows only an old height: Submit waits until it has caught up.
func (c *Client) Submit(ctx context.Context, body consent.Body, signer consent.Signer) (*consent.Committed, error) {
	height, err := c.caughtUp(ctx)
	if err != nil {
		return nil, err
	}
	b, err := consent.NewBody(c.chainID, consent.Height(height+TxTTL))
	if err != nil {
		return nil, err
	}
	body.ChainID, body.Nonce, body.Expiry = b.ChainID, b.Nonce, b.Expiry
	tx, err := consent.Sign(body, signer)
	if err != nil {
		return nil, err
	}
	return c.SubmitTx(ctx, tx)
}

// caughtUp waits until the node takes part in consensus and returns its latest height.
func (c *Client) caughtUp(ctx context.Context) (int64, error) {
	for {
		st, err := c.rpc.Status(ctx)
		if err != nil {
			return 0, fmt.Errorf("client: %w", err)
		}
		if !st.SyncInfo.CatchingUp {
			return st.SyncInfo.LatestBlockHeight, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("client: the node is still catching up with the chain (at height %d): %w",
				st.SyncInfo.LatestBlockHeight, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SubmitTx submits signed tx bytes and waits for the commit.
func (c *Client) SubmitTx(ctx context.Context, tx []byte) (*consent.Committed, error) {
	var res *coretypes.ResultBroadcastTx
	err := RetryWhenBehind(ctx, func() (consent.Code, error) {
		var err error
		if res, err = c.rpc.BroadcastTxSync(ctx, tx); err != nil {
			return 0, err
		}
		return consent.Code(res.Code), nil
	}, c.waitNextHeight)
	if err != nil {
		return nil, fmt.Errorf("client: broadcast: %w", err)
	}
	if res.Code != 0 {
		return nil, &Rejected{Code: consent.Code(res.Code), Log: res.Log}
	}
	w := c.newWatch(consent.IDOf(tx), res.Hash)
	for {
		r, err := c.rpc.Tx(ctx, res.Hash, false)
		if err == nil {
			return committed(tx, r.Height, r.TxResult.Code, r.TxResult.Log, r.TxResult.Events)
		}
		if err := w.check(ctx); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("client: tx %s (hash %X) not committed yet: %w; it may still commit: check with `medledger tx status %X`",
				consent.IDOf(tx), []byte(res.Hash), ctx.Err(), []byte(res.Hash))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func committed(tx []byte, height int64, code uint32, log string, events []abcitypes.Event) (*consent.Committed, error) {
	if code != 0 {
		return nil, &Rejected{Code: consent.Code(code), Log: log}
	}
	out := &consent.Committed{ID: consent.IDOf(tx), Height: height}
	for _, e := range events {
		ev := consent.Event{Type: e.Type}
		for _, a := range e.Attributes {
			ev.Attrs = append(ev.Attrs, consent.Attr{Key: a.Key, Value: a.Value, Index: a.Index})
		}
		out.Events = append(out.Events, ev)
	}
	return out, nil
}

// waitNextHeight waits until the node commits a height above its current one.
func (c *Client) waitNextHeight(ctx context.Context) error {
	h, err := c.Height(ctx)
	if err != nil {
		return err
	}
	return c.WaitHeight(ctx, h+1)
}

// ErrNotFound means a query found nothing.
var ErrNotFound = errors.New("client: not found")

// Query reads chain state at path (see consent.Machine.Query) into v.
func (c *Client) Query(ctx context.Context, path string, v any) error {
	return c.QueryData(ctx, path, nil, v)
}

// QueryData is Query with query data (e.g. /audit/events takes its filter as JSON).
func (c *Client) QueryData(ctx context.Context, path string, data []byte, v any) error {
	res, err := c.rpc.ABCIQuery(ctx, path, data)
	if err != nil {
		return fmt.Errorf("client: query %s: %w", path, err)
	}
	switch consent.Code(res.Response.Code) {
	case consent.OK:
		return json.Unmarshal(res.Response.Value, v)
	case consent.CodeNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, res.Response.Log)
	default:
		return fmt.Errorf("client: query %s: %s", path, res.Response.Log)
	}
}

// Block returns the block at height h as the node serves it (unverified: see
// auditor.Verifier).
func (c *Client) Block(ctx context.Context, h int64) (*cmttypes.Block, error) {
	res, err := c.rpc.Block(ctx, &h)
	if err != nil {
		return nil, fmt.Errorf("client: block %d: %w", h, err)
	}
	return res.Block, nil
}

// SignedHeader returns the header at height h with its commit as the node serves them
// (unverified: auditor.Verifier checks them against a trusted validator set).
func (c *Client) SignedHeader(ctx context.Context, h int64) (*cmttypes.SignedHeader, error) {
	res, err := c.rpc.Commit(ctx, &h)
	if err != nil {
		return nil, fmt.Errorf("client: header %d: %w", h, err)
	}
	return &res.SignedHeader, nil
}

// Validators returns the validator set at height h as the node serves it (unverified:
// auditor.Verifier checks its hash against a signed header).
func (c *Client) Validators(ctx context.Context, h int64) (*cmttypes.ValidatorSet, error) {
	var vals []*cmttypes.Validator
	for page := 1; page <= 10; page++ { // ≤ 1000 validators: far more than a consortium has
		perPage := 100
		res, err := c.rpc.Validators(ctx, &h, &page, &perPage)
		if err != nil {
			return nil, fmt.Errorf("client: validators at %d: %w", h, err)
		}
		vals = append(vals, res.Validators...)
		if len(vals) >= res.Total {
			return cmttypes.ValidatorSetFromExistingValidators(vals)
		}
	}
	return nil, fmt.Errorf("client: validators at %d: more than 1000", h)
}

// LatestBlockHeight is the latest block height the node reports (CometBFT's status),
// which may be a block ahead of Height.
func (c *Client) LatestBlockHeight(ctx context.Context) (int64, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

// Height is the last height the node's application committed.
func (c *Client) Height(ctx context.Context) (int64, error) {
	info, err := c.rpc.ABCIInfo(ctx)
	if err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	return info.Response.LastBlockHeight, nil
}

// WaitHeight waits until the node's application has committed height h, so that
// a query to this node sees a tx another node reported committed at h.
func (c *Client) WaitHeight(ctx context.Context, h int64) error {
	for {
		info, err := c.rpc.ABCIInfo(ctx)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		if info.Response.LastBlockHeight >= h {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("client: height %d not reached (at %d): %w", h, info.Response.LastBlockHeight, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Access is the decision an access or emergency tx's result carries (its "access"
// event): the requester learns it from its own committed tx, without reading role-
// scoped chain state (CometBFT's RPC does not serve /grant/: consent.PublicQuery).
type Access struct {
	Grant     consent.GrantID
	Granted   bool
	Reason    string            // why denied
	Emergency string            // a break-glass access's reason code
	Consent   consent.ConsentID // the consent that permitted
	Expires   int64             // block time after which no key is released (Unix seconds)
}

// AccessOf returns the decision of a committed request or emergency tx, or an error if
// its result carries none.
func AccessOf(c *consent.Committed) (*Access, error) {
	for _, e := range c.Events {
		if e.Type != "access" {
			continue
		}
		a := &Access{}
		for _, at := range e.Attrs {
			switch at.Key {
			case "grant":
				a.Grant = consent.GrantID(at.Value)
			case "decision":
				a.Granted = at.Value == "granted"
			case "reason":
				a.Reason = at.Value
			case "emergency":
				a.Emergency = at.Value
			case "consent":
				a.Consent = consent.ConsentID(at.Value)
			case "expires":
				a.Expires, _ = strconv.ParseInt(at.Value, 10, 64)
			}
		}
		if a.Grant == "" {
			break
		}
		return a, nil
	}
	return nil, fmt.Errorf("client: tx %s carries no access decision", c.ID)
}
