package chain

import (
	"context"
	"errors"
	"fmt"
	"sync"

	cmttypes "github.com/cometbft/cometbft/types"
)

// ErrStopped is returned by a wait that the node's stopping ended.
var ErrStopped = errors.New("chain: the node stopped")

// heights tells waiters when the node commits a new height. It follows CometBFT's
// NewBlockHeader events, which CometBFT publishes after the app's Commit (so Height
// already reports the new height when a waiter wakes), through one event-bus
// subscription per node.
type heights struct {
	mu   sync.Mutex
	next chan struct{} // closed at the next new height, then replaced
	done bool          // the subscription ended: next stays closed
}

// watchHeights subscribes to bus and wakes waiters at each new block until bus stops.
func watchHeights(bus *cmttypes.EventBus) (*heights, error) {
	// Unbuffered: the bus waits for the dispatcher (which never blocks) instead of
	// dropping the subscription when blocks come fast.
	sub, err := bus.SubscribeUnbuffered(context.Background(), "chain.heights", cmttypes.EventQueryNewBlockHeader)
	if err != nil {
		return nil, fmt.Errorf("chain: subscribe to new blocks: %w", err)
	}
	h := &heights{next: make(chan struct{})}
	go h.dispatch(sub)
	return h, nil
}

func (h *heights) dispatch(sub cmttypes.Subscription) {
	defer h.stop()
	for {
		select {
		case <-sub.Canceled():
			return
		case <-sub.Out():
			h.mu.Lock()
			close(h.next)
			h.next = make(chan struct{})
			h.mu.Unlock()
		}
	}
}

// stop wakes every waiter for good: the node stopped.
func (h *heights) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done {
		h.done = true
		close(h.next)
	}
}

// changed returns a channel closed at the next new height, and whether the node has
// stopped (then the channel is already closed and no height will follow).
func (h *heights) changed() (<-chan struct{}, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next, h.done
}

// NewHeight returns a channel that is closed when the node commits a height after
// this call, or when the node stops. To wait for a height, prefer WaitHeight.
func (n *Node) NewHeight() <-chan struct{} {
	c, _ := n.heights.changed()
	return c
}

// WaitHeight waits until the node has committed height h. It returns nil once it has,
// ctx's error if ctx ends first, and ErrStopped if the node stops first.
func (n *Node) WaitHeight(ctx context.Context, h int64) error {
	for {
		// Take the channel before reading the height, so that a height committed in
		// between still wakes this wait.
		next, stopped := n.heights.changed()
		switch {
		case n.Height() >= h:
			return nil
		case stopped:
			return ErrStopped
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-next:
		}
	}
}
