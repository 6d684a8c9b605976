package nodetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/chain/abci"
)

// ValidatorsConfig configures a network of validators.
type ValidatorsConfig struct {
	// Validators is the number of validators (default 4).
	Validators int
	// Dir holds the nodes' homes (Dir/node0, Dir/node1, …). If empty, NewValidators creates a
	// temporary directory and Stop removes it; a Dir given is left in place.
	Dir string
	// ChainID defaults to "validators-" and 8 random hex digits.
	ChainID string
	// NewMachine makes node i's state machine, afresh on every (re)start (required).
	NewMachine func(i int) abci.StateMachine
	// AppState is the genesis app_state (JSON).
	AppState []byte
	// Powers are the validators' voting powers (default 10 each).
	Powers []int64
	// External nodes are prepared (keys, home, ports, genesis: Validators.Configs[i]) but not
	// created in this process: the caller runs them elsewhere, e.g. in a child process.
	// External nodes get an RPC listener.
	External []int
	// RPC gives every node an RPC listener on a free loopback port.
	RPC bool
	// PublicQuery is chain.Config.PublicQuery: the Machine's query paths the RPC
	// answers (nil: none but the adapter's hash parts).
	PublicQuery func(path string) bool
	// EmptyBlockInterval is chain.Config.EmptyBlockInterval (default 0: a block right
	// after the previous one).
	EmptyBlockInterval time.Duration
	// Logger receives the nodes' logs (default: discarded).
	Logger *slog.Logger
	// MaxBlockTxBytes, if set, sizes the genesis block.max_bytes so that a block holds
	// this many bytes of txs (CometBFT's overhead for header, commit and 1 KiB of
	// evidence added): a test can keep two txs out of one block.
	MaxBlockTxBytes int64
}

// Validate fills defaults and rejects what cannot work.
func (c *ValidatorsConfig) Validate() error {
	if c.Validators == 0 {
		c.Validators = 4
	}
	switch {
	case c.Validators < 1:
		return fmt.Errorf("nodetest: %d validators", c.Validators)
	case c.NewMachine == nil:
		return errors.New("nodetest: no NewMachine")
	case c.Powers != nil && len(c.Powers) != c.Validators:
		return fmt.Errorf("nodetest: %d powers for %d validators", len(c.Powers), c.Validators)
	}
	for _, i := range c.External {
		if i < 0 || i >= c.Validators {
			return fmt.Errorf("nodetest: external node %d of %d", i, c.Validators)
		}
	}
	if c.Powers == nil {
		c.Powers = slices.Repeat([]int64{10}, c.Validators)
	}
	return nil
}

// Validators is a network of CometBFT validators in this process: each with its own
// home directory, keys and loopback ports, one genesis, and every node a persistent
// peer of every other. Its methods return errors (Net wraps it for tests).
type Validators struct {
	// Nodes are the in-process nodes; nil for an external node. StopNode and
	// RestartNode replace entries, so read them after those calls.
	Nodes []*chain.Node
	// Configs are what each node is built from (the same home, keys and ports on a
	// restart). Their Machine is nil: ValidatorsConfig.NewMachine gives a fresh one
	// per start.
	Configs []chain.Config
	ChainID string
	Genesis *cmttypes.GenesisDoc
	// Dir holds the nodes' homes.
	Dir string

	cfg    ValidatorsConfig
	tmpDir bool // Dir was created by NewValidators: Stop removes it

	mu      sync.Mutex
	running []bool
	stopped bool
}

