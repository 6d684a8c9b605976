package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/chain"
)

// Health errors, as Serving returns them.
var (
	// ErrUnavailable is a node that cannot show its state is current (starting,
	// catching up, behind its peers, or the chain makes no progress). It expects to
	// recover by itself; meanwhile it releases no key.
	ErrUnavailable = errors.New("node: unavailable")
	// ErrFailed is a node whose consensus or storage has failed. It does not recover:
	// it serves no key and no record, and Done is closed so that its owner closes it
	// and its process exits for a supervisor to restart.
	ErrFailed = errors.New("node: failed")
)

// Limits of the health watchdog.
const (
	// healthInterval is how often the watchdog looks at the chain.
	healthInterval = 250 * time.Millisecond
	// blockAgeMargin is how much older than the chain's heartbeat (empty blocks
	// every chain.empty_block_interval) the latest block may be, and how long txs may
	// wait in the mempool without a block, before the chain counts as not making
	// progress. Rounds take about a second when a proposer is down.
	blockAgeMargin = 10 * time.Second
	// stallLimit is how long a node whose peers report a higher height may keep its
	// own height before it counts as failed (its consensus is stuck: a restart block-
	// syncs it).
	stallLimit = 30 * time.Second
	// probeInterval is how often the watchdog writes and syncs a small file in each
	// directory the node writes (a full or read-only disk fails it).
	probeInterval = 10 * time.Second
)

// facts are what the watchdog judges a node's health by.
type facts struct {
	chain.Status
	age      time.Duration // of the latest block; negative before the first
	stalled  time.Duration // since the height last changed
	reported error         // a fatal fault reported to the watchdog (storage, a dependency)
}

// assess judges facts, heartbeat being the chain's empty-block interval
// (chain.NoEmptyBlocks: an idle chain makes no blocks, so the latest block's age
// tells nothing). It returns the status and, unless ok, the reason in one line.
func assess(f facts, heartbeat time.Duration) (api.HealthStatus, string) {
	if reason := fatal(f); reason != "" {
		return api.StatusFailed, reason
	}
	if reason := unavailable(f, heartbeat); reason != "" {
		return api.StatusUnavailable, reason
	}
	return api.StatusOK, ""
}

// fatal is why the facts say the node has failed, or "".
func fatal(f facts) string {
	switch {
	case f.reported != nil:
		return f.reported.Error()
	case f.Fault != nil:
		return f.Fault.Error()
	case !f.Running:
		return "the consensus engine has stopped"
	case f.PeerHeight > f.Height+1 && f.stalled >= stallLimit:
		return fmt.Sprintf("consensus stalled: height %d for %s while peers report %d", f.Height, seconds(f.stalled), f.PeerHeight)
	}
	return ""
}

