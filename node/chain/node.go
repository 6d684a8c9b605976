package chain

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	cmtcfg "github.com/cometbft/cometbft/config"
	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain/abci"
)

// Config configures a Node.
type Config struct {
	Home         string             // CometBFT home (config/, data/); created if missing
	Moniker      string             // default "medledger"
	NodeKey      ed25519.PrivateKey // the hospital's node key: its CometBFT node ID
	ValidatorKey ed25519.PrivateKey // signs votes; its sign state is data/priv_validator_state.json
	Genesis      *cmttypes.GenesisDoc
	// P2PListen is the consensus p2p address, e.g. "tcp://127.0.0.1:26656". Port 0 is
	// not supported (peers need to know the port): see FreePort.
	P2PListen string
	// RPCListen is CometBFT's RPC address, e.g. "tcp://127.0.0.1:26657"; "" disables it.
	RPCListen string
	// PublicQuery decides which of the Machine's query paths CometBFT's RPC
	// (abci_query) answers: those any client may read. The others are answered only
	// for the node's own reads (Node.Query). nil: none (HashPartsPath is always public).
	PublicQuery     func(path string) bool
	PersistentPeers []string // "nodeid@host:port" (see Node.P2PAddr)
	// Machine is the state machine the node replicates, run by an abci.App over its own
	// store in data/app.db.
	Machine abci.StateMachine
	// EmptyBlockInterval 0 makes a block right after the previous one (≈ 7 blocks/s on
	// a LAN: fast commits and steady heights, for tests and demos). A positive value
	// makes a block as soon as txs arrive but, when idle, an empty one only this often
	// (a heartbeat). NoEmptyBlocks makes blocks only for txs: an idle chain makes none.
	// Either way a tx still commits in about one block.
	EmptyBlockInterval time.Duration
	Logger             *slog.Logger // default: discard
	// CometLogLevel is the least level of CometBFT's own records passed to Logger;
	// default slog.LevelError.
	CometLogLevel slog.Leveler
	// PeerSilence is how long a peer that sends the liveness heartbeat may send
	// nothing before this node drops its connection (see liveness.go), so that a peer
	// whose host died silently is not held, and its restarted process refused as a
	// duplicate, for CometBFT's ping/pong 105 s or longer. 0 means DefaultPeerSilence
	// (8 s); at least MinPeerSilence; NoPeerLiveness turns the heartbeat off (the
	// node still keeps dialling its persistent peers).
	PeerSilence time.Duration
	// AdmitPeers, if set, are the node keys CometBFT's p2p admits, read from the
	// committed state (a hospital node: its registry's members); any other peer is
	// refused once its handshake names it (abci.App.AdmitPeers), and DropUnadmitted
	// closes the connections of peers no longer admitted. A node catching up by block
	// sync that has found no admitted peer for LastResortAfter (its state, and so its
	// registry, is so old that none of its members is reachable) admits its
	// PersistentPeers too, as a last resort, to reach members that joined since; once
	// it has an admitted peer, or has caught up, the others go. nil admits every peer.
	AdmitPeers abci.PeerKeys
}

// NoEmptyBlocks as Config.EmptyBlockInterval makes blocks only when there are txs.
const NoEmptyBlocks time.Duration = -1

