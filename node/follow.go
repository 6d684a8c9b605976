package node

// The audit feed: the access log read from committed state (pages, head, entries),
// followed live, and the emergency-review queue.

import (
	"context"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
)

// AuditEvents reads one page of the access log from committed state, newest first.
func (n *Node) AuditEvents(_ context.Context, f consent.AuditFilter) (*consent.AuditPage, error) {
	return read(n, consent.AuditEvents, f)
}

// LogHead is the access log's size and root in committed state.
func (n *Node) LogHead() (consent.LogRoot, error) {
	head, _, err := readState(n, consent.LogHead)
	return head, err
}

var _ api.LogEntries = (*Node)(nil)

// LogEntry is the access log's event at index with its leaf bytes, from committed state
// (api.ErrNotFound beyond the log). The API serves it to auditors; CometBFT's RPC does
// not (consent.PublicQuery).
func (n *Node) LogEntry(_ context.Context, index uint64) (*consent.LogEntry, error) {
	return read(n, consent.GetLogEntry, index)
}

// Follow delivers the events matching f committed from the next block on, in log
// order, until ctx ends or the node (or its API) shuts down. It looks for new events after each
// height this node commits, so each arrives within one block of its commit.
func (n *Node) Follow(ctx context.Context, f consent.AuditFilter) (<-chan consent.AuditEvent, error) {
	head, err := n.LogHead()
	if err != nil {
		return nil, err
	}
	n.mu.RLock()
	if n.closed {
		n.mu.RUnlock()
		return nil, context.Canceled
	}
	n.wg.Add(1)
	n.mu.RUnlock()
	out := make(chan consent.AuditEvent, 64)
	go func() {
		defer n.wg.Done()
		defer close(out)
		// The wait for the next height ends too when the API shuts down.
		waitCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(n.streams, cancel)()
		next, height := head.Size, n.chain.Height()
		for {
			if n.chain.WaitHeight(waitCtx, height+1) != nil {
				return // ctx ended, the API shut down or the chain stopped
			}
			height = n.chain.Height()
			events, size, err := n.eventsSince(next, f)
			if err != nil {
				n.log.Warn("follow: reading the log failed", "err", err)
				continue
			}
			for _, e := range events {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				case <-n.streams.Done():
					return
				}
			}
			next = size
		}
	}()
	return out, nil
}

// eventsSince returns the events at index ≥ from that match f, oldest first, and the
// log's size they were read at.
func (n *Node) eventsSince(from uint64, f consent.AuditFilter) ([]consent.AuditEvent, uint64, error) {
	head, err := n.LogHead()
	if err != nil || head.Size <= from {
		return nil, from, err
	}
	events, err := consent.EventsSince(from, head.Size, f, func(f consent.AuditFilter) (*consent.AuditPage, error) {
		return n.AuditEvents(context.Background(), f)
	})
	if err != nil {
		return nil, from, err
	}
	return events, head.Size, nil
}

// Emergencies lists emergency accesses, unreviewed first, then newest first.
func (n *Node) Emergencies(context.Context) ([]api.Emergency, error) {
	cases, _, err := readState(n, consent.EmergencyQueue)
	if err != nil {
		return nil, err
	}
	list := make([]api.Emergency, len(cases))
	for i, c := range cases {
		list[i] = api.Emergency{Decision: c.Decision, Review: (*api.Review)(c.Review)}
	}
	return list, nil
}

// ReviewEmergency records this hospital's review of an emergency access (a privacy
// officer's outcome code) on the chain.
func (n *Node) ReviewEmergency(ctx context.Context, grant consent.GrantID, outcome string) (*consent.Committed, error) {
	c, err := n.submit(ctx, consent.Body{Kind: consent.KindReview, Review: &consent.Review{Grant: grant, Outcome: outcome}})
	return c, err
}
