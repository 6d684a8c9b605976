package node

import (
	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain"
)

// ConsentMachine runs the consent state machine under CometBFT: it adapts
// consent.Machine to chain.StateMachine (the two share a store interface, so this is
// types only).
type ConsentMachine struct{ M *consent.Machine }

// NewConsentMachine returns a fresh machine for one node.
func NewConsentMachine() chain.StateMachine { return ConsentMachine{M: consent.NewMachine()} }

var _ chain.AtomicTxs = ConsentMachine{}

// AtomicTxs tells the adapter that a rejected tx writes nothing: consent.Machine's
// DeliverTx buffers a tx's writes and applies them only when it accepts the tx.
func (ConsentMachine) AtomicTxs() {}

func block(b chain.Block) consent.Block {
	return consent.Block{Height: consent.Height(b.Height), Time: b.Time}
}

// InitChain writes genesis.
func (c ConsentMachine) InitChain(w chain.KVWriter, chainID string, appState []byte, b chain.Block) error {
	return c.M.InitChain(w, chainID, appState, block(b))
}

// CheckTx checks a tx against committed state.
func (c ConsentMachine) CheckTx(r chain.KVReader, tx []byte) (chain.Result, error) {
	res, err := c.M.CheckTx(r, tx)
	return result(res), err
}

// DeliverTx applies a tx in a block.
func (c ConsentMachine) DeliverTx(w chain.KVWriter, tx []byte, b chain.Block) (chain.Result, error) {
	res, err := c.M.DeliverTx(w, tx, block(b))
	return result(res), err
}

// EndBlock ends a block.
func (c ConsentMachine) EndBlock(w chain.KVWriter, b chain.Block) error {
	return c.M.EndBlock(w, block(b))
}

// Query reads committed state.
func (c ConsentMachine) Query(r chain.KVReader, path string, data []byte) (chain.Result, error) {
	res, err := c.M.Query(r, path, data)
	return result(res), err
}

func result(r consent.Result) chain.Result {
	out := chain.Result{Code: uint32(r.Code), Log: r.Log, Value: r.Value}
	for _, e := range r.Events {
		ev := chain.Event{Type: e.Type}
		for _, a := range e.Attrs {
			ev.Attrs = append(ev.Attrs, chain.Attr{Key: a.Key, Value: a.Value, Index: a.Index})
		}
		out.Events = append(out.Events, ev)
	}
	return out
}

// Commitment is the access log's size and root, which the app hash binds apart from
// the writes (chain.Committer) so that clients can check log roots against headers.
func (c ConsentMachine) Commitment(r chain.KVReader) ([]byte, error) { return c.M.Commitment(r) }

var _ chain.Committer = ConsentMachine{}
