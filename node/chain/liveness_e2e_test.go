//go:build linux

package chain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

// livenessHelperEnv names the file that tells TestLivenessHelperValidator which
// validator to run.
const livenessHelperEnv = "CHAIN_LIVENESS_HELPER_VALIDATOR"

// livenessOffEnv, set to 1, runs TestSilentPeerRejoin without the liveness reactor, to
// measure what it fixes (minutes, not part of the normal run).
const livenessOffEnv = "MEDLEDGER_LIVENESS_OFF"

// helperValidator is a chain.Config for a child process (the machine is nodetest.KV).
type helperValidator struct {
	Home, Moniker, P2PListen string
	NodeKey, ValidatorKey    []byte
	PersistentPeers          []string
	Genesis                  json.RawMessage // CometBFT JSON
	PeerSilence              time.Duration
}

// TestLivenessHelperValidator is not a test: TestSilentPeerRejoin runs it in a child
// process, as one validator of its network. It runs until killed, or until its stdin
// closes (the parent is gone).
func TestLivenessHelperValidator(t *testing.T) {
	path := os.Getenv(livenessHelperEnv)
	if path == "" {
		t.Skip("a child process of TestSilentPeerRejoin")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var hv helperValidator
	if err := json.Unmarshal(b, &hv); err != nil {
		t.Fatal(err)
	}
	var gen cmttypes.GenesisDoc
	if err := cmtjson.Unmarshal(hv.Genesis, &gen); err != nil {
		t.Fatal(err)
	}
	n, err := chain.NewNode(chain.Config{
		Home: hv.Home, Moniker: hv.Moniker, NodeKey: hv.NodeKey, ValidatorKey: hv.ValidatorKey,
		Genesis: &gen, P2PListen: hv.P2PListen, PersistentPeers: hv.PersistentPeers,
		Machine: new(nodetest.KV), PeerSilence: hv.PeerSilence,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestSilentPeerRejoin: validator X's process is frozen (SIGSTOP: its sockets stay
// open and silent, as after a power loss or a partition), and a copy of its home, with
// its node and validator keys, starts as X' on other ports, as X restarted elsewhere
// would. The three others still hold their connections to X, and CometBFT refuses X'
// as a duplicate of X while they do; the liveness reactor drops the silent connections
// after Config.PeerSilence, so X' connects to all three, catches up, joins consensus
// and commits a tx through itself within rejoinBound, under a tx load. X is never
// resumed (X' signs with its key and sign state), and is killed at the end.
//
// With MEDLEDGER_LIVENESS_OFF=1 every node runs without the reactor and the test only
// reports how long X' took (bounded at 4 minutes).
func TestSilentPeerRejoin(t *testing.T) {
	if testing.Short() {
		t.Skip("freezes a validator process and waits for its peers to drop it (~20 s)")
	}
	silence, rejoinBound := time.Duration(0), 30*time.Second
	off := os.Getenv(livenessOffEnv) == "1"
	if off {
		silence, rejoinBound = chain.NoPeerLiveness, 4*time.Minute
	}
	ctx, cancel := context.WithTimeout(t.Context(), rejoinBound+time.Minute)
	defer cancel()

	net, err := nodetest.NewValidators(nodetest.ValidatorsConfig{
		Validators: 4, Dir: t.TempDir(), External: []int{0, 1, 2, 3},
		NewMachine: func(int) abci.StateMachine { return new(nodetest.KV) },
	})
	if err != nil {
		t.Fatal(err)
	}
	const x = 3
	logs := make([]*silentPeerLog, x)
	var peers []*chain.Node // A, B, C: in this process
	for i := range x {
		logs[i] = new(silentPeerLog)
		peers = append(peers, startNode(t, net.Configs[i], silence, slog.New(logs[i])))
	}
	frozen := startHelper(t, net, x, silence)
	waitConnected(ctx, t, peers, 3, "before the freeze")

	load := startTxLoad(ctx, peers)
	defer load.stop()
	time.Sleep(time.Second) // X takes part under load

	frozen.freeze()
	frozeAt := time.Now()
	cfg := net.Configs[x]
	cfg.Home = filepath.Join(t.TempDir(), "x-restarted")
	copyDir(t, net.Configs[x].Home, cfg.Home)
	port, err := chain.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg.P2PListen = fmt.Sprintf("tcp://127.0.0.1:%d", port)
	t0 := time.Now()
	restarted := startNode(t, cfg, silence, nil)

	deadline := time.Now().Add(rejoinBound)
	// allPeers is when X' began to hold all three peers for a second: while a peer
	// refuses it, X' counts that connection for a moment after each handshake.
	var firstPeer, allPeers, allSince, inConsensus, committed time.Duration
	watch := func() chain.Status {
		st := restarted.Status()
		since := time.Since(t0)
		if firstPeer == 0 && st.Peers > 0 {
			firstPeer = since
		}
		switch {
		case st.Peers != x:
			allSince = 0
		case allSince == 0:
			allSince = since
		case allPeers == 0 && since-allSince >= time.Second:
			allPeers = allSince
		}
		if inConsensus == 0 && st.Peers > 0 && !st.CatchingUp && st.Height >= peers[0].Height()-1 {
			inConsensus = since
		}
		if time.Now().After(deadline) {
			t.Fatalf("X' not back %v after its start: %d peers, height %d, catching up %v; network at %d; first peer after %v, in consensus after %v, all peers after %v",
				rejoinBound, st.Peers, st.Height, st.CatchingUp, peers[0].Height(), firstPeer, inConsensus, allPeers)
		}
		time.Sleep(50 * time.Millisecond)
		return st
	}
	for inConsensus == 0 {
		watch()
	}
	// It accepts txs: one submitted through it commits.
	txCtx, txCancel := context.WithDeadline(ctx, deadline)
	defer txCancel()
	if _, h, res, err := restarted.SubmitTx(txCtx, []byte("rejoined=yes")); err != nil || res.Code != 0 {
		t.Fatalf("tx through X' %v after its start: height %d code %d err %v", time.Since(t0), h, res.Code, err)
	}
	committed = time.Since(t0)
	// Every peer dropped the frozen X: X' connects to all three.
	for allPeers == 0 {
		watch()
	}
	t.Logf("X frozen; X' (its copy) started %v later: first peer after %v (refused as a duplicate while the stale connections live), in consensus after %v, its tx committed after %v, all %d peers after %v (liveness off: %v, %d load txs)",
		t0.Sub(frozeAt).Round(time.Millisecond), firstPeer.Round(time.Millisecond), inConsensus.Round(time.Millisecond),
		committed.Round(time.Millisecond), x, allPeers.Round(time.Millisecond), off, load.committed.Load())
	load.stop()
	if err := load.err(); err != nil {
		t.Errorf("load: %v", err)
	}

	// Each peer dropped the frozen X for its silence (not for anything else).
	if !off {
		for i, l := range logs {
			if !l.sawSilent() {
				t.Errorf("node %d: no 'Stopping peer for error' with ErrPeerSilent in its log", i)
			}
		}
	}
	// One history: the same app hash at every height on all four, and X's tx on A.
	all := []*chain.Node{peers[0], peers[1], peers[2], restarted}
	target := peers[0].Height() + 2
	for _, n := range all {
		waitHeight(ctx, t, n, target)
	}
	for h := int64(1); h <= target; h++ {
		want, err := peers[0].AppHashAt(h)
		if err != nil || want == nil {
			t.Fatalf("node 0: app hash at %d: %x %v", h, want, err)
		}
		for i, n := range all[1:] {
			if got, err := n.AppHashAt(h); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("node %d: app hash at %d is %x (%v), node 0 has %x", i+1, h, got, err, want)
			}
		}
	}
	if res, _, err := peers[0].Query("/get", []byte("rejoined")); err != nil || string(res.Value) != "yes" {
		t.Errorf("node 0: /get rejoined = %q, %v", res.Value, err)
	}
}

// startNode creates and starts an in-process node from c with a fresh KV machine; it
// stops with the test.
func startNode(t *testing.T, c chain.Config, silence time.Duration, logger *slog.Logger) *chain.Node {
	t.Helper()
	c.RPCListen = ""
	c.Machine = new(nodetest.KV)
	c.PeerSilence = silence
	c.Logger = logger
	n, err := chain.NewNode(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop %s: %v", c.Moniker, err)
		}
	})
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	return n
}

// helperProcess is a validator in a child process.
type helperProcess struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdin   io.WriteCloser // the child stops when it closes (held: a collected file closes)
	logPath string
}