// Validate fills defaults and rejects what cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Home == "":
		return errors.New("chain: config: Home is required")
	case len(c.NodeKey) != ed25519.PrivateKeySize:
		return errors.New("chain: config: NodeKey must be an Ed25519 private key")
	case len(c.ValidatorKey) != ed25519.PrivateKeySize:
		return errors.New("chain: config: ValidatorKey must be an Ed25519 private key")
	case c.Genesis == nil:
		return errors.New("chain: config: Genesis is required")
	case c.Machine == nil:
		return errors.New("chain: config: Machine is required")
	case !strings.HasPrefix(c.P2PListen, "tcp://"):
		return fmt.Errorf("chain: config: P2PListen %q: use tcp://host:port", c.P2PListen)
	case strings.HasSuffix(c.P2PListen, ":0"):
		return errors.New("chain: config: P2PListen needs a fixed port (see FreePort)")
	case c.EmptyBlockInterval < 0 && c.EmptyBlockInterval != NoEmptyBlocks:
		return errors.New("chain: config: EmptyBlockInterval is negative (NoEmptyBlocks is the only negative value)")
	case c.PeerSilence < 0 && c.PeerSilence != NoPeerLiveness:
		return errors.New("chain: config: PeerSilence is negative (NoPeerLiveness is the only negative value)")
	case c.PeerSilence > 0 && c.PeerSilence < MinPeerSilence:
		return fmt.Errorf("chain: config: PeerSilence %v is below the minimum %v", c.PeerSilence, MinPeerSilence)
	}
	if c.PeerSilence == 0 {
		c.PeerSilence = DefaultPeerSilence
	}
	if c.Moniker == "" {
		c.Moniker = "medledger"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.CometLogLevel == nil {
		c.CometLogLevel = slog.LevelError
	}
	return nil
}

// cometConfig is CometBFT's configuration for a consortium on a LAN.
func (c *Config) cometConfig() *cmtcfg.Config {
	cc := cmtcfg.DefaultConfig()
	cc.SetRoot(c.Home)
	cc.Moniker = c.Moniker
	cc.DBBackend = "goleveldb"
	cc.PrivValidatorState = filepath.Join(cmtcfg.DefaultDataDir, "priv_validator_state.json")

	cc.P2P.ListenAddress = c.P2PListen
	cc.P2P.PersistentPeers = strings.Join(c.PersistentPeers, ",")
	cc.P2P.AllowDuplicateIP = true
	cc.P2P.AddrBookStrict = false
	cc.P2P.PexReactor = false
	cc.FilterPeers = c.AdmitPeers != nil
	// How fast a restarted validator rejoins is set by CometBFT constants, not by
	// settings here (cmd/medledger's TestChaosSoak measures it: back in consensus about
	// 4.3 s after a kill -9'd process starts again). The restarted node dials its
	// persistent peers at once (after a 0-3 s jitter); a peer redials a lost persistent
	// peer every 5-8 s (exponential backoff only after ~2 minutes of failures); block
	// sync waits 3 s for peers, then checks each second whether to switch to consensus.
	// persistent_peers_max_dial_period only paces PEX (off here); v0.40 ignores
	// handshake_timeout and dial_timeout (its transport uses 3 s and 1 s) and has no
	// setting for a connection's ping (60 s) and pong timeout (45 s), so a peer whose
	// host vanished without closing its connections would be held up to 105 s, and its
	// restarted process refused as a duplicate meanwhile: the liveness reactor
	// (liveness.go) drops a silent peer after PeerSilence and keeps dialling
	// persistent peers every 3 s.
	cc.RPC.ListenAddress = c.RPCListen

	cc.Consensus.TimeoutPropose = time.Second
	cc.Consensus.TimeoutPrevote = 200 * time.Millisecond
	cc.Consensus.TimeoutPrecommit = 200 * time.Millisecond
	cc.Consensus.TimeoutCommit = 100 * time.Millisecond
	cc.Consensus.PeerGossipSleepDuration = 10 * time.Millisecond
	cc.Consensus.CreateEmptyBlocks = c.EmptyBlockInterval != NoEmptyBlocks
	cc.Consensus.CreateEmptyBlocksInterval = max(c.EmptyBlockInterval, 0)

	cc.Mempool.Size = 5000
	cc.TxIndex.Indexer = "kv"
	cc.Instrumentation.Prometheus = false
	return cc
}

