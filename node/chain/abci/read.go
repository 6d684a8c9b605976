package abci

import (
	"fmt"

	"github.com/medledger/medledger/consent"
)

// ReadCommitted calls read with the latest committed state, the state CheckTx and
// Query read, and returns the height it is at. The state stays fixed while read runs
// (it holds the app's read lock): read must return promptly. An error of read is
// returned as it is; a store failure under it is the node's fault (as in Query) and is
// returned instead.
func (a *App) ReadCommitted(read func(consent.Reader) error) (int64, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return 0, ErrClosed
	}
	r, v := a.committed()
	err := read(r)
	a.fault(v.err)
	if v.err != nil {
		return a.height, fmt.Errorf("abci: read: %w", v.err)
	}
	return a.height, err
}
