package node

import (
	"context"
	"fmt"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
)

var _ api.LogEntries = (*Node)(nil)

// LogEntry is the access log's event at index with its leaf bytes, from committed state
// (api.ErrNotFound beyond the log). The API serves it to auditors; CometBFT's RPC does
// not (consent.PublicQuery).
func (n *Node) LogEntry(_ context.Context, index uint64) (*consent.LogEntry, error) {
	var e consent.LogEntry
	if _, err := n.query(fmt.Sprintf("/audit/event/%d", index), nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}
