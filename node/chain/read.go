package chain

import (
	"github.com/medledger/medledger/consent"
)

// ReadCommitted calls read with the latest committed state, the state CheckTx and
// Query read, and returns the height it is at. The state stays fixed while read runs
// (it holds the app's read lock): read must return promptly and must not call back
// into the node. An error of read is returned as it is; a store failure under it is
// the node's fault (as in Query) and is returned instead.
func (n *Node) ReadCommitted(read func(consent.Reader) error) (int64, error) {
	return n.app.ReadCommitted(read)
}
