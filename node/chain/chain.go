package chain

import (
	"errors"
	"time"
)

// Block is what a state machine may know of the block: its height and its time (never the
// wall clock). The time is CometBFT's BFT time, the same on every node.
type Block struct {
	Height int64
	Time   time.Time
}

// ErrStop, returned by an Iterate callback, ends the iteration early; Iterate then
// returns nil.
var ErrStop = errors.New("chain: stop iteration")

// KVReader reads committed state plus, inside a block, the writes of earlier txs of that
// block (and the earlier writes of the same tx).
//
// Returned keys and values are the caller's to keep. An error is a storage failure: the
// state machine should give up on the tx (the adapter halts the node regardless).
type KVReader interface {
	// Get returns the value of key, or nil, nil when it is absent.
	Get(key []byte) ([]byte, error)
	// Iterate calls fn for each key in [start, end) in ascending byte order; end nil
	// means no upper bound. fn returning ErrStop ends the iteration with a nil error;
	// any other error ends it and is returned. Iterate sees the state as it was when
	// Iterate was called: fn may Set or Delete (e.g. an expiry sweep) without
	// disturbing the iteration.
	Iterate(start, end []byte, fn func(key, value []byte) error) error
}

// KVWriter is a KVReader that also writes. Keys must not be empty; a nil value is stored
// as an empty value (use Delete to remove a key). An error is an adapter or storage
// failure and halts the node.
type KVWriter interface {
	KVReader
	Set(key, value []byte) error
	Delete(key []byte) error
}

// Attr is one attribute of an Event. Index asks the node's tx indexer to index it:
// set it only for opaque identifiers (never PHI).
type Attr struct {
	Key, Value string
	Index      bool
}

// Event is an ABCI event emitted by a tx.
type Event struct {
	Type  string
	Attrs []Attr
}

// Result is the outcome of CheckTx, DeliverTx or Query. Code 0 is OK; any other code
// rejects the tx (in DeliverTx, its writes are discarded). The state machine owns the
// codes.
type Result struct {
	Code      uint32
	Log       string
	Value     []byte
	Events    []Event
	GasWanted int64
}

// Committer is a StateMachine with a commitment to part of its state that clients
// should be able to check on its own (e.g. the root of an audit log): the app hash
// binds the commitment after each height separately from the height's writes, so a
// light client checks it with two signed headers and the writes' digest (HashParts).
type Committer interface {
	// Commitment is read after EndBlock (and after InitChain), from the state as the
	// height leaves it. It must be deterministic.
	Commitment(r KVReader) ([]byte, error)
}

// StateMachine is the deterministic application the chain replicates: same inputs ⇒
// same writes and results on every node. It must not read the wall clock, iterate Go
// maps to produce output, use randomness, floats or goroutines, or keep state outside
// the KVWriter it is given (the adapter may replay blocks on restart).
type StateMachine interface {
	// InitChain writes the genesis state from the genesis app_state bytes; an error
	// halts the node. b is the block before the initial height, at the genesis time.
	InitChain(w KVWriter, chainID string, appState []byte, b Block) error
	// CheckTx validates a tx against the latest committed state; code != 0 keeps it
	// out of the mempool.
	// An error (not a rejection: an infrastructure failure) halts the node.
	CheckTx(r KVReader, tx []byte) (Result, error)
	// DeliverTx executes a tx inside a block, in block order.
	// An error halts the node; a rejected tx is a Result with Code != 0.
	DeliverTx(w KVWriter, tx []byte, b Block) (Result, error)
	// EndBlock runs after the block's txs (e.g. expiry sweeps); an error halts the
	// node.
	EndBlock(w KVWriter, b Block) error
	// Query answers a read against the latest committed state.
	Query(r KVReader, path string, data []byte) (Result, error)
}

// AtomicTxs is implemented by a StateMachine whose DeliverTx writes nothing unless it
// returns code 0 with a nil error (it buffers a tx's writes itself). The adapter then
// lets its txs write into the block directly, instead of through an overlay per tx.
type AtomicTxs interface {
	StateMachine
	AtomicTxs()
}
