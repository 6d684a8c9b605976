package chain

import (
	"sync"

	dbm "github.com/cometbft/cometbft-db"

	cmtcfg "github.com/cometbft/cometbft/config"
)

// Stores opens CometBFT's stores (Provider is a cmtcfg.DBProvider) and remembers them.
// CometBFT does not close all of them on Stop (the tx indexer's stays open), and a
// restart in the same process needs their file locks: CloseAll closes them. Any
// CometBFT node run in this process (the validator here, the benchmarks' kvstore nodes)
// opens its stores through one.
type Stores struct {
	mu  sync.Mutex
	dbs []*guardedDB
}

func (o *Stores) Provider(ctx *cmtcfg.DBContext) (dbm.DB, error) {
	db, err := cmtcfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	g := &guardedDB{DB: db}
	o.mu.Lock()
	o.dbs = append(o.dbs, g)
	o.mu.Unlock()
	return g, nil
}

// CloseAll closes every store (closing one twice is harmless).
func (o *Stores) CloseAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, db := range o.dbs {
		_ = db.Close()
	}
	o.dbs = nil
}

// guardedDB answers reads after Close as if the store were empty. CometBFT's consensus
// reactor has per-peer goroutines that can wake from a sleep after the node stopped and
// read the closed block store; the block store panics on any read error, which would
// take down every node in the process. Writes after Close still fail.
type guardedDB struct {
	dbm.DB
	mu     sync.RWMutex
	closed bool
}

func (g *guardedDB) Get(key []byte) ([]byte, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return nil, nil
	}
	return g.DB.Get(key)
}

func (g *guardedDB) Has(key []byte) (bool, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return false, nil
	}
	return g.DB.Has(key)
}

func (g *guardedDB) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.DB.Close()
}
