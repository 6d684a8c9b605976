package chain

import (
	"errors"
	"fmt"
	"time"

	"github.com/cometbft/cometbft/p2p"
	cmttypes "github.com/cometbft/cometbft/types"
)

// ErrNoProgress means the chain made no block for StallAfter while a submitted tx
// waited for one: validators holding more than 2/3 of the power are not reachable or
// not voting. The tx stays in the mempool and may still commit when they return.
var ErrNoProgress = errors.New("the chain is not making progress")

// StallAfter is how long SubmitTx waits with no new block before it gives up with
// *NoProgress. A live chain with a tx pending makes a block within about a second,
// idle (no empty blocks) or loaded.
const StallAfter = 8 * time.Second

// NoProgress is ErrNoProgress with what the node saw.
type NoProgress struct {
	Hash      []byte // the waiting tx's hash (CometBFT's: SHA-256 of its bytes)
	Height    int64  // this node's height, unchanged for Stalled
	Stalled   time.Duration
	Reachable int // validators: this node and its connected peers
	Total     int // of the genesis validator set
}

func (e *NoProgress) Error() string {
	return fmt.Sprintf("%s (%d of %d validators reachable; no block for %s at height %d); "+
		"the tx %X was submitted and may still commit", ErrNoProgress, e.Reachable, e.Total,
		e.Stalled.Round(time.Second), e.Height, e.Hash)
}

func (e *NoProgress) Unwrap() error { return ErrNoProgress }

// Reachable counts the validators this node takes part in consensus with: itself, if
// it is one, and its connected peers that are (a hospital's node ID is its validator
// address), of the genesis validator set (the consent chain does not change it). On a
// chain whose node keys are not its validator keys, each node counts as a validator.
func (n *Node) Reachable() (reachable, total int) {
	up := map[p2p.ID]bool{p2p.ID(n.nodeID): true}
	n.cmt.Switch().Peers().ForEach(func(p p2p.Peer) { up[p.ID()] = true })
	vals := n.cmt.GenesisDoc().Validators
	self := false
	for _, v := range vals {
		id := p2p.PubKeyToID(v.PubKey)
		self = self || id == p2p.ID(n.nodeID)
		if up[id] {
			reachable++
		}
	}
	if !self { // node keys are not validator keys (a bare chain): one validator a node
		reachable = min(len(up), len(vals))
	}
	return reachable, len(vals)
}

// progressWatch sends a *NoProgress on c once the node has made no block for
// StallAfter (it learns of blocks from the event bus: see heights).
type progressWatch struct {
	c    chan *NoProgress
	done chan struct{}
}

func (w *progressWatch) stop() { close(w.done) }

func (n *Node) watchProgress(tx []byte) *progressWatch {
	w := &progressWatch{c: make(chan *NoProgress, 1), done: make(chan struct{})}
	go func() {
		stall := time.NewTimer(StallAfter)
		defer stall.Stop()
		moved := time.Now()
		for {
			next, stopped := n.heights.changed()
			if stopped {
				return // SubmitTx learns it from its commit wait
			}
			select {
			case <-w.done:
				return
			case <-next:
				moved = time.Now()
				stall.Reset(StallAfter)
			case <-stall.C:
				r, total := n.Reachable()
				w.c <- &NoProgress{Hash: cmttypes.Tx(tx).Hash(), Height: n.Height(), Stalled: time.Since(moved), Reachable: r, Total: total}
				return
			}
		}
	}()
	return w
}
