package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/sync/errgroup"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/p2p"
	"github.com/medledger/medledger/node/web"
	"github.com/medledger/medledger/storage"
)

// Version is the software version the API reports.
const Version = "0.4.0"

// Config configures a Node.
type Config struct {
	Home *home.Home
	// Logger receives the node's structured logs (default: JSON on stderr at the
	// home's log level). Nothing logged carries PHI or key material.
	Logger *slog.Logger
	// APIListener, if set, serves the API instead of listening on the home's
	// api.listen (tests and the demo pass a listener on 127.0.0.1:0).
	APIListener net.Listener
	// WrapMachine, if set, wraps the consent state machine the chain runs: fault tests
	// stall or fail it. Nil runs it as it is.
	WrapMachine func(abci.StateMachine) abci.StateMachine
	// IngestGate, if set, is the gate the node's ingests pass (tests inject a small cap
	// or a sync hook); nil makes one from the home's [ingest] config.
	IngestGate *IngestGate
	// ShareHook is a test seam, never set in production: if set, it alters each share
	// of a threshold record's key this custodian releases (its plaintext encoding,
	// crypto.Share.Bytes) before it is wrapped, so that tests make a custodian lie.
	// The bytes are secret and zeroed after the hook returns: it must not keep them.
	// Nil releases shares as they are.
	ShareHook func(share []byte)
}

// Node is a hospital's node: the consent chain's validator, the libp2p host with
// bitswap and the key-release protocol, the encrypted block store, and the HTTP API.
type Node struct {
	home    *home.Home
	id      consent.HospitalID
	log     *slog.Logger
	store   *storage.Store
	host    *p2p.Host
	members *p2p.Allowlist
	chain   *chain.Node
	api     *http.Server
	apiAddr string
	metrics *metrics
	health  *watchdog // from the chain's start on

	ctx    context.Context // ends when the node closes
	cancel context.CancelFunc
	// streams ends live event streams (Follow) when the API shuts down, so that
	// Shutdown need not wait for them to go idle.
	streams     context.Context
	stopStreams context.CancelFunc
	wg          sync.WaitGroup

	unlock    func() error       // releases the home (home.Lock)
	ingest    *IngestGate        // every ingest of this node passes it
	shareHook func(share []byte) // Config.ShareHook
	// settling maps the pending share offers (by path) an ingest or a repair round is
	// settling now to its *claim: the other leaves them alone meanwhile.
	settling sync.Map

	mu       sync.RWMutex
	registry registry // the committed hospital registry, as last read
	closed   bool
	// reshared are the records whose shares this node may have to destroy after a
	// re-sharing (reshare.go): those it saw being re-shared, and at start those
	// heldShares finds.
	reshared map[consent.RecordID]bool
	// unchecked are the records held only in epoch 0 at start, until handedOver has
	// looked at them (nil after).
	unchecked map[consent.RecordID]bool
	nodePub   ed25519.PublicKey // this node's key: its CometBFT and libp2p identity
	startedAt time.Time
}

// registry is the chain's hospital registry with the peer ID of each node key.
type registry struct {
	height    int64
	hospitals map[consent.HospitalID]consent.Hospital
	byPeer    map[peer.ID]consent.HospitalID
}

