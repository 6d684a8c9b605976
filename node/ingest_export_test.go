package node

import (
	"context"
)

// SetSync replaces how g's ingests make a DEK file durable; set it before any
// ingest through g.
func (g *IngestGate) SetSync(s Syncer) { g.sync = s }

// Hold takes room in g as an ingest of weight bytes does, until release.
func (g *IngestGate) Hold(ctx context.Context, weight int64) (release func(), err error) {
	return g.enter(ctx, weight)
}
