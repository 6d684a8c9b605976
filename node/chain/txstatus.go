package chain

import (
	"bytes"
	"fmt"

	"github.com/medledger/medledger/consent"
)

// TxState is where a tx stands on this node.
type TxState string

// TxStates.
const (
	TxCommitted TxState = "committed" // in a block: see TxStatus.Height and Result
	TxPending   TxState = "pending"   // in this node's mempool, waiting for a block
	TxUnknown   TxState = "unknown"   // neither: not (yet) received, expired or evicted
)

// TxStatus is a tx's state on this node.
type TxStatus struct {
	State   TxState
	Height  int64
	Result  consent.Result // the tx's result in its block (Code, Log) when committed
	Pending int            // txs in the mempool
}

// TxStatus looks a tx up by its hash (SHA-256 of its bytes): in the tx index of
// committed blocks, then in the whole mempool.
func (n *Node) TxStatus(hash []byte) (TxStatus, error) {
	env, err := n.cmt.ConfigureRPC() // the only way to CometBFT's tx index in-process
	if err != nil {
		return TxStatus{}, fmt.Errorf("chain: tx index: %w", err)
	}
	r, err := env.TxIndexer.Get(hash)
	if err != nil {
		return TxStatus{}, fmt.Errorf("chain: tx index: %w", err)
	}
	if r != nil {
		return TxStatus{State: TxCommitted, Height: r.Height, Result: execResult(&r.Result)}, nil
	}
	mp := n.cmt.Mempool()
	st := TxStatus{State: TxUnknown, Pending: mp.Size()}
	for _, tx := range mp.ReapMaxTxs(-1) {
		if bytes.Equal(tx.Hash(), hash) {
			st.State = TxPending
			break
		}
	}
	return st, nil
}