// LaunchValidators creates a network (see NewValidators) and starts it.
func LaunchValidators(cfg ValidatorsConfig) (*Validators, error) {
	n, err := NewValidators(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Start(); err != nil {
		return nil, errors.Join(err, n.Stop())
	}
	return n, nil
}

// NewValidators prepares a network (homes, keys, free ports, genesis) and creates its
// in-process nodes (their ABCI handshake runs here); Start starts them. On an error,
// what NewValidators created is removed.
func NewValidators(cfg ValidatorsConfig) (_ *Validators, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Validators{cfg: cfg, Dir: cfg.Dir, ChainID: cfg.ChainID}
	if n.Dir == "" {
		if n.Dir, err = os.MkdirTemp("", "validators-"); err != nil {
			return nil, fmt.Errorf("nodetest: %w", err)
		}
		n.tmpDir = true
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Stop())
		}
	}()
	if n.ChainID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		n.ChainID = "validators-" + hex.EncodeToString(b)
	}
	if err := n.prepare(); err != nil {
		return nil, err
	}
	for i := range n.Nodes {
		if slices.Contains(cfg.External, i) {
			continue
		}
		if n.Nodes[i], err = n.newNode(i); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// prepare fills Configs and Genesis.
func (n *Validators) prepare() error {
	count := n.cfg.Validators
	n.Nodes = make([]*chain.Node, count)
	n.Configs = make([]chain.Config, count)
	n.running = make([]bool, count)
	gen := &cmttypes.GenesisDoc{
		ChainID:         n.ChainID,
		GenesisTime:     time.Now().UTC(),
		InitialHeight:   1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
		AppState:        n.cfg.AppState,
	}
	if room := n.cfg.MaxBlockTxBytes; room > 0 {
		const evidence = 1024
		gen.ConsensusParams.Evidence.MaxBytes = evidence
		gen.ConsensusParams.Block.MaxBytes = cmttypes.MaxOverheadForBlock + cmttypes.MaxHeaderBytes +
			cmttypes.MaxCommitBytes(count) + evidence + room
	}
	for i := range count {
		c := &n.Configs[i]
		c.Home = filepath.Join(n.Dir, fmt.Sprintf("node%d", i))
		c.Moniker = fmt.Sprintf("node%d", i)
		c.NodeKey, c.ValidatorKey = newKey(), newKey()
		var err error
		if c.P2PListen, err = freeAddr(); err != nil {
			return err
		}
		if n.cfg.RPC || slices.Contains(n.cfg.External, i) {
			if c.RPCListen, err = freeAddr(); err != nil {
				return err
			}
		}
		c.EmptyBlockInterval = n.cfg.EmptyBlockInterval
		c.PublicQuery = n.cfg.PublicQuery
		c.Logger = n.cfg.Logger
		pub := c.ValidatorKey.Public().(ed25519.PublicKey)
		gen.Validators = append(gen.Validators, chain.ValidatorFromKey(pub, n.cfg.Powers[i], c.Moniker))
	}
	if err := gen.ValidateAndComplete(); err != nil {
		return fmt.Errorf("nodetest: genesis: %w", err)
	}
	n.Genesis = gen
	for i := range n.Configs {
		c := &n.Configs[i]
		c.Genesis = gen
		for j, other := range n.Configs {
			if j != i {
				c.PersistentPeers = append(c.PersistentPeers, chain.P2PAddr(other.NodeKey, other.P2PListen))
			}
		}
	}
	return nil
}

func (n *Validators) newNode(i int) (*chain.Node, error) {
	c := n.Configs[i]
	c.Machine = n.cfg.NewMachine(i)
	node, err := chain.NewNode(c)
	if err != nil {
		return nil, fmt.Errorf("nodetest: node %d: %w", i, err)
	}
	return node, nil
}

// Start starts every in-process node that is not running.
func (n *Validators) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return errors.New("nodetest: network stopped")
	}
	for i, node := range n.Nodes {
		if node == nil || n.running[i] {
			continue
		}
		if err := node.Start(); err != nil {
			return fmt.Errorf("nodetest: start node %d: %w", i, err)
		}
		n.running[i] = true
	}
	return nil
}

// Running reports whether node i runs in this process.
func (n *Validators) Running(i int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running[i]
}

// External reports whether node i runs outside this process (ValidatorsConfig.External).
func (n *Validators) External(i int) bool { return slices.Contains(n.cfg.External, i) }

// WaitHeight waits until every running in-process node has committed height h and
// takes part in consensus (a node still catching up by block sync refuses txs).
func (n *Validators) WaitHeight(ctx context.Context, h int64) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		low, lowest, syncing := -1, int64(0), -1
		n.mu.Lock()
		for i, node := range n.Nodes {
			if !n.running[i] {
				continue
			}
			if got := node.Height(); got < h && (low < 0 || got < lowest) {
				low, lowest = i, got
			}
			if syncing < 0 && node.CatchingUp() {
				syncing = i
			}
		}
		n.mu.Unlock()
		if low < 0 && syncing < 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if low < 0 {
				return fmt.Errorf("nodetest: node %d still catching up at height %d: %w", syncing, h, ctx.Err())
			}
			return fmt.Errorf("nodetest: node %d at height %d, waiting for %d: %w", low, lowest, h, ctx.Err())
		case <-tick.C:
		}
	}
}

// StopNode stops node i (its home, keys and ports stay for RestartNode).
func (n *Validators) StopNode(i int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopLocked(i)
}

func (n *Validators) stopLocked(i int) error {
	if n.Nodes[i] == nil || !n.running[i] {
		return nil
	}
	n.running[i] = false
	if err := n.Nodes[i].Stop(); err != nil {
		return fmt.Errorf("nodetest: stop node %d: %w", i, err)
	}
	return nil
}

// RestartNode stops node i if it runs, then starts a new node from the same home and
// keys, with a fresh state machine.
func (n *Validators) RestartNode(i int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.stopped:
		return errors.New("nodetest: network stopped")
	case n.External(i):
		return fmt.Errorf("nodetest: node %d is external", i)
	}
	if err := n.stopLocked(i); err != nil {
		return err
	}
	node, err := n.newNode(i)
	if err != nil {
		return err
	}
	n.Nodes[i] = node
	if err := node.Start(); err != nil {
		return fmt.Errorf("nodetest: restart node %d: %w", i, err)
	}
	n.running[i] = true
	return nil
}

// Stop stops every in-process node, in parallel, and removes Dir if NewValidators created it.
// It may be called more than once.
func (n *Validators) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil
	}
	n.stopped = true
	var wg sync.WaitGroup
	errs := make([]error, len(n.Nodes)+1)
	for i, node := range n.Nodes {
		if node != nil {
			// A node never started: Stop closes its stores.
			wg.Go(func() {
				if err := node.Stop(); err != nil {
					errs[i] = fmt.Errorf("nodetest: stop node %d: %w", i, err)
				}
			})
		}
	}
	wg.Wait()
	clear(n.running)
	if n.tmpDir {
		if err := os.RemoveAll(n.Dir); err != nil {
			errs[len(n.Nodes)] = fmt.Errorf("nodetest: %w", err)
		}
	}
	return errors.Join(errs...)
}

func newKey() ed25519.PrivateKey {
	_, k, _ := ed25519.GenerateKey(rand.Reader) // never fails (crypto/rand)
	return k
}

func freeAddr() (string, error) {
	p, err := chain.FreePort()
	if err != nil {
		return "", fmt.Errorf("nodetest: %w", err)
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", p), nil
}
