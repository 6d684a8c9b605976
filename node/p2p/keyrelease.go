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
// custodian answers the record's DEK HPKE-wrapped to the requester's registered key,
// or a coded refusal. One request and one response per stream.
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
	Wrapped []byte `json:"wrapped,omitempty"` // the DEK, HPKE-wrapped for the requester
}

// Custodian decides key-release requests. from is the requester's authenticated peer
// ID (its node key); the custodian maps it to a registered hospital and checks the
// grant against committed state before answering anything but a refusal.
type Custodian interface {
	Release(ctx context.Context, from peer.ID, req ReleaseRequest) ReleaseResponse
}

// ServeKeyRelease answers key-release requests with c.
func (h *Host) ServeKeyRelease(c Custodian) {
	h.host.SetStreamHandler(KeyReleaseID, func(s network.Stream) { serveRelease(s, c) })
}

func serveRelease(s network.Stream, c Custodian) {
	if err := s.Scope().SetService(keyReleaseService); err != nil {
		s.Reset()
		return
	}
	if err := s.Scope().ReserveMemory(2*maxReleaseMsg, network.ReservationPriorityAlways); err != nil {
		s.Reset()
		return
	}
	defer s.Scope().ReleaseMemory(2 * maxReleaseMsg)
	s.SetDeadline(time.Now().Add(releaseTimeout))
	var req ReleaseRequest
	if err := readMsg(s, &req); err != nil {
		s.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	resp := c.Release(ctx, s.Conn().RemotePeer(), req)
	if err := writeMsg(s, resp); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// ErrReleaseProtocol means the custodian broke the protocol or the stream failed.
var ErrReleaseProtocol = errors.New("p2p: key release failed")

// RequestKey asks custodian for the key of a grant. A refusal is a response with
// Code != 0, not an error; an error means no answer was had.
func (h *Host) RequestKey(ctx context.Context, custodian peer.ID, req ReleaseRequest) (*ReleaseResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	s, err := h.host.NewStream(ctx, custodian, KeyReleaseID)
	if err != nil {
		return nil, fmt.Errorf("%w: open stream to %s: %v", ErrReleaseProtocol, custodian, err)
	}
	if err := s.Scope().SetService(keyReleaseService); err != nil {
		s.Reset()
		return nil, fmt.Errorf("%w: %v", ErrReleaseProtocol, err)
	}
	if err := s.Scope().ReserveMemory(2*maxReleaseMsg, network.ReservationPriorityAlways); err != nil {
		s.Reset()
		return nil, fmt.Errorf("%w: %v", ErrReleaseProtocol, err)
	}
	defer s.Scope().ReleaseMemory(2 * maxReleaseMsg)
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	if err := writeMsg(s, req); err != nil {
		s.Reset()
		return nil, fmt.Errorf("%w: %v", ErrReleaseProtocol, err)
	}
	var resp ReleaseResponse
	if err := readMsg(s, &resp); err != nil {
		s.Reset()
		return nil, fmt.Errorf("%w: %v", ErrReleaseProtocol, err)
	}
	s.Close()
	return &resp, nil
}

func writeMsg(s network.Stream, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxReleaseMsg {
		return fmt.Errorf("message of %d bytes exceeds %d", len(b), maxReleaseMsg)
	}
	return msgio.NewVarintWriter(s).WriteMsg(b)
}

func readMsg(s network.Stream, v any) error {
	r := msgio.NewVarintReaderSize(s, maxReleaseMsg)
	b, err := r.ReadMsg()
	if err != nil {
		return err
	}
	defer r.ReleaseMsg(b)
	return json.Unmarshal(b, v)
}
