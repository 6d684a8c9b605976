package p2p

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
)

// KeyReleaseID is the key-release protocol: the requester sends a grant ID; the
// custodian answers the record's DEK (or, in threshold custody, its share of it)
// HPKE-wrapped to the requester's registered key, or a coded refusal. One request and
// one response per stream.
const KeyReleaseID = protocol.ID("/medledger/keyrelease/1.0.0")

const (
	keyReleaseService = "medledger.keyrelease"
	maxReleaseMsg     = 8 << 10 // a grant ID in, a wrapped DEK (≈ 250 bytes) out
	releaseTimeout    = 10 * time.Second
)

// ReleaseRequest asks a custodian for the key of the record a grant is for.
type ReleaseRequest struct {
	Grant string `json:"grant"`
	// Height is where the requester saw the grant committed: a custodian a block
	// behind waits (briefly) for its own chain to reach it. It is only a hint: the
	// custodian decides on its own committed state.
	Height int64 `json:"height,omitempty"`
}

// ReleaseResponse is a released key or a coded refusal (Code != 0, with Reason).
type ReleaseResponse struct {
	Code    uint32 `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Record  string `json:"record,omitempty"`
	Wrapped []byte `json:"wrapped,omitempty"` // the DEK (or share), HPKE-wrapped for the requester
	// Share is the index of the share Wrapped holds, for a record in threshold custody
	// (0: Wrapped holds the whole DEK).
	Share uint8 `json:"share,omitempty"`
	// Epoch is the record's epoch (its re-sharings) the share belongs to: a requester
	// that read the record before a re-sharing switched it knows the share is of the
	// new sharing, not a lie.
	Epoch uint32 `json:"epoch,omitempty"`
}

// Custodian decides key-release requests. from is the requester's authenticated peer
// ID (its node key); the custodian maps it to a registered hospital and checks the
// grant against committed state before answering anything but a refusal.
type Custodian interface {
	Release(ctx context.Context, from peer.ID, req ReleaseRequest) ReleaseResponse
}

// ServeKeyRelease answers key-release requests with c.
func (h *Host) ServeKeyRelease(c Custodian) {
	h.host.SetStreamHandler(KeyReleaseID, func(s network.Stream) {
		serveOne(h.life, s, keyReleaseService, maxReleaseMsg, releaseTimeout, c.Release)
	})
}

// ErrReleaseProtocol means the peer broke the protocol (key release or share
// delivery) or the stream failed.
var ErrReleaseProtocol = errors.New("p2p: key release failed")

// RequestKey asks custodian for the key of a grant. A refusal is a response with
// Code != 0, not an error; an error means no answer was had.
func (h *Host) RequestKey(ctx context.Context, custodian peer.ID, req ReleaseRequest) (*ReleaseResponse, error) {
	// Not ended with ctx (false): a custodian asked commits its receipt and answers,
	// and the losers of a threshold read (obtainShares cancels once k shares win) are
	// read to the end, not cut mid-release.
	return exchange[ReleaseRequest, ReleaseResponse](ctx, h, custodian, KeyReleaseID, keyReleaseService, maxReleaseMsg, releaseTimeout, false, req)
}

func writeMsg(s network.Stream, v any, max int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > max {
		return fmt.Errorf("message of %d bytes exceeds %d", len(b), max)
	}
	return msgio.NewVarintWriter(s).WriteMsg(b)
}

func readMsg(s network.Stream, v any, max int) error {
	r := msgio.NewVarintReaderSize(s, max)
	b, err := r.ReadMsg()
	if err != nil {
		return err
	}
	defer r.ReleaseMsg(b)
	return json.Unmarshal(b, v)
}
