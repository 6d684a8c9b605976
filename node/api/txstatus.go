package api

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/medledger/medledger/consent"
)

// TxStatuser is a Backend that can say where a submitted tx stands (node.Node is one).
// It is separate from Backend so that backends without a chain need not implement it.
type TxStatuser interface {
	// TxStatus looks a tx up by its hash (SHA-256 of its bytes): committed, pending in
	// this node's mempool, or unknown to it.
	TxStatus(ctx context.Context, hash []byte) (*TxStatus, error)
}

// TxStatus is GET /tx/{hash}: where a tx stands on this node.
type TxStatus struct {
	Hash   string `json:"hash"`             // 64 hex digits, upper case as CometBFT prints them
	State  string `json:"state"`            // committed, pending or unknown
	Height int64  `json:"height,omitempty"` // its block, when committed
	Code   uint32 `json:"code"`             // when committed: 0 accepted, else a consent code
	Log    string `json:"log,omitempty"`    // why a committed tx was rejected
	// Pending is how many txs the node's mempool holds.
	Pending int `json:"pending"`
}

// errNoTxStatus is a backend that cannot look txs up.
var errNoTxStatus = errors.New("api: this node cannot look txs up")

// txStatus answers GET /tx/{hash}, for anyone: whoever submitted a tx (a patient's
// consent, anonymously) may learn whether it committed. It reveals no more than the
// chain's blocks do. It is rate-limited per client address.
func (s *server) txStatus(w http.ResponseWriter, r *http.Request) error {
	// Anonymous, and a lookup scans the node's mempool: it counts against the client's
	// rate like the anonymous consent operations.
	if err := s.rate.Client(r); err != nil {
		return err
	}
	raw := r.PathValue("hash")
	hash, err := hex.DecodeString(raw)
	if err != nil || len(hash) != 32 {
		return badRequest("value", "", "tx hash '%s': want 64 hex digits (the hash a submit answered with)", consent.Truncate(raw, 80))
	}
	ts, ok := s.b.(TxStatuser)
	if !ok {
		return errNoTxStatus
	}
	st, err := ts.TxStatus(r.Context(), hash)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}
