package node

import (
	"context"
	"weak"

	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/record"
)

// SetIngestGate makes g the gate of h's ingests (a small cap, a sync hook).
func SetIngestGate(h *home.Home, g *IngestGate) {
	gateFor(h) // registers h's cleanup
	gates.Store(weak.Make(h), g)
}

// SetSync replaces how g's ingests make a DEK file durable; set it before any
// ingest through g.
func (g *IngestGate) SetSync(s record.Syncer) { g.sync = s }

// Hold takes room in g as an ingest of weight bytes does, until release.
func (g *IngestGate) Hold(ctx context.Context, weight int64) (release func(), err error) {
	return g.enter(ctx, weight)
}