// startHelper runs node i of net in a child process (TestLivenessHelperValidator). The
// child is killed when the test ends, and by the kernel if this process dies (it may
// be stopped, when it could not notice its stdin closing).
func startHelper(t *testing.T, net *nodetest.Validators, i int, silence time.Duration) *helperProcess {
	t.Helper()
	c := net.Configs[i]
	gen, err := cmtjson.Marshal(net.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(helperValidator{
		Home: c.Home, Moniker: c.Moniker, P2PListen: c.P2PListen, NodeKey: c.NodeKey,
		ValidatorKey: c.ValidatorKey, PersistentPeers: c.PersistentPeers, Genesis: gen,
		PeerSilence: silence,
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "validator.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	h := &helperProcess{t: t, logPath: filepath.Join(dir, "validator.log")}
	logf, err := os.Create(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	h.cmd = exec.Command(os.Args[0], "-test.run=^TestLivenessHelperValidator$", "-test.count=1")
	h.cmd.Env = append(os.Environ(), livenessHelperEnv+"="+cfgPath)
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.kill)
	return h
}

// freeze stops the child with SIGSTOP: its sockets stay open and say nothing.
func (h *helperProcess) freeze() {
	h.t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		h.t.Fatalf("SIGSTOP: %v", err)
	}
}

// kill ends the child (SIGKILL ends a stopped process too) and reaps it.
func (h *helperProcess) kill() {
	_ = h.cmd.Process.Kill()
	_ = h.cmd.Wait()
	_ = h.stdin.Close()
	if h.t.Failed() {
		b, _ := os.ReadFile(h.logPath)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		h.t.Logf("frozen validator's log tail:\n%s", b)
	}
}

// copyDir copies the regular files and directories under src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o600)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// waitConnected waits until every node has want peers and has committed a block.
func waitConnected(ctx context.Context, t *testing.T, nodes []*chain.Node, want int, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		ok := true
		for _, n := range nodes {
			st := n.Status()
			ok = ok && st.Peers == want && st.Height > 0 && !st.CatchingUp
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: the nodes did not connect to %d peers each", when, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func waitHeight(ctx context.Context, t *testing.T, n *chain.Node, h int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.WaitHeight(ctx, h); err != nil {
		t.Fatalf("node at height %d, waiting for %d: %v", n.Height(), h, err)
	}
}

// txLoad submits KV txs through each node, one after another per node, until stopped.
type txLoad struct {
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	committed atomic.Int64
	mu        sync.Mutex
	errs      []error
}

func startTxLoad(ctx context.Context, nodes []*chain.Node) *txLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &txLoad{cancel: cancel}
	for i, n := range nodes {
		l.wg.Go(func() {
			for seq := 0; ctx.Err() == nil && seq < 100_000; seq++ {
				_, _, res, err := n.SubmitTx(ctx, fmt.Appendf(nil, "load-%d-%d=v", i, seq))
				switch {
				case ctx.Err() != nil:
					return
				case err != nil || res.Code != 0:
					l.mu.Lock()
					l.errs = append(l.errs, fmt.Errorf("node %d tx %d: code %d, %v", i, seq, res.Code, err))
					l.mu.Unlock()
					return
				}
				l.committed.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return l
}

func (l *txLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *txLoad) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.errs...)
}

// silentPeerLog is a slog.Handler that notes whether CometBFT's switch stopped a peer
// for ErrPeerSilent.
type silentPeerLog struct {
	silent atomic.Bool
}

func (*silentPeerLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *silentPeerLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "Stopping peer for error" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && errors.Is(err, chain.ErrPeerSilent) {
			l.silent.Store(true)
		}
		return true
	})
	return nil
}

func (l *silentPeerLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *silentPeerLog) WithGroup(string) slog.Handler      { return l }

func (l *silentPeerLog) sawSilent() bool { return l.silent.Load() }