// Start opens a hospital's home and starts everything in it. The chain's genesis is
// the home's genesis.json; the hospital must be in its registry.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	h := cfg.Home
	if h == nil {
		return nil, errors.New("node: config: Home is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(h.Config.LogLevel)}))
	}
	log = log.With("hospital", h.Config.ID)
	gen, err := cmttypes.GenesisDocFromFile(h.Path(home.GenesisFile))
	if err != nil {
		return nil, fmt.Errorf("node: genesis: %w", err)
	}
	if gen.ChainID != h.Config.ChainID {
		return nil, fmt.Errorf("node: genesis is for chain %q, config.toml says %q", gen.ChainID, h.Config.ChainID)
	}
	if h.Config.Chain.P2PListen == "" {
		return nil, errors.New("node: config: chain.p2p_listen is empty (see `medledger testnet`)")
	}
	nodeKey, err := h.Keys.Node.Ed25519PrivateKey()
	if err != nil {
		return nil, err
	}

	n = &Node{home: h, id: consent.HospitalID(h.Config.ID), log: log, members: p2p.NewAllowlist(), metrics: newMetrics(),
		ingest: cfg.IngestGate, shareHook: cfg.ShareHook}
	n.reshared, n.unchecked = heldShares(h)
	n.nodePub, n.startedAt = nodeKey.Public().(ed25519.PublicKey), time.Now()
	if n.ingest == nil {
		n.ingest = NewIngestGate(h.Config.Ingest)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.streams, n.stopStreams = context.WithCancel(n.ctx)
	// Every failure below returns nil, err, which clears the named result: close
	// what was started through a copy.
	started := n
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	if n.unlock, err = h.Lock(); err != nil {
		return nil, err
	}
	if n.store, err = storage.Open(ctx, h.Path(home.BlocksDir)); err != nil {
		return nil, err
	}
	if n.host, err = p2p.New(n.ctx, p2p.Config{NodeKey: nodeKey, ListenAddrs: h.Config.ListenAddrs, Members: n.members, Store: n.store}); err != nil {
		return nil, err
	}
	var machine abci.StateMachine = abci.NewConsentMachine()
	if cfg.WrapMachine != nil {
		machine = cfg.WrapMachine(machine)
	}
	// The validator signs with the node key: one identity per hospital node for
	// CometBFT p2p, votes and libp2p (each signs its own domain-separated messages).
	n.chain, err = chain.NewNode(chain.Config{
		Home:               h.Path(home.ChainDir),
		Moniker:            h.Config.ID,
		NodeKey:            nodeKey,
		ValidatorKey:       nodeKey,
		Genesis:            gen,
		P2PListen:          h.Config.Chain.P2PListen,
		RPCListen:          h.Config.Chain.RPCListen,
		PublicQuery:        consent.PublicQuery, // the rest only through the API, which checks roles
		PersistentPeers:    h.Config.Chain.PersistentPeers,
		Machine:            machine,
		EmptyBlockInterval: h.Config.EmptyBlockInterval(),
		Logger:             log.With("component", "chain"),
		CometLogLevel:      slog.LevelError,
		AdmitPeers:         consent.AdmittedNodeKeys, // a hospital that left no longer follows the chain
	})
	if err != nil {
		return nil, err
	}
	n.health = newWatchdog(n.chainStatus, h.Config.EmptyBlockInterval(), log, n.metrics)
	if err := n.refreshRegistry(); err != nil {
		return nil, err
	}
	if _, ok := n.hospital(n.id); !ok {
		return nil, fmt.Errorf("node: hospital %q is not in the chain's registry", n.id)
	}
	n.host.ServeKeyRelease(n)
	n.host.ServeCustody(n)
	if err := n.chain.Start(); err != nil {
		return nil, err
	}
	if err := n.startAPI(cfg.APIListener); err != nil {
		return nil, err
	}
	n.wg.Add(5)
	go n.followRegistry()
	go n.reshareLoop()
	go n.repairLoop()
	go n.watch()
	go n.probeStorage([]string{h.Path(home.DEKDir), h.Path(home.BlocksDir), h.Path(home.ChainDir, "data")})
	log.Info("node started", "chain_id", gen.ChainID, "peer", n.host.ID().String(), "api", n.apiAddr)
	return n, nil
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

func (n *Node) startAPI(l net.Listener) error {
	if l == nil {
		if n.home.Config.API.Listen == "" {
			return nil
		}
		var err error
		if l, err = net.Listen("tcp", n.home.Config.API.Listen); err != nil {
			return fmt.Errorf("node: api: %w", err)
		}
	}
	tokens := make([]api.Token, 0, len(n.home.Config.API.Tokens))
	for _, t := range n.home.Config.API.Tokens {
		tokens = append(tokens, api.Token{Role: api.Role(t.Role), SHA256: t.SHA256})
	}
	limits := apiLimits(&n.home.Config.API)
	if err := limits.Validate(); err != nil {
		l.Close()
		return fmt.Errorf("node: config: %w", err)
	}
	// The API and the web pages charge the same rate limits on consent operations.
	rate, err := api.NewRateLimits(limits, nil)
	if err != nil {
		l.Close()
		return err
	}
	handler, err := api.New(n, api.Config{Tokens: tokens, Logger: n.log.With("component", "api"), Limits: limits, Rate: rate})
	if err != nil {
		l.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.metrics.handler())
	mux.Handle("/", handler)
	if err := web.Mount(mux, n, web.Config{API: handler, Tokens: tokens, Logger: n.log.With("component", "web"), Rate: rate,
		RPC: n.home.Config.Chain.RPCListen, GenesisFile: n.home.Path(home.GenesisFile), PublicOrigin: n.home.Config.Web.PublicOrigin}); err != nil {
		l.Close()
		return err
	}
	// Timeouts, and a connection limit inside the file-descriptor budget so that no
	// client can take the descriptors consensus needs (api.NewServer).
	srv, limited, err := api.NewServer(mux, l, limits)
	if err != nil {
		l.Close()
		return err
	}
	n.api, l = srv, limited
	n.log.Info("api limits", "max_conns", api.ConnLimit(limits.MaxConns), "request_timeout", limits.RequestTimeout, "read_timeout", limits.ReadTimeout)
	n.api.RegisterOnShutdown(n.stopStreams)
	n.apiAddr = "http://" + l.Addr().String()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.api.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("api stopped", "err", err)
			n.failStop(fmt.Errorf("api: %w", err))
		}
	}()
	return nil
}

