package abci

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/medledger/medledger/consent"
)

// Which peers CometBFT's p2p admits.
//
// With its filter_peers setting, CometBFT asks the app, by ABCI query, about every
// connection (/p2p/filter/addr/<host:port>) and every peer once its handshake shows
// its node ID (/p2p/filter/id/<id>), and refuses the peer unless the answer is OK. An
// App given AdmitPeers answers those queries itself, from the committed state: any
// address, and the node IDs of the node keys AdmitPeers returns (the registry's
// members), so that a hospital that left no longer follows the chain, which, without
// PHI, still says who was granted what and when. The query comes from CometBFT's own
// process, so the gate on RPC queries (publicquery.go) does not apply to these paths:
// a client asking them over the RPC learns whether a node ID is a member's, which the
// public registry says anyway.

// PeerFilterPath is the prefix of CometBFT's peer filter queries.
const PeerFilterPath = "/p2p/filter/"

// CodeNotAdmitted, in QueryCodespace, refuses a peer that is not admitted.
const CodeNotAdmitted uint32 = 2

// AdmitPeers makes a answer CometBFT's peer filter queries: a peer is admitted if its
// node ID is that of one of the node keys peers returns from the committed state; if
// peers fails, none is (fail closed).
func (a *App) AdmitPeers(peers func(r consent.Reader) ([]ed25519.PublicKey, error)) {
	a.peers = peers
}

// NodeID is CometBFT's node ID of an Ed25519 node key: the hex of the first 20 bytes of
// its SHA-256 (crypto/ed25519.PubKey.Address).
func NodeID(key ed25519.PublicKey) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:20])
}

// Admitted reports whether the committed state admits the peer with node ID id.
func (a *App) Admitted(id string) (bool, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return false, ErrClosed
	}
	r, v := a.committed()
	keys, err := a.peers(r)
	if err := firstErr(v.err, err); err != nil {
		return false, err
	}
	for _, k := range keys {
		if NodeID(k) == id {
			return true, nil
		}
	}
	return false, nil
}

// filterPeer answers a peer filter query (path without PeerFilterPath).
func (a *App) filterPeer(path string) *abcitypes.ResponseQuery {
	if _, ok := strings.CutPrefix(path, "addr/"); ok {
		return &abcitypes.ResponseQuery{}
	}
	id, ok := strings.CutPrefix(path, "id/")
	if !ok {
		return &abcitypes.ResponseQuery{Code: CodeNotAdmitted, Codespace: QueryCodespace, Log: "unknown peer filter query"}
	}
	admitted, err := a.Admitted(id)
	switch {
	case err != nil:
		return &abcitypes.ResponseQuery{Code: CodeNotAdmitted, Codespace: QueryCodespace, Log: "peer not admitted: " + err.Error()}
	case !admitted:
		return &abcitypes.ResponseQuery{Code: CodeNotAdmitted, Codespace: QueryCodespace, Log: "peer " + consent.Truncate(id, 40) + " is not a member's node"}
	}
	return &abcitypes.ResponseQuery{}
}
