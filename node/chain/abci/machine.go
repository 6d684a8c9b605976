package abci

import "github.com/medledger/medledger/consent"

// Committer is a StateMachine with a commitment to part of its state that clients
// should be able to check on its own (e.g. the root of an audit log): the app hash
// binds the commitment after each height separately from the height's writes, so a
// light client checks it with two signed headers and the writes' digest (HashParts).
type Committer interface {
	// Commitment is read after EndBlock (and after InitChain), from the state as the
	// height leaves it. It must be deterministic.
	Commitment(r consent.Reader) ([]byte, error)
}

// StateMachine is the deterministic application the chain replicates: same inputs ⇒
// same writes and results on every node. It must not read the wall clock, iterate Go
// maps to produce output, use randomness, floats or goroutines, or keep state outside
// the store it is given (the adapter may replay blocks on restart). The consent
// machine is one (NewConsentMachine); tests run a smaller one (nodetest.KV).
//
// The store's reads see the committed state plus the block's earlier writes. Returned
// keys and values are the caller's to keep. A store error is a storage failure: the
// machine should give up on the tx (the adapter halts the node regardless). Keys must
// not be empty; a nil value is stored as an empty value.
type StateMachine interface {
	// InitChain writes the genesis state from the genesis app_state bytes; an error
	// halts the node. b is the block before the initial height, at the genesis time.
	InitChain(w consent.Store, chainID string, appState []byte, b consent.Block) error
	// InitValidators is told the genesis validator set, after InitChain, in the same
	// writes; a machine that changes the set (its results' Validators) keeps it.
	InitValidators(w consent.Store, vals []consent.ValidatorUpdate) error
	// CheckTx validates a tx against the latest committed state; code != 0 keeps it
	// out of the mempool.
	// An error (not a rejection: an infrastructure failure) halts the node.
	CheckTx(r consent.Reader, tx []byte) (consent.Result, error)
	// DeliverTx executes a tx inside a block, in block order, writing into the
	// block's store. A rejected tx (Code != 0) must write nothing: the machine
	// buffers a tx's writes (e.g. in a consent.Overlay) and applies them only when
	// it accepts the tx. An error halts the node.
	DeliverTx(w consent.Store, tx []byte, b consent.Block) (consent.Result, error)
	// EndBlock runs after the block's txs (e.g. expiry sweeps); an error halts the
	// node.
	EndBlock(w consent.Store, b consent.Block) error
	// Query answers a read against the latest committed state.
	Query(r consent.Reader, path string, data []byte) (consent.Result, error)
}

// consentMachine is what the chain needs of the consent machine.
type consentMachine interface {
	StateMachine
	Committer
}

var _ consentMachine = (*consent.Machine)(nil)

// NewConsentMachine returns a fresh consent state machine for one node: the consent
// chain's StateMachine, whose access-log root is its Committer commitment.
func NewConsentMachine() StateMachine { return consent.NewMachine() }
