package nodetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/medledger/medledger/node"
)

// Shared is one running consortium for the tests of a package that stop no node,
// configure no node of their own and assert nothing about the network as a whole
// (heights, block counts, logs, metrics): each works with its own patients and
// records, so they may run in parallel on it. The first test that calls Get starts
// it; the package's TestMain calls Close after m.Run.
type Shared struct {
	Hospitals int // how many (default 4)

	once   sync.Once
	c      *Consortium
	err    error
	dir    string
	cancel context.CancelFunc
}

// Get is the shared consortium, started on the first call, as seen by t: its
// failures fail t. Its nodes do not stop or restart (StopNode and StartNode fail t).
func (s *Shared) Get(t testing.TB) *Consortium {
	t.Helper()
	s.once.Do(func() { s.err = s.start() })
	if s.err != nil {
		t.Fatalf("nodetest: shared consortium: %v", s.err)
	}
	c := *s.c
	c.t = t
	return &c
}

func (s *Shared) start() error {
	n := s.Hospitals
	if n == 0 {
		n = 4
	}
	dir, err := os.MkdirTemp("", "nodetest-shared-")
	if err != nil {
		return err
	}
	s.dir = dir
	c, err := newConsortium(node.TestnetConfig{Dir: dir, Hospitals: n}, nil)
	if err != nil {
		return err
	}
	s.c = c
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	for i := range c.Homes {
		if err := c.startNode(ctx, i); err != nil {
			return err
		}
	}
	c.shared = true
	return c.waitHeight(2)
}

// Close stops the shared consortium's nodes, if it was started, and removes its homes.
func (s *Shared) Close() error {
	var errs []error
	if s.c != nil {
		for i := range s.c.Nodes {
			errs = append(errs, s.c.stopNode(i))
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nodetest: shared consortium: %w", err)
	}
	return nil
}
