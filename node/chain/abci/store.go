package abci

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/medledger/medledger/consent"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Layout of the app's leveldb:
//
//	s<key>          the state machine's key and value
//	mlast           the last committed height (8 bytes, big endian) and app hash
//	mhash<height>   the app hash after each height (height as 8 bytes, big endian)
//	mparts/<height> what that app hash is made of (HashParts, JSON)
//
// Everything a Commit changes is written in one synced batch.
const (
	statePrefix = "s"
	metaLast    = "mlast"
	metaParts   = "mparts/"
	metaHash    = "mhash"
)

// store is the subset of *leveldb.DB the app uses, so tests can inject faults.
type store interface {
	Get(key []byte, ro *opt.ReadOptions) ([]byte, error)
	NewIterator(slice *util.Range, ro *opt.ReadOptions) iterator.Iterator
	Write(batch *leveldb.Batch, wo *opt.WriteOptions) error
	Close() error
}

var _ store = (*leveldb.DB)(nil)

func openStore(dir string) (*leveldb.DB, error) {
	// A bloom filter per table spares a Get the tables that cannot hold its key: the
	// state machine reads a few keys per tx, some of them absent (nonces, for replay).
	// A 32 MiB block cache (default 8) keeps the access log's upper tree nodes and
	// indexes warm when the state grows to hundreds of MB. A 32 MiB write buffer
	// (default 4) makes fewer, larger level-0 tables: a busy chain writes ten or so
	// keys a tx, and with the default buffer compactions took 14 % of the CPU of a
	// 4-validator benchmark (4 % with this one; consent txs/s +25 %).
	db, err := leveldb.OpenFile(dir, &opt.Options{
		ErrorIfMissing:     false,
		Filter:             filter.NewBloomFilter(10),
		BlockCacheCapacity: 32 << 20,
		WriteBuffer:        32 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("abci: open app store %s: %w", dir, err)
	}
	return db, nil
}

func stateKey(key []byte) []byte {
	return append([]byte(statePrefix), key...)
}

func partsKey(height int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(metaParts), uint64(height))
}

func hashKey(height int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(metaHash), uint64(height))
}

// dbView is the committed state as a consent.View (and so a consent.Reader). It
// remembers the first storage error it saw, so the adapter can halt even when the state
// machine swallowed the error.
type dbView struct {
	db    store
	cache *readCache // nil: none
	err   error
}

// readCache keeps committed values read recently, and keys found absent: a node reads
// the same keys (parameters, the hospital registry, hot records and consents) for tx
// after tx, and each tx's keys in CheckTx and again in FinalizeBlock (its nonce, absent
// until committed, among them). Commit updates the keys it writes, so the cache never
// answers other than the store would. It has its own mutex: CheckTx, Query and
// FinalizeBlock read through it at once.
//
// It has two generations: entries go into cur; when cur holds half the budget, it
// becomes prev and a fresh cur starts; a hit in prev moves the entry to cur. So what
// was used within the last generation stays, eviction costs nothing per entry, and the
// cache never holds more than its budget.
type readCache struct {
	mu        sync.Mutex
	cur, prev map[string]cached
	bytes     int // of cur
	maxBytes  int // of cur and prev together
}

type cached struct {
	value []byte // nil when absent
	found bool
}

func newReadCache(maxBytes int) *readCache {
	return &readCache{cur: map[string]cached{}, prev: map[string]cached{}, maxBytes: maxBytes}
}

func (c *readCache) get(key []byte) (cached, bool) {
	if c == nil {
		return cached{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cur[string(key)]; ok {
		return e, true
	}
	e, ok := c.prev[string(key)]
	if ok {
		k := string(key)
		delete(c.prev, k)
		c.putLocked(k, e)
	}
	return e, ok
}

// put caches key's value (or absence), replacing what was cached for it. A value too
// large to be worth its room is not cached, and neither is what key had before.
func (c *readCache) put(key string, e cached) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(key, e)
}

func (c *readCache) putLocked(key string, e cached) {
	c.drop(key)
	size := entrySize(key, e)
	if size > max(c.maxBytes/64, 1024) {
		return
	}
	if c.bytes+size > c.maxBytes/2 {
		c.prev, c.cur, c.bytes = c.cur, make(map[string]cached, len(c.cur)), 0
	}
	c.cur[key] = e
	c.bytes += size
}

func (c *readCache) drop(key string) {
	if old, ok := c.cur[key]; ok {
		delete(c.cur, key)
		c.bytes -= entrySize(key, old)
	}
	delete(c.prev, key)
}

// entrySize is what an entry costs: its key and value, and about as much again for
// the map's own memory (most entries are small: IDs, and nonces found absent).
func entrySize(key string, e cached) int { return len(key) + len(e.value) + 64 }

// committed brings the cached keys up to date with writes just committed.
func (c *readCache) committed(ws []consent.Write) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range ws {
		_, inCur := c.cur[w.Key]
		_, inPrev := c.prev[w.Key]
		switch {
		case !inCur && !inPrev:
		case w.Deleted:
			c.putLocked(w.Key, cached{})
		default:
			c.putLocked(w.Key, cached{value: bytes.Clone(w.Value), found: true})
		}
	}
}

func (v *dbView) fail(err error) error {
	err = fmt.Errorf("abci: app store: %w", err)
	if v.err == nil {
		v.err = err
	}
	return err
}

var _ consent.View = (*dbView)(nil)

// Get implements consent.Reader (for CheckTx and Query).
func (v *dbView) Get(key []byte) ([]byte, error) {
	val, _, err := v.Lookup(key)
	return bytes.Clone(val), err
}

// Lookup implements consent.View: the value is the store's, not to be modified.
func (v *dbView) Lookup(key []byte) ([]byte, bool, error) {
	if e, ok := v.cache.get(key); ok {
		return e.value, e.found, nil
	}
	val, err := v.db.Get(stateKey(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		v.cache.put(string(key), cached{})
		return nil, false, nil
	}
	if err != nil {
		return nil, false, v.fail(err)
	}
	v.cache.put(string(key), cached{value: val, found: true})
	return val, true, nil
}

// Iterate implements consent.Reader (for CheckTx and Query).
func (v *dbView) Iterate(start, end []byte, fn func(key, value []byte) error) error {
	return v.Scan(start, end, func(k, val []byte) error {
		return fn(append([]byte(nil), k...), append([]byte(nil), val...))
	})
}

// Scan implements consent.View: it passes the iterator's buffers to fn, which must copy
// what it keeps; fn's error is returned unchanged.
func (v *dbView) Scan(start, end []byte, fn func(key, value []byte) error) error {
	r := &util.Range{Start: stateKey(start)}
	if end != nil {
		r.Limit = stateKey(end)
	} else {
		r.Limit = util.BytesPrefix([]byte(statePrefix)).Limit
	}
	it := v.db.NewIterator(r, nil)
	defer it.Release()
	for it.Next() {
		if err := fn(it.Key()[len(statePrefix):], it.Value()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return v.fail(err)
	}
	return nil
}

// loadLast reads the last committed height and app hash (0, nil on a fresh store).
func loadLast(db store) (int64, []byte, error) {
	b, err := db.Get([]byte(metaLast), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("abci: app store: read last height: %w", err)
	}
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("abci: app store: last height record is %d bytes: the store is corrupt", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), b[8:], nil
}
