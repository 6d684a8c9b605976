package chain

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
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

// TxDropped means a tx that passed CheckTx is not in this node's mempool and no block
// since it was sent holds it: after each block CometBFT checks every pending tx again
// and drops those no longer valid (made redundant by another tx, say, or expired), as
// every node does alike; or the mempool, full, never took it. It will not commit.
type TxDropped struct {
	Hash   []byte
	Height int64 // the height at which this node found it gone
}

func (e *TxDropped) Error() string {
	return fmt.Sprintf("chain: the tx %X is not in the mempool at height %d and no block since it was sent holds it "+
		"(dropped as no longer valid after a block: made redundant by another tx, or expired; or never taken by a full mempool); "+
		"it will not commit", e.Hash, e.Height)
}

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

// progressWatch sends on c a *NoProgress once the node has made no block for
// StallAfter (it learns of blocks from the event bus: see heights), or a *TxDropped
// once the tx has been out of the mempool, uncommitted, for two heights (a commit
// reaches SubmitTx in the height's own events, well before that).
type progressWatch struct {
	c    chan error
	done chan struct{}
}

func (w *progressWatch) stop() { close(w.done) }

func (n *Node) watchProgress(tx []byte) *progressWatch {
	w := &progressWatch{c: make(chan error, 1), done: make(chan struct{})}
	hash := cmttypes.Tx(tx).Hash()
	from := n.Height() + 1 // the first block that may hold it
	go func() {
		stall := time.NewTimer(StallAfter)
		defer stall.Stop()
		moved := time.Now()
		var gone int64 // the height at which the tx was first seen out of the mempool
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
				h := n.Height()
				switch {
				case n.inMempool(hash, h):
					gone = 0
				case gone == 0:
					gone = h
				case h < gone+2:
				case n.inBlocks(hash, from): // committed: its event is on its way
					gone = 0
				default:
					w.c <- &TxDropped{Hash: hash, Height: h}
					return
				}
			case <-stall.C:
				r, total := n.Reachable()
				w.c <- &NoProgress{Hash: cmttypes.Tx(tx).Hash(), Height: n.Height(), Stalled: time.Since(moved), Reachable: r, Total: total}
				return
			}
		}
	}()
	return w
}

// mempoolKeys is the mempool's tx hashes as read at one height, shared by every
// waiting SubmitTx (one read of the mempool a height, not one a waiter).
type mempoolKeys struct {
	sync.Mutex
	height int64
	keys   map[string]bool
}

// inMempool reports whether the tx with this hash is in the mempool, as read at height.
func (n *Node) inMempool(hash []byte, height int64) bool {
	n.mpKeys.Lock()
	defer n.mpKeys.Unlock()
	if n.mpKeys.keys == nil || n.mpKeys.height != height {
		txs := n.cmt.Mempool().ReapMaxTxs(-1)
		keys := make(map[string]bool, len(txs))
		for _, tx := range txs {
			keys[string(tx.Hash())] = true
		}
		n.mpKeys.height, n.mpKeys.keys = height, keys
	}
	return n.mpKeys.keys[string(hash)]
}

// inBlocks reports whether a block this node stored from height from on holds the tx
// with this hash (blocks are stored before they are applied, so a tx committed but not
// yet announced is found).
func (n *Node) inBlocks(hash []byte, from int64) bool {
	bs := n.cmt.BlockStore()
	for h := max(from, bs.Base()); h <= bs.Height(); h++ {
		b := bs.LoadBlock(h)
		if b == nil {
			continue
		}
		for _, tx := range b.Txs {
			if bytes.Equal(tx.Hash(), hash) {
				return true
			}
		}
	}
	return false
}
