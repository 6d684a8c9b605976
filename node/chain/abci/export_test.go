package abci

import (
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// faultyStore fails reads with readErr and writes with writeErr, when set.
type faultyStore struct {
	store
	readErr, writeErr error
}

func (f *faultyStore) Get(key []byte, ro *opt.ReadOptions) ([]byte, error) {
	if f.readErr != nil {
		return nil, f.readErr
	}
	return f.store.Get(key, ro)
}

func (f *faultyStore) Write(b *leveldb.Batch, wo *opt.WriteOptions) error {
	if f.writeErr != nil {
		return f.writeErr
	}
	return f.store.Write(b, wo)
}

// InjectStoreFaults makes a's store fail reads with readErr and writes with writeErr
// (nil: no fault) from now on. Values already in the read cache are forgotten, so
// every read reaches the store.
func InjectStoreFaults(a *App, readErr, writeErr error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cache = newReadCache(readCacheBytes)
	if f, ok := a.db.(*faultyStore); ok {
		f.readErr, f.writeErr = readErr, writeErr
		return
	}
	a.db = &faultyStore{store: a.db, readErr: readErr, writeErr: writeErr}
}

// SetReadCache gives a a read cache of maxBytes (0: none, every read reaches its store).
func SetReadCache(a *App, maxBytes int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cache = nil
	if maxBytes > 0 {
		a.cache = newReadCache(maxBytes)
	}
}
