package node

import (
	"context"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
)

// SetSync replaces how g's ingests make a DEK file durable; set it before any
// ingest through g.
func (g *IngestGate) SetSync(s Syncer) { g.sync = s }

// Hold takes room in g as an ingest of weight bytes does, until release.
func (g *IngestGate) Hold(ctx context.Context, weight int64) (release func(), err error) {
	return g.enter(ctx, weight)
}

// ObtainKey is the requester's key step for grant d of rec as the caller read it (it
// may be stale: read before a re-sharing switched the record).
func (n *Node) ObtainKey(ctx context.Context, d consent.Decision, rec consent.Record) error {
	id, err := crypto.ParseRecordID(string(rec.ID))
	if err != nil {
		return err
	}
	_, err = n.obtainKey(ctx, d, rec, id)
	return err
}
