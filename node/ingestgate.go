package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/home"

	"github.com/medledger/medledger/storage"
)

// Ingest gate defaults ([ingest] in config.toml).
const (
	defaultIngestConcurrent = 4
	defaultIngestBytes      = 256 << 20
	defaultIngestWait       = 10 * time.Second
)

// ErrIngestBusy means the node's ingest cap ([ingest] in config.toml) stayed full
// for the whole wait: nothing was read or stored. Retry after a while. The error
// also carries an *api.Unavailable, which the API answers with 503 and Retry-After.
var ErrIngestBusy = errors.New("node: too many ingests in progress")

// IngestGate bounds the ingests a node runs at once: by count, and by the bytes of
// their Bundles, which an ingest holds in memory while it validates and seals one
// (its peak memory is a small multiple of its Bundle: about 2-3x with Go's default
// GC). A Bundle counts at the size its reader announces (Size() int64: a request's
// Content-Length), else at the largest Bundle accepted (64 MiB); one larger than
// the byte cap counts as the whole cap. An ingest that finds no room within the
// wait is refused with ErrIngestBusy.
type IngestGate struct {
	slots    *semaphore.Weighted
	bytes    *semaphore.Weighted
	maxBytes int64
	wait     time.Duration
	sync     Syncer // makes a DEK file durable: (*os.File).Sync
}

// NewIngestGate makes a gate from the [ingest] config (zero values: defaults).
func NewIngestGate(c home.IngestConfig) *IngestGate {
	g := &IngestGate{maxBytes: c.MaxBytes, wait: c.Wait(), sync: (*os.File).Sync}
	n := int64(c.MaxConcurrent)
	if n <= 0 {
		n = defaultIngestConcurrent
	}
	if g.maxBytes <= 0 {
		g.maxBytes = defaultIngestBytes
	}
	if g.wait <= 0 {
		g.wait = defaultIngestWait
	}
	g.slots, g.bytes = semaphore.NewWeighted(n), semaphore.NewWeighted(g.maxBytes)
	return g
}

// Ingest is the package's Ingest through this gate.
func (g *IngestGate) Ingest(ctx context.Context, h *home.Home, store *storage.Store, bundle io.Reader, to crypto.WrapPublicKey, progress Progress) (*Ingested, error) {
	release, err := g.enter(ctx, g.weight(bundle))
	if err != nil {
		return nil, err
	}
	defer release()
	return ingest(ctx, h, store, bundle, to, progress, g.sync, nil)
}

// ingestShared is Ingest through this gate of a record whose key is shared among
// custodians as s says (nil: kept whole, as Ingest).
func (g *IngestGate) ingestShared(ctx context.Context, h *home.Home, store *storage.Store, bundle io.Reader, s *sharing) (*Ingested, error) {
	release, err := g.enter(ctx, g.weight(bundle))
	if err != nil {
		return nil, err
	}
	defer release()
	return ingest(ctx, h, store, bundle, nil, nil, g.sync, s)
}

// weight is what an ingest of bundle counts against the byte cap.
func (g *IngestGate) weight(bundle io.Reader) int64 {
	w := int64(maxBundleBytes)
	if s, ok := bundle.(interface{ Size() int64 }); ok && s.Size() > 0 {
		w = min(s.Size(), maxBundleBytes+1) // a larger one is refused after one byte more
	}
	return min(w, g.maxBytes)
}

// enter waits, at most the gate's wait, for a slot and weight bytes. It fails with
// ctx's error if ctx ends first, else with ErrIngestBusy.
func (g *IngestGate) enter(ctx context.Context, weight int64) (release func(), err error) {
	wctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	if err := g.slots.Acquire(wctx, 1); err != nil {
		return nil, g.refusal(ctx)
	}
	if err := g.bytes.Acquire(wctx, weight); err != nil {
		g.slots.Release(1)
		return nil, g.refusal(ctx)
	}
	return func() { g.bytes.Release(weight); g.slots.Release(1) }, nil
}

// refusal is why enter gave up: ctx's end, or a full gate.
func (g *IngestGate) refusal(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: %w", ErrIngestBusy, &api.Unavailable{Reason: "ingest-busy",
		Detail: fmt.Sprintf("the node is ingesting as much as it is configured to; none finished within %s", g.wait), RetryAfter: g.wait})
}
