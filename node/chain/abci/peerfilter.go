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

// PeerKeys returns the node keys whose peers are admitted, from the committed state at
// height (the last committed block's, idle ones included).
type PeerKeys func(r consent.Reader, height int64) ([]ed25519.PublicKey, error)

// AdmitPeers makes a answer CometBFT's peer filter queries: a peer is admitted if also
// (if set) says so, or if its node ID is that of one of the node keys peers returns
// from the committed state; if peers fails, none is (fail closed). also lets a node
// that is catching up, whose state is old, reach the peers its operator configured.
func (a *App) AdmitPeers(peers PeerKeys, also func(id string) bool) {
	a.peers, a.alsoAdmit = peers, also
}

// NodeID is CometBFT's node ID of an Ed25519 node key: the hex of the first 20 bytes of
// its SHA-256 (crypto/ed25519.PubKey.Address).
func NodeID(key ed25519.PublicKey) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:20])
}

// Admitted reports whether the peer with node ID id is admitted: by the committed
// state, or else by the override (AdmitPeers' also).
func (a *App) Admitted(id string) (bool, error) {
	ids, err := a.AdmittedIDs()
	if err != nil || ids[id] || a.alsoAdmit == nil {
		return ids[id], err
	}
	return a.alsoAdmit(id), nil
}

// AdmittedIDs are the node IDs the committed state admits, from one read of it.
func (a *App) AdmittedIDs() (map[string]bool, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return nil, ErrClosed
	}
	r, v := a.committed()
	keys, err := a.peers(r, a.height)
	a.fault(v.err) // a store failure
	if err := firstErr(v.err, err); err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(keys))
	for _, k := range keys {
		ids[NodeID(k)] = true
	}
	return ids, nil
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
	case err != nil: // the RPC answers these queries too: no store error text
		return &abcitypes.ResponseQuery{Code: CodeNotAdmitted, Codespace: QueryCodespace, Log: "peer not admitted: the registry could not be read"}
	case !admitted:
		return &abcitypes.ResponseQuery{Code: CodeNotAdmitted, Codespace: QueryCodespace, Log: "peer " + consent.Truncate(id, 40) + " is not a member's node"}
	}
	return &abcitypes.ResponseQuery{}
}
