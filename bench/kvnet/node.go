package kvnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	cmtcfg "github.com/cometbft/cometbft/config"
	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/mempool"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/node/chain"
)

// ErrRejected is a tx the application refused, in CheckTx or in its block.
var ErrRejected = errors.New("kvnet: tx rejected")

// Node is one validator: CometBFT over a raw ABCI application, with a local client
// (one mutex over the app's connections, as CometBFT's default).
type Node struct {
	cmt     *cmtnode.Node
	app     abcitypes.Application
	dbs     *chain.Stores
	commits *chain.CommitWaiters
	started bool
}

// cometConfig is the CometBFT configuration node/chain gives the consent chain's
// validators (consensus timeouts, gossip sleep, mempool size, tx indexer, p2p without
// PEX), so that the yardstick runs under the same rules.
func cometConfig(s spec) *cmtcfg.Config {
	cc := cmtcfg.DefaultConfig()
	cc.SetRoot(s.home)
	cc.Moniker = s.moniker
	cc.DBBackend = "goleveldb"
	cc.P2P.ListenAddress = s.p2pListen
	cc.P2P.PersistentPeers = strings.Join(s.peers, ",")
	cc.P2P.AllowDuplicateIP = true
	cc.P2P.AddrBookStrict = false
	cc.P2P.PexReactor = false
	cc.RPC.ListenAddress = ""
	cc.Consensus.TimeoutPropose = time.Second
	cc.Consensus.TimeoutPrevote = 200 * time.Millisecond
	cc.Consensus.TimeoutPrecommit = 200 * time.Millisecond
	cc.Consensus.TimeoutCommit = 100 * time.Millisecond
	cc.Consensus.PeerGossipSleepDuration = 10 * time.Millisecond
	cc.Consensus.CreateEmptyBlocks = true
	cc.Consensus.CreateEmptyBlocksInterval = 0
	cc.Mempool.Size = 5000
	cc.TxIndex.Indexer = "kv"
	cc.Instrumentation.Prometheus = false
	return cc
}

// newNode creates a node's home and stores and runs the ABCI handshake.
func newNode(s spec, genesis []byte, app abcitypes.Application, logger *slog.Logger) (_ *Node, err error) {
	n := &Node{app: app, dbs: new(chain.Stores)}
	defer func() {
		if r := recover(); r != nil { // the handshake panics on a disagreeing app
			err = fmt.Errorf("start CometBFT: %v", r)
		}
		if err != nil {
			err = errors.Join(err, n.stop())
		}
	}()
	cc := cometConfig(s)
	if err := cc.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("CometBFT config: %w", err)
	}
	if err := ensureHome(s.home); err != nil {
		return nil, err
	}
	pv := privval.NewFilePV(cmted25519.PrivKey(s.valKey), cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile())
	pv.LastSignState.Save()
	nodeKey := &p2p.NodeKey{PrivKey: cmted25519.PrivKey(s.nodeKey)}
	n.cmt, err = cmtnode.NewNode(cc, pv, nodeKey,
		proxy.NewLocalClientCreator(app),
		func() (*cmttypes.GenesisDoc, error) { return cmttypes.GenesisDocFromJSON(genesis) },
		n.dbs.Provider,
		cmtnode.DefaultMetricsProvider(cc.Instrumentation),
		cometLogger{logger},
	)
	if err != nil {
		return nil, fmt.Errorf("start CometBFT: %w", err)
	}
	if n.commits, err = chain.WatchCommits(n.cmt.EventBus()); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Node) start() error {
	if err := n.cmt.Start(); err != nil {
		return err
	}
	n.started = true
	return nil
}

// stop stops CometBFT, waits for it and closes the stores and the app.
func (n *Node) stop() error {
	var err error
	if n.cmt != nil && n.started {
		if err = n.cmt.Stop(); err == nil {
			n.cmt.Wait()
		}
		n.started = false
	}
	n.dbs.CloseAll()
	if c, ok := n.app.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	n.app = nil
	return err
}

// Height is the last height this node's block store holds.
func (n *Node) Height() int64 { return n.cmt.BlockStore().Height() }

// CatchingUp reports whether the node is still catching up by block sync.
func (n *Node) CatchingUp() bool { return n.cmt.ConsensusReactor().WaitSync() }

// SubmitTx puts tx in the node's mempool and waits until it is committed. A tx the app
// refuses is ErrRejected, with its code and log.
func (n *Node) SubmitTx(ctx context.Context, tx []byte) error {
	committed, cancel := n.commits.Wait(tx) // before CheckTx: the block may come right after
	defer cancel()
	checked := make(chan *abcitypes.ResponseCheckTx, 1)
	err := n.cmt.Mempool().CheckTx(tx, func(r *abcitypes.ResponseCheckTx) {
		select {
		case checked <- r:
		default:
		}
	}, mempool.TxInfo{})
	if err != nil {
		return fmt.Errorf("kvnet: submit: %w", err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case r := <-checked:
		if r.Code != abcitypes.CodeTypeOK {
			return fmt.Errorf("%w by CheckTx: code %d: %s", ErrRejected, r.Code, r.Log)
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case ev, ok := <-committed:
		switch {
		case !ok:
			return errors.New("kvnet: submit: the node stopped before the tx was committed")
		case ev.Result.Code != abcitypes.CodeTypeOK:
			return fmt.Errorf("%w in its block: code %d: %s", ErrRejected, ev.Result.Code, ev.Result.Log)
		}
		return nil
	}
}

// cometLogger passes CometBFT's errors to a slog.Logger.
type cometLogger struct{ l *slog.Logger }

func (c cometLogger) Debug(string, ...any) {}
func (c cometLogger) Info(string, ...any)  {}
func (c cometLogger) Warn(string, ...any)  {}
func (c cometLogger) Error(msg string, kv ...any) {
	c.l.Error(msg, kv...)
}
func (c cometLogger) With(kv ...any) cmtlog.Logger { return cometLogger{c.l.With(kv...)} }
