package chain

import (
	"errors"
	"fmt"
	"sync"
	"time"

	cmtcons "github.com/cometbft/cometbft/consensus"
	"github.com/cometbft/cometbft/p2p"
	cmttypes "github.com/cometbft/cometbft/types"
)

// ErrConsensusFailure is CometBFT's consensus routine stopped by an internal failure
// (it logs "CONSENSUS FAILURE!!!"): typically its sign state, WAL or block store could
// not be written. The routine does not restart; the process, its RPC and /status carry
// on regardless, so only Node.Fault tells.
var ErrConsensusFailure = errors.New("chain: consensus failure")

// consensusFailureMsg is the message CometBFT v0.40 logs when its consensus routine
// recovers from a panic and stops for good (consensus/state.go, receiveRoutine).
const consensusFailureMsg = "CONSENSUS FAILURE!!!"

// faultLatch keeps the first fatal fault a node saw. A nil latch ignores faults.
type faultLatch struct {
	mu   sync.Mutex
	err  error
	done chan struct{} // closed when err is set
}

func newFaultLatch() *faultLatch { return &faultLatch{done: make(chan struct{})} }

// set records err unless a fault is already recorded.
func (f *faultLatch) set(err error) {
	if f == nil || err == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
		close(f.done)
	}
}

func (f *faultLatch) get() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// consensusFailure is the fault a "CONSENSUS FAILURE!!!" record's key-values name.
func consensusFailure(kv []any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok && k == "err" {
			return fmt.Errorf("%w: %v", ErrConsensusFailure, kv[i+1])
		}
	}
	return ErrConsensusFailure
}

// Fault is the first fatal fault this node saw, or nil: a consensus failure
// (ErrConsensusFailure) or an error of the app store (reads and writes by the ABCI
// adapter, whose errors halt consensus). A node with a fault does not recover: stop
// it; CometBFT replays what its stores lack at the next start.
func (n *Node) Fault() error { return n.faults.get() }

// Faulted is closed when Fault becomes non-nil.
func (n *Node) Faulted() <-chan struct{} { return n.faults.done }

// Status is what a node knows of its own progress and of its peers', for a watchdog
// to judge its health by.
type Status struct {
	Height     int64     // the app's last committed height
	BlockTime  time.Time // that block's time (BFT time; zero before the first block)
	CatchingUp bool      // catching up by block sync (see CatchingUp)
	Running    bool      // CometBFT's services run (false once stopped)
	Validators int       // the genesis validator set's size
	Peers      int       // connected CometBFT peers
	Pending    int       // txs in the mempool, waiting for a block
	// PeerHeight is the highest height a connected peer has committed, as its
	// consensus messages report it (the height it works on, less one); 0 when none
	// has said.
	PeerHeight int64
	Fault      error // Fault()
}

// Status reads the node's Status. It is cheap (no I/O but one block-store read) and
// safe for concurrent use.
func (n *Node) Status() Status {
	s := Status{
		Height:     n.Height(),
		CatchingUp: n.CatchingUp(),
		Running:    n.cmt.IsRunning(),
		Validators: n.validators,
		Pending:    n.cmt.Mempool().Size(),
		Fault:      n.Fault(),
	}
	s.BlockTime = n.blockTime(s.Height)
	s.Peers, s.PeerHeight = peerHeights(n.cmt.Switch().Peers())
	return s
}

// blockTime is the time of the block at height, or zero if this node has not stored
// it or its block store is closed (CometBFT's block store panics on a read error; a
// health check racing with Stop must not take the process down with it).
func (n *Node) blockTime(height int64) (t time.Time) {
	if height <= 0 {
		return time.Time{}
	}
	defer func() {
		if recover() != nil {
			t = time.Time{}
		}
	}()
	if m := n.cmt.BlockStore().LoadBlockMeta(height); m != nil {
		return m.Header.Time
	}
	return time.Time{}
}

// peerHeights counts the peers and finds the highest height one has committed.
func peerHeights(ps p2p.IPeerSet) (count int, highest int64) {
	ps.ForEach(func(p p2p.Peer) {
		count++
		if st, ok := p.Get(cmttypes.PeerStateKey).(*cmtcons.PeerState); ok {
			highest = max(highest, st.GetHeight()-1)
		}
	})
	return count, highest
}