// unavailable is why the facts do not show the node's state is current, or "".
func unavailable(f facts, heartbeat time.Duration) string {
	switch {
	case f.CatchingUp:
		return fmt.Sprintf("catching up by block sync (height %d, peers report %d)", f.Height, f.PeerHeight)
	case f.Height == 0:
		return "no block committed yet"
	case f.PeerHeight > f.Height+1:
		return fmt.Sprintf("behind its peers (height %d, peers report %d)", f.Height, f.PeerHeight)
	case f.Peers == 0 && f.Validators > 1:
		return "no connected peers: cannot tell whether the chain has moved on"
	case f.Pending > 0 && f.stalled > blockAgeMargin:
		return fmt.Sprintf("%d txs waiting and no block for %s: the chain is not making progress (fewer than 2/3 of the validators?)", f.Pending, seconds(f.stalled))
	case heartbeat >= 0 && f.age > heartbeat+blockAgeMargin:
		return fmt.Sprintf("the latest block is %s old (empty blocks every %s): the chain is not making progress", seconds(f.age), seconds(heartbeat))
	}
	return ""
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func seconds(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }

// watchdog decides a node's health from facts (chain.Status, faults reported to it)
// and latches the first fatal state: from then on the node stays failed.
type watchdog struct {
	status    func() chain.Status
	heartbeat time.Duration
	log       *slog.Logger
	metrics   *metrics

	mu       sync.Mutex
	height   int64     // the height last seen
	progress time.Time // when it last changed (or the watchdog started)
	state    api.HealthStatus
	reported error         // the first fault reported (fail)
	err      error         // the fatal state, once latched
	done     chan struct{} // closed when err is set or the node closes
	closed   bool
}

func newWatchdog(status func() chain.Status, heartbeat time.Duration, log *slog.Logger, m *metrics) *watchdog {
	return &watchdog{status: status, heartbeat: heartbeat, log: log, metrics: m,
		progress: time.Now(), state: api.StatusUnavailable, done: make(chan struct{})}
}

// check reads the facts now, judges them and latches a fatal state.
func (w *watchdog) check() api.Health {
	s := w.status()
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.Height != w.height {
		w.height, w.progress = s.Height, now
	}
	f := facts{Status: s, age: -1, stalled: now.Sub(w.progress), reported: w.reported}
	if !s.BlockTime.IsZero() {
		f.age = now.Sub(s.BlockTime)
	}
	status, reason := assess(f, w.heartbeat)
	if w.err != nil { // failed stays failed, whatever the facts say now
		status, reason = api.StatusFailed, w.err.Error()
	}
	w.transition(status, reason, firstErr(f.reported, f.Fault))
	h := api.Health{Status: status, Height: s.Height, CatchingUp: s.CatchingUp, Peers: s.Peers,
		PeerHeight: s.PeerHeight, LatestBlockAge: -1, Reason: reason}
	if f.age >= 0 {
		h.LatestBlockAge = f.age.Round(time.Millisecond).Seconds()
	}
	w.metrics.health(h)
	return h
}

// transition logs a change of state and latches a fatal one, wrapping cause if
// there is one (w.mu held).
func (w *watchdog) transition(status api.HealthStatus, reason string, cause error) {
	if status == w.state {
		return
	}
	w.state = status
	switch status {
	case api.StatusFailed:
		if w.closed || w.err != nil {
			return
		}
		if cause == nil {
			cause = errors.New(reason)
		}
		w.err = fmt.Errorf("%w: %w", ErrFailed, cause)
		close(w.done)
		w.log.Error("node failed: it serves no key and no record and should be restarted", "reason", reason)
	case api.StatusUnavailable:
		w.log.Warn("node unavailable: it releases no key until it is current", "reason", reason)
	default:
		w.log.Info("node healthy")
	}
}

// fail reports a fatal fault (a storage write that failed, a dependency gone): the
// next check latches it. The first report wins.
func (w *watchdog) fail(err error) {
	w.mu.Lock()
	if w.reported == nil {
		w.reported = err
	}
	w.mu.Unlock()
	w.check()
}

// close closes done if it is still open: the node is closing, so no fault reported
// from now on (its own shutdown stops the engine) latches.
func (w *watchdog) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	if w.err == nil {
		close(w.done)
	}
}

// fatalErr is the latched fatal state, or nil.
func (w *watchdog) fatalErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// probe writes, syncs and removes a small file in dir.
func probe(dir string) error {
	f, err := os.CreateTemp(dir, ".health-probe-*")
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte{'\n'})
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr, os.Remove(f.Name()))
}

// Health is the node's state now and the facts it was judged by (api.Backend).
func (n *Node) Health() api.Health {
	h := n.health.check()
	h.Hospital, h.ChainID = n.id, n.home.Config.ChainID
	return h
}

// Serving is nil when the node may release keys and serve records: it takes part in
// consensus at the chain's tip as far as it can tell. Otherwise it is ErrUnavailable
// (expected to pass: catching up, behind, no progress) or ErrFailed (for good), with
// the reason. It judges the facts at the call, so a key-release path calls it right
// before it answers.
func (n *Node) Serving() error {
	h := n.health.check()
	switch h.Status {
	case api.StatusOK:
		return nil
	case api.StatusFailed:
		if err := n.health.fatalErr(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s", ErrFailed, h.Reason) // closing: not latched
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, h.Reason)
}

// Done is closed when the node has failed (Err is then non-nil: its consensus or
// storage failed) or is closing. A failed node keeps answering /healthz (503) until
// its owner closes it; `medledger start` then exits non-zero with Err.
func (n *Node) Done() <-chan struct{} { return n.health.done }

// Err is why the node failed (wrapping ErrFailed), or nil.
func (n *Node) Err() error { return n.health.fatalErr() }

// failStop reports a fatal fault found on a path of the node (a storage write that
// failed, e.g. a DEK file): the node turns failed within one check.
func (n *Node) failStop(err error) { n.health.fail(err) }

// watch runs the watchdog until the node closes: a check every healthInterval, at
// once when the chain reports a fault, and a storage probe every probeInterval.
func (n *Node) watch() {
	defer n.wg.Done()
	tick := time.NewTicker(healthInterval)
	defer tick.Stop()
	faulted := n.chain.Faulted()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-faulted:
			faulted = nil
		case <-tick.C:
		}
		n.health.check()
	}
}

// probeStorage writes to each directory the node writes, every probeInterval, and
// reports the first failure as fatal.
func (n *Node) probeStorage(dirs []string) {
	defer n.wg.Done()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		for _, d := range dirs {
			if err := probe(d); err != nil {
				n.failStop(fmt.Errorf("storage: cannot write to %s: %w", d, err))
				return
			}
		}
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
	}
}
