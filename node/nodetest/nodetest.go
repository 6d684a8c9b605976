// Package nodetest runs consent-chain test networks: n CometBFT validators in this
// process, each with its own home directory, keys and loopback ports, one genesis, and
// every node a persistent peer of every other. It also holds KV, a small state machine
// for tests of the chain itself.
package nodetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/node/chain"
)

// Option configures New.
type Option func(*options)

type options struct {
	appState []byte
	powers   []int64
	external map[int]bool
	rpc      bool
	logger   *slog.Logger
}

// WithAppState sets the genesis app_state (JSON).
func WithAppState(appState []byte) Option {
	return func(o *options) { o.appState = appState }
}

// WithPowers sets the validators' voting powers (default 10 each).
func WithPowers(powers ...int64) Option {
	return func(o *options) { o.powers = powers }
}

// WithExternal prepares node i (keys, home, ports, genesis: Net.Configs[i]) but does not
// create it in this process: the test runs it elsewhere, e.g. in a child process.
// External nodes get an RPC listener.
func WithExternal(i ...int) Option {
	return func(o *options) {
		for _, x := range i {
			o.external[x] = true
		}
	}
}

// WithRPC gives every node an RPC listener on a free loopback port.
func WithRPC() Option {
	return func(o *options) { o.rpc = true }
}

// WithLogger sends the nodes' logs to l (default: discarded).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Net is an in-process test network.
type Net struct {
	// Nodes are the in-process nodes; nil for an external node. StopNode and
	// RestartNode replace entries, so read them after those calls.
	Nodes []*chain.Node
	// Configs are what each node is built from (the same home, keys and ports on a
	// restart). Their Machine is nil: newMachine(i) gives a fresh one per start.
	Configs []chain.Config
	ChainID string
	Genesis *cmttypes.GenesisDoc

	t          testing.TB
	newMachine func(i int) chain.StateMachine
	external   map[int]bool

	mu      sync.Mutex
	running []bool
}

// New prepares a network of n validators whose state machines newMachine makes, and
// creates its in-process nodes (their ABCI handshake runs here); Start starts them. It
// registers t.Cleanup(Stop).
func New(t testing.TB, n int, newMachine func(i int) chain.StateMachine, opts ...Option) *Net {
	t.Helper()
	o := options{external: map[int]bool{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.powers == nil {
		o.powers = make([]int64, n)
		for i := range o.powers {
			o.powers[i] = 10
		}
	}
	if len(o.powers) != n {
		t.Fatalf("nodetest: %d powers for %d nodes", len(o.powers), n)
	}
	net := &Net{
		Nodes:      make([]*chain.Node, n),
		Configs:    make([]chain.Config, n),
		ChainID:    "nodetest-" + hex.EncodeToString(randBytes(t, 4)),
		t:          t,
		newMachine: newMachine,
		external:   o.external,
		running:    make([]bool, n),
	}
	t.Cleanup(net.Stop)

	gen := &cmttypes.GenesisDoc{
		ChainID:         net.ChainID,
		GenesisTime:     time.Now().UTC(),
		InitialHeight:   1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
		AppState:        o.appState,
	}
	for i := range n {
		c := &net.Configs[i]
		c.Home = t.TempDir()
		c.Moniker = fmt.Sprintf("node%d", i)
		c.NodeKey = newKey(t)
		c.ValidatorKey = newKey(t)
		c.P2PListen = fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
		if o.rpc || o.external[i] {
			c.RPCListen = fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
		}
		c.Logger = o.logger
		pub := c.ValidatorKey.Public().(ed25519.PublicKey)
		gen.Validators = append(gen.Validators, chain.ValidatorFromKey(pub, o.powers[i], c.Moniker))
	}
	if err := gen.ValidateAndComplete(); err != nil {
		t.Fatalf("nodetest: genesis: %v", err)
	}
	net.Genesis = gen
	for i := range n {
		c := &net.Configs[i]
		c.Genesis = gen
		for j := range n {
			if j != i {
				other := net.Configs[j]
				c.PersistentPeers = append(c.PersistentPeers, chain.P2PAddr(other.NodeKey, other.P2PListen))
			}
		}
	}
	for i := range n {
		if !net.external[i] {
			net.Nodes[i] = net.newNode(i)
		}
	}
	return net
}

func (n *Net) newNode(i int) *chain.Node {
	n.t.Helper()
	c := n.Configs[i]
	c.Machine = n.newMachine(i)
	node, err := chain.NewNode(c)
	if err != nil {
		n.t.Fatalf("nodetest: node %d: %v", i, err)
	}
	return node
}

// Start starts every in-process node.
func (n *Net) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, node := range n.Nodes {
		if node == nil || n.running[i] {
			continue
		}
		if err := node.Start(); err != nil {
			n.t.Fatalf("nodetest: start node %d: %v", i, err)
		}
		n.running[i] = true
	}
}

// Running reports whether node i runs in this process.
func (n *Net) Running(i int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running[i]
}

// WaitHeight waits until every running in-process node has committed height h.
func (n *Net) WaitHeight(ctx context.Context, h int64) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		low, lowest := -1, int64(0)
		n.mu.Lock()
		for i, node := range n.Nodes {
			if n.running[i] {
				if got := node.Height(); got < h && (low < 0 || got < lowest) {
					low, lowest = i, got
				}
			}
		}
		n.mu.Unlock()
		if low < 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodetest: node %d at height %d, waiting for %d: %w", low, lowest, h, ctx.Err())
		case <-tick.C:
		}
	}
}

// StopNode stops node i (its home, keys and ports stay for RestartNode).
func (n *Net) StopNode(i int) {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.stopLocked(i); err != nil {
		n.t.Fatalf("nodetest: stop node %d: %v", i, err)
	}
}

func (n *Net) stopLocked(i int) error {
	if n.Nodes[i] == nil || !n.running[i] {
		return nil
	}
	n.running[i] = false
	return n.Nodes[i].Stop()
}

// RestartNode stops node i if it runs, then starts a new node from the same home and
// keys, with a fresh state machine from newMachine(i).
func (n *Net) RestartNode(i int) {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.external[i] {
		n.t.Fatalf("nodetest: node %d is external", i)
	}
	if err := n.stopLocked(i); err != nil {
		n.t.Fatalf("nodetest: stop node %d: %v", i, err)
	}
	node := n.newNode(i)
	if err := node.Start(); err != nil {
		n.t.Fatalf("nodetest: restart node %d: %v", i, err)
	}
	n.Nodes[i], n.running[i] = node, true
}

// Stop stops every in-process node, in parallel. New registers it with t.Cleanup.
func (n *Net) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(n.Nodes))
	for i, node := range n.Nodes {
		if node == nil {
			continue
		}
		wg.Go(func() { errs[i] = node.Stop() }) // a node never started: closes its stores
	}
	wg.Wait()
	for i := range n.running {
		n.running[i] = false
	}
	for i, err := range errs {
		if err != nil {
			n.t.Errorf("nodetest: stop node %d: %v", i, err)
		}
	}
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("nodetest: key: %v", err)
	}
	return k
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("nodetest: random: %v", err)
	}
	return b
}

func freePort(t testing.TB) int {
	p, err := chain.FreePort()
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	return p
}
