package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/api"
)

// Hospitals is the chain's hospital registry, sorted by ID.
func (n *Node) Hospitals(context.Context) ([]consent.Hospital, error) {
	var hs []consent.Hospital
	if _, err := n.query("/hospitals", nil, &hs); err != nil {
		return nil, err
	}
	slices.SortFunc(hs, func(a, b consent.Hospital) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return hs, nil
}

// AuditEvents reads one page of the access log from committed state, newest first.
func (n *Node) AuditEvents(_ context.Context, f consent.AuditFilter) (*consent.AuditPage, error) {
	data, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	var page consent.AuditPage
	if _, err := n.query("/audit/events", data, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// LogHead is the access log's size and root in committed state.
func (n *Node) LogHead() (consent.LogRoot, error) {
	var head consent.LogRoot
	_, err := n.query("/audit/head", nil, &head)
	return head, err
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
		next, height := head.Size, n.chain.Height()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.streams.Done():
				return
			case <-t.C:
			}
			if h := n.chain.Height(); h == height {
				continue
			} else {
				height = h
			}
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
	var list []api.Emergency
	if _, err := n.query("/emergency-queue", nil, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// ReviewEmergency records this hospital's review of an emergency access (a privacy
// officer's outcome code) on the chain.
func (n *Node) ReviewEmergency(ctx context.Context, grant consent.GrantID, outcome string) (*api.Committed, error) {
	c, _, err := n.submit(ctx, consent.Body{Kind: consent.KindReview, Review: &consent.Review{Grant: grant, Outcome: outcome}})
	return c, err
}

// shredErased destroys this custodian's copy of the key of every record erased since
// the log index from (crypto-shredding: the ciphertext becomes unreadable everywhere)
// and unpins its ciphertext (a block-store GC then reclaims it; GC is not run here,
// where it could race an ingest between its import and its pin). It returns the log
// size it read to.
func (n *Node) shredErased(ctx context.Context, from uint64) (uint64, error) {
	events, size, err := n.eventsSince(from, consent.AuditFilter{Hospital: n.id, Kind: consent.AuditRecordErased})
	if err != nil {
		return from, err
	}
	for _, e := range events {
		if !slices.Contains(e.Custodians, n.id) {
			continue
		}
		var rec consent.Record
		if _, err := n.query("/record/"+string(e.Record), nil, &rec); err != nil {
			return from, err
		}
		id, err := crypto.ParseRecordID(string(rec.ID))
		if err != nil {
			return from, err
		}
		if err := os.Remove(CustodyKeyPath(n.home, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return from, fmt.Errorf("node: destroy the key of erased record %s: %w", rec.ID, err)
		}
		if c, err := cid.Decode(rec.CID); err == nil {
			if err := n.store.Unpin(ctx, c); err != nil {
				n.log.Warn("unpin of an erased record failed", "record", rec.ID, "err", err)
			}
		}
		n.log.Info("erased record's key destroyed", "record", rec.ID, "height", e.Height)
	}
	return size, nil
}
