package node

// Submitting: every tx this node signs (ingest's register, an access request, a
// custodian's receipt, a vote) or relays goes through submitTx, which waits for its
// commit and retries once or twice when this node is behind the tx.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cometbft/cometbft/mempool"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/client"
)

// NewBody is a body for this chain with a fresh nonce, valid for client.TxTTL blocks.
func (n *Node) NewBody(context.Context) (consent.Body, error) {
	return consent.NewBody(n.home.Config.ChainID, consent.Height(n.chain.Height()+client.TxTTL))
}

// submit signs body (Kind and payload set) with this hospital's operator key and
// waits for the commit.
func (n *Node) submit(ctx context.Context, body consent.Body) (*consent.Committed, error) {
	b, err := n.NewBody(ctx)
	if err != nil {
		return nil, err
	}
	body.ChainID, body.Nonce, body.Expiry = b.ChainID, b.Nonce, b.Expiry
	tx, err := consent.Sign(body, n.home.Keys.Operator)
	if err != nil {
		return nil, err
	}
	return n.submitTx(ctx, tx)
}

// SubmitTx submits signed tx bytes and waits for the commit; a refusal is a
// *consent.Rejection.
func (n *Node) SubmitTx(ctx context.Context, tx []byte) (*consent.Committed, error) {
	return n.submitTx(ctx, tx)
}

// txDropped is the api.Unavailable reason of a tx that left the mempool uncommitted.
const txDropped = "tx-dropped"

func (n *Node) submitTx(ctx context.Context, tx []byte) (*consent.Committed, error) {
	var check, deliver consent.Result
	var height int64
	// A tx naming what another node committed a moment ago (a record, a consent) may
	// reach this node a block before that commit does: CheckTx, against this node's
	// committed state, does not know it yet (client.RetryWhenBehind).
	err := client.RetryWhenBehind(ctx, func() (consent.Code, error) {
		var err error
		check, height, deliver, err = n.chain.SubmitTx(ctx, tx)
		return consent.Code(check.Code), err
	}, n.waitNextHeight)
	var stalled *chain.NoProgress
	var dropped *chain.TxDropped
	switch {
	case errors.Is(err, mempool.ErrTxInCache):
		return nil, &consent.Rejection{Code: consent.CodeReplay, Log: "this exact tx was already submitted"}
	case errors.As(err, &stalled):
		return nil, &api.Unavailable{Reason: "no-progress", RetryAfter: 10 * time.Second,
			Detail: fmt.Sprintf("%v; GET /tx/%X tells whether it did", stalled, stalled.Hash)}
	case errors.As(err, &dropped):
		return nil, &api.Unavailable{Reason: txDropped, RetryAfter: time.Second,
			Detail: fmt.Sprintf("%v; GET /tx/%X tells whether it did", dropped, dropped.Hash)}
	case err != nil:
		return nil, err
	case check.Code != 0:
		return nil, &consent.Rejection{Code: consent.Code(check.Code), Log: check.Log}
	case deliver.Code != 0:
		return nil, &consent.Rejection{Code: consent.Code(deliver.Code), Log: deliver.Log}
	}
	c := &consent.Committed{ID: consent.IDOf(tx), Height: height}
	for _, e := range deliver.Events {
		ev := consent.Event{Type: e.Type}
		for _, a := range e.Attrs {
			ev.Attrs = append(ev.Attrs, consent.Attr{Key: a.Key, Value: a.Value, Index: a.Index})
		}
		c.Events = append(c.Events, ev)
	}
	return c, nil
}

// waitNextHeight waits until this node commits a height above the current one.
func (n *Node) waitNextHeight(ctx context.Context) error {
	return n.chain.WaitHeight(ctx, n.chain.Height()+1)
}
