// Package kvnet runs a network of CometBFT validators in this process over a raw ABCI
// application: the chain benchmark's yardsticks, CometBFT's example kvstore as it is
// (NewKVStore) and the same kvstore whose txs carry an Ed25519 signature checked once
// in CheckTx (NewSignedKVStore, SignTx). The nodes run under the consensus, mempool and
// p2p settings node/chain gives the consent chain (cometConfig), so what differs
// between the consent chain and these is the application alone.
//
// It does not use node/chain's Node: that runs a abci.StateMachine and nothing else.
package kvnet

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
	"sync"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/node/chain"
)

// NewApp makes node i's application over its CometBFT home (for an app that keeps
// files). The network closes it (if it is an io.Closer) when the node stops.
type NewApp func(i int, home string) (abcitypes.Application, error)

// Config configures a network.
type Config struct {
	// Validators is the number of validators (default 4).
	Validators int
	// Dir holds the nodes' homes (Dir/node0, …); it must exist. Stop leaves it.
	Dir string
	// NewApp makes each node's application (required).
	NewApp NewApp
	// Logger receives CometBFT's errors (default: discarded).
	Logger *slog.Logger
}

// Validate fills defaults and rejects what cannot work.
func (c *Config) Validate() error {
	if c.Validators == 0 {
		c.Validators = 4
	}
	switch {
	case c.Validators < 1:
		return fmt.Errorf("kvnet: %d validators", c.Validators)
	case c.Dir == "":
		return errors.New("kvnet: no directory for the nodes' homes")
	case c.NewApp == nil:
		return errors.New("kvnet: no NewApp")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Net is a running network.
type Net struct {
	Nodes   []*Node
	ChainID string

	stopOnce sync.Once
	stopErr  error
}

// Launch prepares a network (homes, keys, free loopback ports, one genesis, every node
// a persistent peer of every other), creates its nodes and starts them. On an error,
// what it started is stopped.
func Launch(cfg Config) (_ *Net, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	specs, genesis, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	n := &Net{ChainID: genesis.ChainID, Nodes: make([]*Node, 0, len(specs))}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Stop())
		}
	}()
	doc, err := cmtjson.Marshal(genesis)
	if err != nil {
		return nil, fmt.Errorf("kvnet: genesis: %w", err)
	}
	for i, s := range specs {
		app, err := cfg.NewApp(i, s.home)
		if err != nil {
			return nil, fmt.Errorf("kvnet: node %d: app: %w", i, err)
		}
		node, err := newNode(s, doc, app, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("kvnet: node %d: %w", i, err)
		}
		n.Nodes = append(n.Nodes, node)
	}
	for i, node := range n.Nodes {
		if err := node.start(); err != nil {
			return nil, fmt.Errorf("kvnet: start node %d: %w", i, err)
		}
	}
	return n, nil
}

// spec is what one node is made of.
type spec struct {
	home, moniker   string
	nodeKey, valKey ed25519.PrivateKey
	p2pListen       string
	peers           []string
}

// prepare makes each node's keys, home and port, and the genesis.
func prepare(cfg Config) ([]spec, *cmttypes.GenesisDoc, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	gen := &cmttypes.GenesisDoc{
		ChainID:         "kvnet-" + hex.EncodeToString(b),
		GenesisTime:     time.Now().UTC(),
		InitialHeight:   1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
	}
	specs := make([]spec, cfg.Validators)
	for i := range specs {
		s := &specs[i]
		s.moniker = fmt.Sprintf("node%d", i)
		s.home = filepath.Join(cfg.Dir, s.moniker)
		s.nodeKey, s.valKey = newKey(), newKey()
		p, err := chain.FreePort()
		if err != nil {
			return nil, nil, fmt.Errorf("kvnet: %w", err)
		}
		s.p2pListen = fmt.Sprintf("tcp://127.0.0.1:%d", p)
		gen.Validators = append(gen.Validators, chain.ValidatorFromKey(s.valKey.Public().(ed25519.PublicKey), 10, s.moniker))
	}
	if err := gen.ValidateAndComplete(); err != nil {
		return nil, nil, fmt.Errorf("kvnet: genesis: %w", err)
	}
	for i := range specs {
		for j, other := range specs {
			if j != i {
				specs[i].peers = append(specs[i].peers, chain.P2PAddr(other.nodeKey, other.p2pListen))
			}
		}
	}
	return specs, gen, nil
}

// WaitHeight waits until every node has committed height h and takes part in
// consensus (a node still catching up by block sync refuses txs).
func (n *Net) WaitHeight(ctx context.Context, h int64) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		behind := -1
		for i, node := range n.Nodes {
			if node.Height() < h || node.CatchingUp() {
				behind = i
				break
			}
		}
		if behind < 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kvnet: node %d not at height %d or still catching up: %w", behind, h, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop stops every node, in parallel. It may be called more than once.
func (n *Net) Stop() error {
	n.stopOnce.Do(func() {
		errs := make([]error, len(n.Nodes))
		var wg sync.WaitGroup
		for i, node := range n.Nodes {
			wg.Go(func() {
				if err := node.stop(); err != nil {
					errs[i] = fmt.Errorf("kvnet: stop node %d: %w", i, err)
				}
			})
		}
		wg.Wait()
		n.stopErr = errors.Join(errs...)
	})
	return n.stopErr
}

func newKey() ed25519.PrivateKey {
	_, k, _ := ed25519.GenerateKey(rand.Reader) // never fails (crypto/rand)
	return k
}

// ensureHome creates the node's config/ and data/ directories.
func ensureHome(home string) error {
	for _, d := range []string{"config", "data"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			return fmt.Errorf("home: %w", err)
		}
	}
	return nil
}
