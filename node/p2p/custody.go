package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// CustodyID is the share-delivery protocol of threshold custody: the ingesting
// hospital offers a custodian its share of a record's key, HPKE-wrapped to the
// custodian's registered key; the custodian fetches the record's ciphertext, checks
// the share against the commitments on the chain, keeps both, says so on the chain
// (accept custody) and answers. One offer and one answer per stream.
const CustodyID = protocol.ID("/medledger/custody/1.0.0")

const (
	custodyService = "medledger.custody"
	maxCustodyMsg  = 8 << 10 // a record ID and a wrapped share (≈ 130 bytes) in, a refusal out
	// custodyTimeout bounds one offer: the custodian fetches the whole ciphertext (up
	// to a 64 MiB Bundle's) and commits a tx before it answers.
	custodyTimeout = 2 * time.Minute
)

// ShareOffer hands a custodian its share of a record's key.
type ShareOffer struct {
	Record string `json:"record"`
	// Height is where the record's registration committed: the custodian waits
	// (briefly) for its own chain to reach it, then reads the record there.
	Height int64 `json:"height"`
	// Share is the custodian's share index; Wrapped the share, HPKE-wrapped to the
	// custodian's registered key with the custodian's-own-copy context (no grant).
	Share   uint8  `json:"share"`
	Wrapped []byte `json:"wrapped"`
}

// ShareAnswer is a custodian's answer: custody accepted on the chain (Code 0) or a
// coded refusal with its reason.
type ShareAnswer struct {
	Code   uint32 `json:"code"`
	Reason string `json:"reason,omitempty"`
}

// Keeper takes custody of shares offered by a peer. from is the offerer's
// authenticated peer ID; the keeper checks it is a registered hospital and the offer
// against the chain before it keeps anything.
type Keeper interface {
	AcceptShare(ctx context.Context, from peer.ID, offer ShareOffer) ShareAnswer
}

// ServeCustody answers share offers with k. The context k gets ends when the
// offerer resets or closes the stream, the host closes, or custodyTimeout passes.
func (h *Host) ServeCustody(k Keeper) {
	h.host.SetStreamHandler(CustodyID, func(s network.Stream) {
		serveOne(h.life, s, custodyService, maxCustodyMsg, custodyTimeout, func(ctx context.Context, from peer.ID, offer ShareOffer) ShareAnswer {
			return k.AcceptShare(ctx, from, offer)
		})
	})
}

// OfferShare offers custodian its share and waits for its answer. A refusal is an
// answer with Code != 0, not an error; an error means no answer was had. When ctx
// ends the stream is reset, which ends the custodian's handling of the offer too.
func (h *Host) OfferShare(ctx context.Context, custodian peer.ID, offer ShareOffer) (*ShareAnswer, error) {
	return exchange[ShareOffer, ShareAnswer](ctx, h, custodian, CustodyID, custodyService, maxCustodyMsg, custodyTimeout, true, offer)
}

// serveOne runs one request-response exchange on s for a protocol (the go-libp2p ping
// model): the stream in the service's resource scope with its memory reserved, a
// deadline, messages of at most max bytes, Reset on any error, Close on success.
// answer's context is bound to the stream (streamContext): it ends with life (the
// host's), at the deadline, or when the peer resets or breaks the stream; then the
// stream is reset unanswered.
func serveOne[Req, Resp any](life context.Context, s network.Stream, service string, max int, timeout time.Duration, answer func(context.Context, peer.ID, Req) Resp) {
	if err := s.Scope().SetService(service); err != nil {
		s.Reset()
		return
	}
	if err := s.Scope().ReserveMemory(2*max, network.ReservationPriorityAlways); err != nil {
		s.Reset()
		return
	}
	defer s.Scope().ReleaseMemory(2 * max)
	s.SetDeadline(time.Now().Add(timeout))
	var req Req
	if err := readMsg(s, &req, max); err != nil {
		s.Reset()
		return
	}
	ctx, release := streamContext(life, s, timeout)
	resp := answer(ctx, s.Conn().RemotePeer(), req)
	if release() != nil {
		s.Reset() // the peer is gone, or the host closing: no one to answer
		return
	}
	if err := writeMsg(s, resp, max); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// errStreamEnded is the cause of a handler's context ending because its stream did.
var errStreamEnded = errors.New("p2p: the peer reset or closed the stream")

// streamContext is the context of a request read from s: it ends with life, after
// timeout, or when the peer resets the stream or sends more than its one request (a
// watcher reads s for that; a peer that half-closes its side is still waiting for the
// answer, and does not end it). release stops the watcher, leaving s readable for
// nothing more, cancels the context and returns why it ended before release (nil if
// it had not).
func streamContext(life context.Context, s network.Stream, timeout time.Duration) (ctx context.Context, release func() error) {
	ctx, cancelTimeout := context.WithTimeout(life, timeout)
	ctx, cancel := context.WithCancelCause(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var b [1]byte
		if _, err := s.Read(b[:]); !errors.Is(err, io.EOF) {
			cancel(errStreamEnded)
		}
	}()
	return ctx, func() error {
		err := context.Cause(ctx)
		s.SetReadDeadline(time.Now()) // ends the watcher's read
		<-watched
		cancel(nil)
		cancelTimeout()
		return err
	}
}

// exchange is the requesting side of serveOne: open a stream to p for protocol id,
// send req, read the response, within timeout (or ctx's deadline if sooner). With
// endWithCtx, ctx ending resets the stream (the peer's handler sees it end); without,
// only the deadline ends the wait once the stream is open.
func exchange[Req, Resp any](ctx context.Context, h *Host, p peer.ID, id protocol.ID, service string, max int, timeout time.Duration, endWithCtx bool, req Req) (*Resp, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := h.host.NewStream(ctx, p, id)
	if err != nil {
		return nil, fmt.Errorf("%w: open stream to %s: %v", ErrReleaseProtocol, p, err)
	}
	if err := s.Scope().SetService(service); err != nil {
		s.Reset()
		return nil, fmt.Errorf("%w: %v", ErrReleaseProtocol, err)
	}
	if err := s.Scope().ReserveMemory(2*max, network.ReservationPriorityAlways); err != nil {
		s.Reset()
		return nil, fmt.Errorf("%w: %v", ErrReleaseProtocol, err)
	}
	defer s.Scope().ReleaseMemory(2 * max)
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	if endWithCtx {
		defer context.AfterFunc(ctx, func() { s.Reset() })()
	}
	if err := writeMsg(s, req, max); err != nil {
		s.Reset()
		return nil, fmt.Errorf("%w: %v", ErrReleaseProtocol, err)
	}
	var resp Resp
	if err := readMsg(s, &resp, max); err != nil {
		s.Reset()
		return nil, fmt.Errorf("%w: %v", ErrReleaseProtocol, err)
	}
	s.Close()
	return &resp, nil
}
