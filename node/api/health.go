package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/medledger/medledger/consent"
)

// HealthStatus is a node's state as GET /healthz reports it.
type HealthStatus string

// Health states. Only StatusOK answers 200.
const (
	// StatusOK: the node takes part in consensus at the chain's tip and serves keys
	// and records.
	StatusOK HealthStatus = "ok"
	// StatusUnavailable: the node cannot show its state is current (starting,
	// catching up, behind its peers, or the chain makes no blocks), so it releases no
	// key; it is expected to recover by itself.
	StatusUnavailable HealthStatus = "unavailable"
	// StatusFailed: the node's consensus or storage has failed; it serves no key and
	// no record and is exiting (its supervisor should restart it).
	StatusFailed HealthStatus = "failed"
)

// Health is what GET /healthz answers: the node's state and the facts it was decided
// on. It carries no PHI.
type Health struct {
	Status     HealthStatus       `json:"status"`
	Hospital   consent.HospitalID `json:"hospital"`
	ChainID    string             `json:"chain_id"`
	Height     int64              `json:"height"`      // last committed height
	CatchingUp bool               `json:"catching_up"` // block sync
	Peers      int                `json:"peers"`       // connected consensus peers
	PeerHeight int64              `json:"peer_height"` // highest height a peer reports committed
	// LatestBlockAge is the age of the block at Height, in seconds (by this node's
	// clock against the block's BFT time); -1 before the first block.
	LatestBlockAge float64 `json:"latest_block_age_seconds"`
	Reason         string  `json:"reason,omitempty"` // why the status is not ok: one line
}

// healthRetryAfter is the Retry-After, in seconds, of a 503 for a node that is not
// healthy: a node catching up needs seconds; a failed one a restart.
const healthRetryAfter = 5

// healthz is GET /healthz: 200 with the node's Health when it is ok, 503 with it
// otherwise.
func (s *server) healthz(w http.ResponseWriter, _ *http.Request) error {
	h := s.b.Health()
	h.Hospital, h.ChainID = s.id.Hospital, s.id.ChainID
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if h.Status != StatusOK {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(healthRetryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b) // an error here is the client gone: nothing to do
	return nil
}

// serving refuses, with 503, work a failed node must not do (ingest, record reads).
// A node that is only unavailable still does it: its requests are decided on the chain.
func (s *server) serving() error {
	h := s.b.Health()
	if h.Status != StatusFailed {
		return nil
	}
	return &problem{status: http.StatusServiceUnavailable,
		issue:  issue("transient", "", "this node has failed and is stopping ("+h.Reason+"); use another node or retry after its restart"),
		header: http.Header{"Retry-After": {strconv.Itoa(healthRetryAfter)}}}
}
