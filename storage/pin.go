package storage

import (
	"context"
	"fmt"

	"github.com/ipfs/boxo/ipld/merkledag"
	pinner "github.com/ipfs/boxo/pinning/pinner"
	"github.com/ipfs/go-cid"
)

// Pin pins the file rooted at c recursively; every block of it must be in the store
// (fetch it first).
func (s *Store) Pin(ctx context.Context, c cid.Cid) error {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if err := merkledag.FetchGraph(ctx, c, s.dag); err != nil {
		return mapErr(c, err)
	}
	return s.pin(ctx, c)
}

func (s *Store) pin(ctx context.Context, c cid.Cid) error {
	if err := s.pins.PinWithMode(ctx, c, pinner.Recursive, ""); err != nil {
		return fmt.Errorf("storage: pin %s: %w", c, err)
	}
	if err := s.pins.Flush(ctx); err != nil {
		return fmt.Errorf("storage: pin %s: %w", c, err)
	}
	return nil
}

// Unpin removes the pin of c. Its blocks stay until GC.
func (s *Store) Unpin(ctx context.Context, c cid.Cid) error {
	if err := s.pins.Unpin(ctx, c, true); err != nil {
		return fmt.Errorf("storage: unpin %s: %w", c, err)
	}
	return s.pins.Flush(ctx)
}

// IsPinned reports whether c is pinned recursively.
func (s *Store) IsPinned(ctx context.Context, c cid.Cid) (bool, error) {
	_, ok, err := s.pins.IsPinnedWithType(ctx, c, pinner.Recursive)
	if err != nil {
		return false, fmt.Errorf("storage: pin lookup %s: %w", c, err)
	}
	return ok, nil
}

// GC deletes every block that no recursive pin reaches and returns how many it deleted.
func (s *Store) GC(ctx context.Context) (int, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	// The block store is keyed by multihash (its keys come back as raw CIDs), so
	// liveness is decided by multihash, whatever codec links to a block.
	live := map[string]bool{}
	visit := func(c cid.Cid) bool {
		k := string(c.Hash())
		if live[k] {
			return false
		}
		live[k] = true
		return true
	}
	for p := range s.pins.RecursiveKeys(ctx, false) {
		if p.Err != nil {
			return 0, fmt.Errorf("storage: gc: pins: %w", p.Err)
		}
		root := p.Pin.Key
		err := merkledag.Walk(ctx, merkledag.GetLinksWithDAG(s.dag), root, visit)
		if err != nil {
			return 0, fmt.Errorf("storage: gc: walk %s: %w", root, mapErr(root, err))
		}
	}
	keys, err := s.bs.AllKeysChan(ctx)
	if err != nil {
		return 0, fmt.Errorf("storage: gc: %w", err)
	}
	removed := 0
	for k := range keys {
		if live[string(k.Hash())] {
			continue
		}
		if err := s.bs.DeleteBlock(ctx, k); err != nil {
			return removed, fmt.Errorf("storage: gc: delete %s: %w", k, err)
		}
		removed++
	}
	return removed, ctx.Err()
}