// Node is a CometBFT validator running in this process over an abci.App.
type Node struct {
	cmt     *cmtnode.Node
	app     *abci.App
	dbs     *Stores
	nodeID  string
	p2pAddr string
	commits *CommitWaiters
	heights *heights
	mpKeys  mempoolKeys
	faults  *faultLatch
	// validators is the size of the genesis validator set (the consent chain does
	// not change it).
	validators int
	filtered   bool         // Config.AdmitPeers was set
	startedAt  atomic.Int64 // Unix nanoseconds of Start; 0 before

	mu      sync.Mutex
	started bool
	stopped bool
}

// NewNode creates the home directories, opens the app store and CometBFT's stores, and
// runs the ABCI handshake (replaying any blocks the app lacks). It does not connect to
// peers: see Start.
func NewNode(cfg Config) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cc := cfg.cometConfig()
	if err := cc.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("chain: CometBFT config: %w", err)
	}
	for _, d := range []string{"config", cmtcfg.DefaultDataDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Home, d), 0o700); err != nil {
			return nil, fmt.Errorf("chain: home: %w", err)
		}
	}
	genesis, err := copyGenesis(cfg.Genesis)
	if err != nil {
		return nil, err
	}
	pv, err := filePV(cfg.ValidatorKey, cc)
	if err != nil {
		return nil, err
	}
	nodeKey := &p2p.NodeKey{PrivKey: cmted25519.PrivKey(cfg.NodeKey)}

	faults := newFaultLatch()
	app, err := abci.NewApp(filepath.Join(cfg.Home, cmtcfg.DefaultDataDir, "app.db"), cfg.Machine, cfg.Logger)
	if err != nil {
		return nil, err
	}
	app.ReportFaults(faults.set)
	app.GateQueries(cfg.PublicQuery)
	var self atomic.Pointer[Node] // set once the node exists
	if cfg.AdmitPeers != nil {
		persistent := map[string]bool{}
		for _, p := range cfg.PersistentPeers {
			if id, _, ok := strings.Cut(p, "@"); ok {
				persistent[strings.ToLower(id)] = true
			}
		}
		app.AdmitPeers(cfg.AdmitPeers, func(id string) bool {
			n := self.Load()
			if !persistent[id] || n == nil {
				return false
			}
			ids, err := n.app.AdmittedIDs()
			return err == nil && n.lastResort(ids, n.cmt.Switch().Peers().Copy())
		})
	}
	dbs := new(Stores)
	// The handshake panics when the app and the chain disagree (e.g. a different app
	// hash at the same height); report it as an error to the caller instead.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("chain: start CometBFT: %v", r)
		}
		if err != nil {
			dbs.CloseAll()
			_ = app.Close()
		}
	}()
	var logger cmtlog.Logger = cometLogger{l: cfg.Logger, min: cfg.CometLogLevel.Level(), faults: faults}
	cmt, err := cmtnode.NewNode(cc, pv, nodeKey,
		// The App is safe for concurrent use, so each ABCI connection gets its own
		// lock (CometBFT's default is one over all of them).
		proxy.NewConnSyncLocalClientCreator(app),
		func() (*cmttypes.GenesisDoc, error) { return genesis, nil },
		dbs.Provider,
		cmtnode.DefaultMetricsProvider(cc.Instrumentation),
		logger,
		cmtnode.CustomReactors(livenessReactors(cfg.PeerSilence, cfg.PersistentPeers, logger)),
	)
	if err != nil {
		return nil, fmt.Errorf("chain: start CometBFT: %w", err)
	}
	id := string(nodeKey.ID())
	n = &Node{
		cmt:        cmt,
		app:        app,
		dbs:        dbs,
		faults:     faults,
		nodeID:     id,
		validators: len(genesis.Validators),
		filtered:   cfg.AdmitPeers != nil,
		p2pAddr:    id + "@" + strings.TrimPrefix(cfg.P2PListen, "tcp://"),
	}
	self.Store(n)
	if n.commits, err = WatchCommits(cmt.EventBus()); err != nil {
		_ = n.Stop()
		return nil, err
	}
	if n.heights, err = watchHeights(cmt.EventBus()); err != nil {
		_ = n.Stop()
		return nil, err
	}
	return n, nil
}

