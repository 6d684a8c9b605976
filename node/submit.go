package node

// Submitting: every tx this node signs (ingest's register, an access request, a
// custodian's receipt, a vote) or relays goes through submitTx, which waits for its
// commit and retries once or twice when this node is behind the tx.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/chain"
)

// txTTL is how many blocks a tx this node signs stays valid.
const txTTL = 100

// NewBody is a body for this chain with a fresh nonce, valid for txTTL blocks.
func (n *Node) NewBody(context.Context) (consent.Body, error) {
	return consent.NewBody(n.home.Config.ChainID, consent.Height(n.chain.Height()+txTTL))
}

// submit signs body (Kind and payload set) with this hospital's operator key and
// waits for the commit.
func (n *Node) submit(ctx context.Context, body consent.Body) (*api.Committed, []chain.Event, error) {
	b, err := n.NewBody(ctx)
	if err != nil {
		return nil, nil, err
	}
	body.ChainID, body.Nonce, body.Expiry = b.ChainID, b.Nonce, b.Expiry
	tx, err := consent.Sign(body, n.home.Keys.Operator)
	if err != nil {
		return nil, nil, err
	}
	return n.submitTx(ctx, tx)
}

// SubmitTx submits signed tx bytes and waits for the commit; a refusal is a
// *consent.Rejection.
func (n *Node) SubmitTx(ctx context.Context, tx []byte) (*api.Committed, error) {
	c, _, err := n.submitTx(ctx, tx)
	return c, err
}

func (n *Node) submitTx(ctx context.Context, tx []byte) (*api.Committed, []chain.Event, error) {
	check, height, deliver, err := n.chain.SubmitTx(ctx, tx)
	// A tx naming what another node committed a moment ago (a record, a consent) may
	// reach this node a block before that commit does: CheckTx, against this node's
	// committed state, does not know it yet. Give the node a block or two to catch up.
	for retry := 0; retry < 2 && err == nil && laggingRefusal(consent.Code(check.Code)); retry++ {
		if werr := n.waitNextHeight(ctx); werr != nil {
			break
		}
		check, height, deliver, err = n.chain.SubmitTx(ctx, tx)
	}
	var stalled *chain.NoProgress
	switch {
	case err != nil && strings.Contains(err.Error(), "tx already exists in cache"):
		return nil, nil, &consent.Rejection{Code: consent.CodeReplay, Log: "this exact tx was already submitted"}
	case errors.As(err, &stalled):
		return nil, nil, &api.Unavailable{Reason: "no-progress", RetryAfter: 10 * time.Second,
			Detail: fmt.Sprintf("%v; GET /tx/%X tells whether it did", stalled, stalled.Hash)}
	case err != nil:
		return nil, nil, err
	case check.Code != 0:
		return nil, nil, &consent.Rejection{Code: consent.Code(check.Code), Log: check.Log}
	case deliver.Code != 0:
		return nil, nil, &consent.Rejection{Code: consent.Code(deliver.Code), Log: deliver.Log}
	}
	return &api.Committed{ID: consent.IDOf(tx), Height: height}, deliver.Events, nil
}

// laggingRefusal reports whether CheckTx refused a tx for naming something this node
// may not have committed yet.
func laggingRefusal(c consent.Code) bool {
	return c == consent.CodeUnknownRecord || c == consent.CodeUnknownConsent || c == consent.CodeUnknownGrant
}

// maxLagWait bounds waitNextHeight: on an idle chain no next height may come.
const maxLagWait = 3 * time.Second

// waitNextHeight waits until this node commits a height above the current one, within
// maxLagWait.
func (n *Node) waitNextHeight(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, maxLagWait)
	defer cancel()
	h := n.chain.Height()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for n.chain.Height() <= h {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
