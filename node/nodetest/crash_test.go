package nodetest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/nodetest"
)

// helperEnv names the file that tells TestHelperValidator which validator to run.
const helperEnv = "NODETEST_HELPER_VALIDATOR"

// helperConfig is a chain.Config without its Machine (always a KV) and Logger.
type helperConfig struct {
	Home, Moniker, P2PListen, RPCListen string
	NodeKey, ValidatorKey               []byte
	PersistentPeers                     []string
	Genesis                             json.RawMessage // CometBFT JSON
}

// TestHelperValidator is not a test: TestCrashRecovery runs it in a child process, as
// one validator of its network. It runs until killed, or until its stdin closes (the
// parent is gone).
func TestHelperValidator(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("a child process of TestCrashRecovery")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var hc helperConfig
	if err := json.Unmarshal(b, &hc); err != nil {
		t.Fatal(err)
	}
	var gen cmttypes.GenesisDoc
	if err := cmtjson.Unmarshal(hc.Genesis, &gen); err != nil {
		t.Fatal(err)
	}
	node, err := chain.NewNode(chain.Config{
		Home: hc.Home, Moniker: hc.Moniker, NodeKey: hc.NodeKey, ValidatorKey: hc.ValidatorKey,
		Genesis: &gen, P2PListen: hc.P2PListen, RPCListen: hc.RPCListen,
		PersistentPeers: hc.PersistentPeers, Machine: new(nodetest.KV),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := node.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestCrashRecovery kills one validator of four with SIGKILL at random moments under a
// steady load and restarts it. After each restart it must still hold everything it had
// committed, then catch up with the others with the same app hash at the same height,
// and hold every tx the network committed before the kill.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a child process 20+ times")
	}
	const (
		rounds   = 20
		external = 3
	)
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	net := nodetest.New(t, 4, newKV, nodetest.WithExternal(external))
	net.Start()
	child := newChildValidator(t, net, external)

	load := startLoad(ctx, t, net, external)
	defer load.stop()

	var (
		wantLocal   map[string]string // committed on the child before the kill
		wantNetwork map[string]string // committed on the network before the kill
		localHeight int64             // the child's last committed height seen before the kill
		catchUps    []time.Duration
		kills       int
	)
	for round := range rounds {
		t0 := time.Now()
		child.start()
		// 1. Right after the restart: nothing it had committed is lost.
		h, _, err := child.waitInfo(ctx, 0)
		if err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, child.logTail())
		}
		if h < localHeight {
			t.Fatalf("round %d: restarted at height %d, had committed %d before the kill", round, h, localHeight)
		}
		child.checkKeys(ctx, round, wantLocal, "committed on it before the kill")

		// 2. It catches up, with the same app hash as the others at the same height.
		target := net.Nodes[0].Height()
		h, hash, err := child.waitInfo(ctx, target)
		if err != nil {
			t.Fatalf("round %d: catching up to %d: %v\n%s", round, target, err, child.logTail())
		}
		catchUps = append(catchUps, time.Since(t0))
		want, err := net.Nodes[0].AppHashAt(h)
		if err != nil || !bytes.Equal(hash, want) {
			t.Fatalf("round %d: child app hash at %d is %x, node 0 has %x (%v)", round, h, hash, want, err)
		}
		child.checkKeys(ctx, round, wantNetwork, "committed on the network before the kill")

		// 3. Kill it at a random moment, sometimes twice in a row (the second time
		// while it starts up, replays or block-syncs).
		time.Sleep(rand.N(800 * time.Millisecond))
		if round%4 == 3 {
			child.kill()
			kills++
			child.start()
			time.Sleep(rand.N(4 * time.Second))
		}
		localHeight, _, err = child.info(ctx)
		if err != nil {
			localHeight = 0 // not answering yet: only the network check applies
		}
		wantLocal = load.committedUpTo(localHeight)
		child.kill()
		kills++
		wantNetwork = load.committedUpTo(-1)
	}
	child.start()
	if _, _, err := child.waitInfo(ctx, net.Nodes[0].Height()); err != nil {
		t.Fatalf("final restart: %v", err)
	}
	child.checkKeys(ctx, rounds, wantNetwork, "committed on the network before the last kill")

	n, p50 := load.stats()
	t.Logf("%d SIGKILLs in %v; restart to caught up: median %v, max %v; %d txs committed, SubmitTx p50 %v",
		kills, time.Since(start).Round(time.Millisecond), median(catchUps), slices.Max(catchUps).Round(time.Millisecond), n, p50)
}