// APIURL is the API's base URL ("" if the API is off).
func (n *Node) APIURL() string { return n.apiAddr }

// ID is this node's hospital ID.
func (n *Node) ID() consent.HospitalID { return n.id }

// Chain is the node's consent-chain validator.
func (n *Node) Chain() *chain.Node { return n.chain }

// Host is the node's libp2p host.
func (n *Node) Host() *p2p.Host { return n.host }

// Store is the node's block store.
func (n *Node) Store() *storage.Store { return n.store }

// Home is the node's home.
func (n *Node) Home() *home.Home { return n.home }

// Close shuts the node down: the API (letting requests finish for a few seconds),
// the chain, the host and the store.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	if n.health != nil {
		n.health.close() // what the shutdown stops is no fault
	}
	var errs []error
	if n.api != nil {
		errs = append(errs, n.shutdownAPI())
	}
	n.cancel()
	n.wg.Wait()
	if n.chain != nil {
		errs = append(errs, n.chain.Stop())
	}
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.unlock != nil {
		errs = append(errs, n.unlock())
	}
	n.log.Info("node stopped")
	return errors.Join(errs...)
}

// shutdownAPI lets requests finish for a few seconds; a failed node's cannot (what
// they wait for will not commit), so it cuts them after a moment.
func (n *Node) shutdownAPI() error {
	grace := 5 * time.Second
	failed := n.health != nil && n.health.fatalErr() != nil
	if failed {
		grace = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := n.api.Shutdown(ctx)
	if failed && errors.Is(err, context.DeadlineExceeded) {
		return n.api.Close()
	}
	return err
}

// followRegistry keeps the allowlist and connections in step with the chain's
// hospital registry, re-reading it at each new height (woken by the chain's event bus);
// it also destroys the keys of records erased on the chain (see shredErased). Members
// that cannot be reached are dialed again every reconnectInterval.
func (n *Node) followRegistry() {
	defer n.wg.Done()
	// Erasures are looked for from the start of the log on every start: destroying a
	// key already destroyed is a no-op.
	var erasedFrom uint64
	n.onHeights(reconnectInterval, func() {
		n.mu.RLock()
		last := n.registry.height
		n.mu.RUnlock()
		if n.chain.Height() != last {
			if err := n.refreshRegistry(); err != nil {
				n.log.Warn("registry refresh failed", "err", err)
			}
			if next, err := n.shredErased(n.ctx, erasedFrom); err != nil {
				n.log.Warn("erasure check failed", "err", err)
			} else {
				erasedFrom = next
			}
		}
		// A peer that dialled in just before the height that ended its grace goes at
		// the next tick, not the next height.
		n.chain.DropUnadmitted()
		n.connectMembers()
	})
}

// onHeights calls f after each new height of the chain and every interval (the ticker
// alone once the chain has stopped), until the node closes.
func (n *Node) onHeights(interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	heights := n.chain.NewHeight()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-heights:
			heights = n.chain.NewHeight()
		case <-t.C:
		}
		if heights != nil && isClosed(heights) {
			heights = nil // the chain stopped: no height will follow
		}
		f()
	}
}

// reconnectInterval is how often a node dials the members it is not connected to.
const reconnectInterval = 250 * time.Millisecond

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// repairLoop offers again, every repairInterval, the shares this hospital could not
// hand out at ingest (see repairCustody).
func (n *Node) repairLoop() {
	defer n.wg.Done()
	t := time.NewTicker(repairInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.repairCustody(n.ctx)
		}
	}
}

// refreshRegistry reads the committed hospital registry and feeds the allowlist.
func (n *Node) refreshRegistry() error {
	list, height, err := readState(n, consent.Hospitals)
	if err != nil {
		return err
	}
	r := registry{height: height, hospitals: map[consent.HospitalID]consent.Hospital{}, byPeer: map[peer.ID]consent.HospitalID{}}
	peers := make([]peer.ID, 0, len(list))
	for _, h := range list {
		r.hospitals[h.ID] = h
		p, err := p2p.PeerID(ed25519.PublicKey(h.Node))
		if err != nil {
			continue // the chain validated the key; a bad one just cannot connect
		}
		r.byPeer[p] = h.ID
		if h.ID != n.id {
			peers = append(peers, p)
		}
	}
	n.mu.Lock()
	old := n.registry
	if r.height < old.height { // a concurrent refresh read a later registry: keep it
		n.mu.Unlock()
		return nil
	}
	n.members.Set(peers)
	n.registry = r
	n.mu.Unlock()
	for p, id := range old.byPeer {
		if _, still := r.byPeer[p]; !still && id != n.id {
			n.host.Disconnect(p) // a hospital that left: its open connections end too
		}
	}
	// Its CometBFT peer goes once its votes no longer count (consent.ValidatorGrace;
	// followRegistry drops the peers no longer admitted), and is refused when it dials
	// again.
	return nil
}