// copyGenesis gives each node its own GenesisDoc (CometBFT completes it in place).
func copyGenesis(g *cmttypes.GenesisDoc) (*cmttypes.GenesisDoc, error) {
	b, err := cmtjson.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("chain: genesis: %w (app_state must be JSON)", err)
	}
	c, err := cmttypes.GenesisDocFromJSON(b)
	if err != nil {
		return nil, fmt.Errorf("chain: genesis: %w", err)
	}
	return c, nil
}

// filePV is a FilePV for key whose sign state (the last height/round/step signed, which
// prevents double signing after a restart) lives in data/. The key itself is never
// written by this package.
func filePV(key ed25519.PrivateKey, cc *cmtcfg.Config) (_ *privval.FilePV, err error) {
	defer func() { // FilePVLastSignState.Save panics when it cannot write
		if r := recover(); r != nil {
			err = fmt.Errorf("chain: validator sign state: %v", r)
		}
	}()
	statePath := cc.PrivValidatorStateFile()
	pv := privval.NewFilePV(cmted25519.PrivKey(key), cc.PrivValidatorKeyFile(), statePath)
	b, err := os.ReadFile(statePath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		pv.LastSignState.Save()
		return pv, nil
	case err != nil:
		return nil, fmt.Errorf("chain: validator sign state: %w", err)
	}
	var s privval.FilePVLastSignState
	if err := cmtjson.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("chain: validator sign state %s: %w (refusing to sign without it)", statePath, err)
	}
	ls := &pv.LastSignState
	ls.Height, ls.Round, ls.Step, ls.Signature, ls.SignBytes = s.Height, s.Round, s.Step, s.Signature, s.SignBytes
	return pv, nil
}

// Start starts consensus and dials the persistent peers.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.stopped {
		return errors.New("chain: node already started")
	}
	n.startedAt.Store(time.Now().UnixNano())
	if err := n.cmt.Start(); err != nil {
		return fmt.Errorf("chain: start: %w", err)
	}
	n.started = true
	return nil
}

// LastResortAfter is how long a node catching up must have found no admitted peer
// before it admits its persistent peers (Config.AdmitPeers): long enough that a node
// whose members are reachable has connected to one, so a hospital that left, dialling
// first, is not let in while it does.
const LastResortAfter = 30 * time.Second

// lastResort reports whether this node admits its persistent peers as a last resort:
// catching up, and for LastResortAfter since start without a peer ids (the admitted
// node IDs) has.
func (n *Node) lastResort(ids map[string]bool, peers []p2p.Peer) bool {
	at := n.startedAt.Load()
	if at == 0 || time.Since(time.Unix(0, at)) <= LastResortAfter || !n.CatchingUp() {
		return false
	}
	return !slices.ContainsFunc(peers, func(p p2p.Peer) bool { return ids[string(p.ID())] })
}

// Stop stops CometBFT, waits for it and closes the app store. It may be called more
// than once.
func (n *Node) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil
	}
	n.stopped = true
	var err error
	if n.started {
		if err = n.cmt.Stop(); err == nil {
			n.cmt.Wait()
		}
	} else {
		// NewNode already opened CometBFT's stores and started its event bus; a
		// service that never started cannot Stop, so release them directly.
		n.cmt.OnStop()
	}
	// Node.OnStop leaves the ABCI connections running.
	if perr := n.cmt.ProxyApp().Stop(); perr != nil && err == nil {
		err = perr
	}
	n.dbs.CloseAll()
	return errors.Join(err, n.app.Close())
}

func execResult(r *abcitypes.ExecTxResult) consent.Result {
	res := consent.Result{Code: consent.Code(r.Code), Log: r.Log, Value: r.Data}
	for _, e := range r.Events {
		ev := consent.Event{Type: e.Type}
		for _, a := range e.Attributes {
			ev.Attrs = append(ev.Attrs, consent.Attr{Key: a.Key, Value: a.Value, Index: a.Index})
		}
		res.Events = append(res.Events, ev)
	}
	return res
}

