package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	pinner "github.com/ipfs/boxo/pinning/pinner"
	"github.com/ipfs/boxo/pinning/pinner/dspinner"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	leveldb "github.com/ipfs/go-ds-leveldb"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// ChunkSize is the size of a UnixFS leaf: one block of ciphertext.
const ChunkSize = 1 << 20

// maxLinks is the fan-out of the balanced DAG's inner nodes (as Kubo's default).
const maxLinks = 174

// Errors.
var (
	// ErrNotFound means the CID is not in this block store (nor, for a fetch, obtainable).
	ErrNotFound = errors.New("storage: CID not found in the block store")
	// ErrCorrupt means a stored block does not hash to its CID; it is not served.
	ErrCorrupt = errors.New("storage: stored block fails its hash check")
)

// Store is a node's block store with its pins.
type Store struct {
	ds    datastore.Batching
	bs    blockstore.Blockstore
	dag   ipld.DAGService // local only: never touches the network
	pins  pinner.Pinner
	gcMu  sync.RWMutex // imports hold it shared until pinned; GC holds it exclusively
	close func() error
}

// Open opens (or creates) an on-disk store in dir, backed by LevelDB.
func Open(ctx context.Context, dir string) (*Store, error) {
	d, err := leveldb.NewDatastore(dir, &leveldb.Options{
		// Blocks are ciphertext: compressing them only burns CPU.
		Compression: opt.NoCompression,
		WriteBuffer: 64 << 20,
		// Every put first asks whether the block is there (usually not): a bloom
		// filter per table answers most such misses without reading the table.
		Filter: filter.NewBloomFilter(10),
	})
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	s, err := newStore(ctx, d)
	if err != nil {
		d.Close()
		return nil, err
	}
	s.close = d.Close
	return s, nil
}

// OpenMemory returns a store that lives in memory only.
func OpenMemory(ctx context.Context) (*Store, error) {
	return newStore(ctx, dssync.MutexWrap(datastore.NewMapDatastore()))
}

func newStore(ctx context.Context, d datastore.Batching) (*Store, error) {
	bs := &blockstore.ValidatingBlockstore{Blockstore: blockstore.NewBlockstore(d)}
	dag := merkledag.NewDAGService(blockservice.New(bs, nil))
	pins, err := dspinner.New(ctx, d, dag) // keys under /pins, beside /blocks
	if err != nil {
		return nil, fmt.Errorf("storage: pins: %w", err)
	}
	return &Store{ds: d, bs: bs, dag: dag, pins: pins, close: func() error { return nil }}, nil
}

// Close flushes and closes the store.
func (s *Store) Close() error {
	perr := s.pins.Close()
	if err := s.close(); err != nil {
		return fmt.Errorf("storage: close: %w", err)
	}
	return perr
}

// Blockstore is the hash-checking block store, for bitswap to serve from and fill.
func (s *Store) Blockstore() blockstore.Blockstore { return s.bs }

// Import stores the stream r as a UnixFS file and pins it. It returns the root CID
// (CIDv1) and the number of bytes read.
func (s *Store) Import(ctx context.Context, r io.Reader) (cid.Cid, int64, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	cr := &countingReader{r: r}
	// Each block goes to the datastore in a write of its own (commits run in
	// parallel): batching 1 MiB blocks only makes LevelDB grow and copy its batch
	// buffer (≈ 3 MB per 1 MiB record).
	buf := ipld.NewBufferedDAG(ctx, s.dag, ipld.MaxSizeBatchOption(1))
	params := helpers.DagBuilderParams{
		Maxlinks:   maxLinks,
		RawLeaves:  true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256},
		Dagserv:    buf,
	}
	db, err := params.New(chunker.NewSizeSplitter(cr, ChunkSize))
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("storage: import: %w", err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		// Wait for the blocks already handed to the batch: written after Import
		// returned, they would escape the GC that is to clean up after the failure.
		_ = buf.Commit()
		return cid.Undef, cr.n, fmt.Errorf("storage: import: %w", err)
	}
	if err := buf.Commit(); err != nil {
		return cid.Undef, cr.n, fmt.Errorf("storage: import: commit: %w", err)
	}
	if err := s.pin(ctx, root.Cid()); err != nil {
		return cid.Undef, cr.n, err
	}
	return root.Cid(), cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Reader is a UnixFS file being read.
type Reader interface {
	io.ReadSeekCloser
	Size() uint64
}

// Open returns a reader of the file rooted at c from this store alone.
func (s *Store) Open(ctx context.Context, c cid.Cid) (Reader, error) {
	return NewReader(ctx, s.dag, c)
}

// NewReader reads the UnixFS file rooted at c through getter (the local DAG, or one
// backed by an exchange such as bitswap). Every block is hash-checked.
func NewReader(ctx context.Context, getter ipld.NodeGetter, c cid.Cid) (Reader, error) {
	n, err := getter.Get(ctx, c)
	if err != nil {
		return nil, mapErr(c, err)
	}
	r, err := uio.NewDagReader(ctx, n, getter)
	if err != nil {
		return nil, fmt.Errorf("storage: %s is not a UnixFS file: %w", c, err)
	}
	return &reader{DagReader: r, ctx: ctx, getter: getter, c: c}, nil
}

type reader struct {
	uio.DagReader
	ctx    context.Context
	getter ipld.NodeGetter
	c      cid.Cid
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.DagReader.Read(p)
	if err != nil && err != io.EOF {
		err = r.diagnose(err)
	}
	return n, err
}

// diagnose finds why a read failed: the DAG reader fetches blocks in batches and
// reports only "failed to fetch all nodes", so walk the file one block at a time to
// name the cause (a corrupt or missing block).
func (r *reader) diagnose(readErr error) error {
	if err := checkBlocks(r.ctx, r.getter, r.c); err != nil {
		return mapErr(r.c, err)
	}
	return mapErr(r.c, readErr)
}

// checkBlocks gets every block of the DAG rooted at c, leaves included, and returns
// the first error.
func checkBlocks(ctx context.Context, getter ipld.NodeGetter, c cid.Cid) error {
	n, err := getter.Get(ctx, c)
	if err != nil {
		return err
	}
	for _, l := range n.Links() {
		if err := checkBlocks(ctx, getter, l.Cid); err != nil {
			return err
		}
	}
	return nil
}

func mapErr(c cid.Cid, err error) error {
	switch {
	case errors.Is(err, blockstore.ErrHashMismatch):
		return fmt.Errorf("%w (file %s)", ErrCorrupt, c)
	case ipld.IsNotFound(err):
		return fmt.Errorf("%w: %s", ErrNotFound, c)
	default:
		return fmt.Errorf("storage: read %s: %w", c, err)
	}
}

// DAG returns a DAG service over this store whose misses are fetched through ex
// (bitswap); fetched blocks are hash-checked and kept in this store.
func (s *Store) DAG(ex exchange.Interface) ipld.DAGService {
	return merkledag.NewDAGService(blockservice.New(s.bs, ex))
}