// childValidator runs node i of net as `go test -test.run=TestHelperValidator` in a
// child process.
type childValidator struct {
	t       *testing.T
	cfgPath string
	logPath string
	rpc     *rpchttp.HTTP
	hc      *http.Client

	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func newChildValidator(t *testing.T, net *nodetest.Net, i int) *childValidator {
	c := net.Configs[i]
	gen, err := cmtjson.Marshal(net.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(helperConfig{
		Home: c.Home, Moniker: c.Moniker, P2PListen: c.P2PListen, RPCListen: c.RPCListen,
		NodeKey: c.NodeKey, ValidatorKey: c.ValidatorKey, PersistentPeers: c.PersistentPeers,
		Genesis: gen,
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cv := &childValidator{
		t:       t,
		cfgPath: filepath.Join(dir, "validator.json"),
		logPath: filepath.Join(dir, "validator.log"),
		hc:      &http.Client{Timeout: 2 * time.Second},
	}
	if err := os.WriteFile(cv.cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cv.rpc, err = rpchttp.NewWithClient(c.RPCListen, "/websocket", cv.hc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cv.kill()
		cv.hc.CloseIdleConnections()
	})
	return cv
}

func (c *childValidator) start() {
	c.t.Helper()
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperValidator$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+c.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If this process dies, the child's stdin closes and it stops.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.cmd, c.stdin = cmd, stdin
}

// kill sends SIGKILL and reaps the child.
func (c *childValidator) kill() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Kill() // SIGKILL
	_ = c.cmd.Wait()
	_ = c.stdin.Close()
	c.cmd = nil
}

// info is the child's last committed height and app hash, from its ABCI Info.
func (c *childValidator) info(ctx context.Context) (int64, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := c.rpc.ABCIInfo(ctx)
	if err != nil {
		return 0, nil, err
	}
	return r.Response.LastBlockHeight, r.Response.LastBlockAppHash, nil
}

// waitInfo waits until the child answers with a height of at least h.
func (c *childValidator) waitInfo(ctx context.Context, h int64) (int64, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var lastErr error
	for {
		got, hash, err := c.info(ctx)
		if err == nil && got >= h {
			return got, hash, nil
		}
		if err != nil {
			lastErr = err
		} else {
			lastErr = fmt.Errorf("at height %d", got)
		}
		select {
		case <-ctx.Done():
			return 0, nil, fmt.Errorf("child validator: waiting for height %d: %w", h, lastErr)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// checkKeys queries every key of the child's KV and wants each of want in it.
func (c *childValidator) checkKeys(ctx context.Context, round int, want map[string]string, what string) {
	c.t.Helper()
	if len(want) == 0 {
		return
	}
	r, err := c.rpc.ABCIQuery(ctx, "/keys", nil)
	if err != nil || r.Response.Code != 0 {
		c.t.Fatalf("round %d: /keys: %v (code %d)", round, err, r.Response.Code)
	}
	have := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(r.Response.Value))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		have[k] = v
	}
	missing := 0
	for k, v := range want {
		if have[k] != v {
			missing++
		}
	}
	if missing > 0 {
		c.t.Fatalf("round %d: %d of %d txs %s are missing on the child (query at height %d)",
			round, missing, len(want), what, r.Response.Height)
	}
}

func (c *childValidator) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// load submits txs "c<n>=<n>" to the in-process nodes at a steady rate and records
// the height each was committed at.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	committed map[string]int64 // key → height
	latencies []time.Duration
}

func startLoad(ctx context.Context, t *testing.T, net *nodetest.Net, skip int) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel, committed: map[string]int64{}}
	var nodes []*chain.Node
	for i, n := range net.Nodes {
		if i != skip {
			nodes = append(nodes, n)
		}
	}
	sem := make(chan struct{}, 32)
	l.wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond) // ≈ 50 tx/s
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case <-ctx.Done():
				return
			case sem <- struct{}{}:
			}
			node := nodes[seq%len(nodes)]
			l.wg.Go(func() {
				defer func() { <-sem }()
				key := fmt.Sprintf("c%d", seq)
				t0 := time.Now()
				_, h, res, err := node.SubmitTx(ctx, []byte(fmt.Sprintf("%s=%d", key, seq)))
				if errors.Is(err, context.Canceled) || ctx.Err() != nil {
					return
				}
				if err != nil || res.Code != 0 {
					t.Errorf("load: %s: code %d: %v", key, res.Code, err)
					return
				}
				l.mu.Lock()
				l.committed[key] = h
				l.latencies = append(l.latencies, time.Since(t0))
				l.mu.Unlock()
			})
		}
	})
	return l
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// committedUpTo returns the txs committed at height ≤ h (all of them when h < 0).
func (l *load) committedUpTo(h int64) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for k, kh := range l.committed {
		if h < 0 || kh <= h {
			out[k] = k[1:]
		}
	}
	return out
}

func (l *load) stats() (int, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.committed), median(l.latencies)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}