// Query asks the state machine through the node's ABCI query connection, against the
// latest committed state; it returns the height the answer is from.
func (n *Node) Query(path string, data []byte) (consent.Result, int64, error) {
	// The local ABCI client passes the context to App.Query: it marks the read as the
	// node's own (see publicquery.go).
	r, err := n.cmt.ProxyApp().Query().Query(abci.OwnRead(context.Background()), &abcitypes.RequestQuery{Path: path, Data: data})
	if err != nil {
		return consent.Result{}, 0, fmt.Errorf("chain: query %s: %w", path, err)
	}
	return consent.Result{Code: consent.Code(r.Code), Log: r.Log, Value: r.Value}, r.Height, nil
}

// Height is the app's last committed height.
func (n *Node) Height() int64 {
	h, _ := n.LastCommitted()
	return h
}

// CatchingUp reports whether the node is still catching up by block sync, as every
// node does for a moment after it starts: until it joins consensus, it refuses txs.
func (n *Node) CatchingUp() bool {
	return n.cmt.ConsensusReactor().WaitSync()
}

// AppHash is the app hash at Height.
func (n *Node) AppHash() []byte {
	_, hash := n.LastCommitted()
	return hash
}

// LastCommitted returns Height and AppHash read together.
func (n *Node) LastCommitted() (int64, []byte) { return n.app.LastCommitted() }

// AppHashAt returns the app hash after a committed height (nil if not committed here).
func (n *Node) AppHashAt(height int64) ([]byte, error) { return n.app.AppHashAt(height) }

// App is the node's ABCI app, which keeps the state machine's state.
func (n *Node) App() *abci.App { return n.app }

// NodeID is the CometBFT node ID (derived from the node key).
func (n *Node) NodeID() string { return n.nodeID }

// P2PAddr is "nodeid@host:port", the form PersistentPeers takes.
func (n *Node) P2PAddr() string { return n.p2pAddr }

// ValidatorFromKey is a genesis validator entry for a validator's public key.
func ValidatorFromKey(pub ed25519.PublicKey, power int64, name string) cmttypes.GenesisValidator {
	pk := cmted25519.PubKey(pub)
	return cmttypes.GenesisValidator{Address: pk.Address(), PubKey: pk, Power: power, Name: name}
}

// P2PAddr is the "nodeid@host:port" of a node with this node key listening on
// listen ("tcp://host:port"), for PersistentPeers before the node exists.
func P2PAddr(nodeKey ed25519.PrivateKey, listen string) string {
	nk := p2p.NodeKey{PrivKey: cmted25519.PrivKey(nodeKey)}
	return string(nk.ID()) + "@" + strings.TrimPrefix(listen, "tcp://")
}

// DropUnadmitted closes the connections of CometBFT peers the committed state no longer
// admits (Config.AdmitPeers), and returns how many it closed. It does nothing without
// AdmitPeers, nor while the node is in its last resort (Config.AdmitPeers). A closed
// peer is not redialled by CometBFT, and its own dials are refused.
func (n *Node) DropUnadmitted() int {
	if !n.filtered {
		return 0
	}
	ids, err := n.app.AdmittedIDs()
	if err != nil {
		return 0 // new peers are refused meanwhile (the filter fails closed)
	}
	peers := n.cmt.Switch().Peers().Copy()
	if n.lastResort(ids, peers) {
		return 0
	}
	dropped := 0
	for _, p := range peers {
		if !ids[string(p.ID())] {
			n.cmt.Switch().StopPeerGracefully(p)
			dropped++
		}
	}
	return dropped
}

// HasPeer reports whether CometBFT's p2p has a connection with the node of key.
func (n *Node) HasPeer(key ed25519.PublicKey) bool {
	return n.cmt.Switch().Peers().Has(p2p.ID(abci.NodeID(key)))
}