// chainStatus is the chain's status with the validator set as the chain's state keeps
// it: CometBFT's node counts the genesis validators, so after the others left, the one
// validator left, alone with no peers, would count as cut off for good. It counts as
// one only if it is this node; any other node needs peers (a member that is not the
// validator, or one that left, is cut off without them).
func (n *Node) chainStatus() chain.Status {
	s := n.chain.Status()
	keys, _, err := readState(n, consent.ValidatorKeys)
	switch {
	case err != nil || len(keys) == 0: // the genesis count: it errs towards needing peers
	case len(keys) == 1 && bytes.Equal(keys[0], n.nodePub):
		s.Validators = 1
	default:
		s.Validators = max(len(keys), 2)
	}
	return s
}

// maxDials bounds how many members connectMembers dials at once.
const maxDials = 8

// connectMembers dials members this host has no connection with, at their
// registered addresses, up to maxDials at once, and returns when every dial has ended.
func (n *Node) connectMembers() {
	n.mu.RLock()
	hs := make([]consent.Hospital, 0, len(n.registry.hospitals))
	for _, h := range n.registry.hospitals {
		hs = append(hs, h)
	}
	n.mu.RUnlock()
	var dials errgroup.Group
	dials.SetLimit(maxDials)
	for _, h := range hs {
		if h.ID == n.id || len(h.Addrs) == 0 {
			continue
		}
		dials.Go(func() error {
			n.connect(n.ctx, h) // a member that cannot be reached now is dialed again next round
			return nil
		})
	}
	dials.Wait()
}

// connect dials a member hospital's node if not connected.
func (n *Node) connect(ctx context.Context, h consent.Hospital) error {
	p, err := p2p.PeerID(ed25519.PublicKey(h.Node))
	if err != nil {
		return err
	}
	if n.host.ConnectedTo(p) {
		return nil
	}
	ai := peer.AddrInfo{ID: p}
	for _, a := range h.Addrs {
		if m, err := ma.NewMultiaddr(a); err == nil {
			ai.Addrs = append(ai.Addrs, m)
		}
	}
	if len(ai.Addrs) == 0 {
		return fmt.Errorf("node: hospital %s has no usable address", h.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return n.host.Connect(ctx, ai)
}

func (n *Node) hospital(id consent.HospitalID) (consent.Hospital, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	h, ok := n.registry.hospitals[id]
	return h, ok
}

// Members are the hospital IDs of the chain's registry, sorted.
func (n *Node) Members() []consent.HospitalID {
	n.mu.RLock()
	defer n.mu.RUnlock()
	ids := make([]consent.HospitalID, 0, len(n.registry.hospitals))
	for id := range n.registry.hospitals {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// VoteHospital casts this hospital's vote to register h as a member; h is registered
// once members holding ≥ 2/3 of the power have voted for the same h. Every node's
// allowlist then admits h's node.
func (n *Node) VoteHospital(ctx context.Context, h consent.Hospital) (*consent.Committed, error) {
	c, err := n.submit(ctx, consent.Body{Kind: consent.KindProposeHospital, ProposeHospital: &h})
	return c, err
}

// VoteLeave casts this hospital's vote that member h leave the consortium; h leaves
// once members holding ≥ 2/3 of the power have voted so. Then every node's allowlist
// drops h, the validator set loses it, and the threshold records it held are re-shared
// (reshare.go).
func (n *Node) VoteLeave(ctx context.Context, h consent.HospitalID) (*consent.Committed, error) {
	return n.submit(ctx, consent.Body{Kind: consent.KindLeave, Leave: &consent.Leave{Hospital: h}})
}

// HandOver hands this hospital's custody of threshold record id over to member to (or,
// if to is empty, to a member the chain chooses): the record is re-shared to its other
// custodians and that member (reshare.go); this hospital keeps and releases its share
// until the new sharing is in force, then destroys it and unpins the ciphertext.
func (n *Node) HandOver(ctx context.Context, id consent.RecordID, to consent.HospitalID) (*consent.Committed, error) {
	return n.submit(ctx, consent.Body{Kind: consent.KindHandOver, HandOver: &consent.HandOver{Custodian: n.id, Record: id, To: to}})
}

// Identity names this node's hospital and chain.
func (n *Node) Identity() api.Identity {
	return api.Identity{Hospital: n.id, Name: n.home.Config.Name, ChainID: n.home.Config.ChainID, Version: Version}
}
