package node

import (
	"context"
	"fmt"

	"github.com/medledger/medledger/node/api"
)

var _ api.TxStatuser = (*Node)(nil)

// TxStatus implements api.TxStatuser: where a tx stands on this node's chain.
func (n *Node) TxStatus(_ context.Context, hash []byte) (*api.TxStatus, error) {
	st, err := n.chain.TxStatus(hash)
	if err != nil {
		return nil, err
	}
	return &api.TxStatus{Hash: fmt.Sprintf("%X", hash), State: string(st.State), Height: st.Height,
		Code: uint32(st.Result.Code), Log: st.Result.Log, Pending: st.Pending}, nil
}
