package p2p

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/bitswap/tracer"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/medledger/medledger/storage"
)

// DefaultListenAddrs listen on loopback only, on ports the system picks.
var DefaultListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// Config configures a Host.
type Config struct {
	NodeKey     ed25519.PrivateKey // the hospital's node key: the host's identity
	ListenAddrs []string           // default DefaultListenAddrs
	Members     *Allowlist         // peers that may connect and be served blocks
	Bootstrap   []peer.ID          // peers that may connect but are not served blocks
	Store       *storage.Store     // where blocks are served from and fetched into
	Tracer      tracer.Tracer      // optional: sees every bitswap message (audits, tests)
}

// Validate fills defaults and rejects what cannot work.
func (c *Config) Validate() error {
	if len(c.NodeKey) != ed25519.PrivateKeySize {
		return errors.New("p2p: config: NodeKey must be an Ed25519 private key")
	}
	if c.Store == nil {
		return errors.New("p2p: config: Store is required")
	}
	if c.Members == nil {
		c.Members = NewAllowlist()
	}
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = DefaultListenAddrs
	}
	return nil
}

// Host is a running libp2p host with bitswap.
type Host struct {
	host    host.Host
	bitswap *bitswap.Bitswap
	dag     ipld.DAGService
	members *Allowlist
	// life ends when the host closes (or New's ctx ends): the protocol handlers'
	// contexts are bound to it.
	life context.Context
	stop context.CancelFunc
}

// New starts a host.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sk, err := p2pcrypto.UnmarshalEd25519PrivateKey(cfg.NodeKey)
	if err != nil {
		return nil, fmt.Errorf("p2p: node key: %w", err)
	}
	g := &gater{allow: cfg.Members, bootstrap: map[peer.ID]bool{}}
	for _, p := range cfg.Bootstrap {
		g.bootstrap[p] = true
	}
	h, err := libp2p.New(
		libp2p.Identity(sk),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ConnectionGater(g),
		libp2p.DisableRelay(),
		libp2p.Ping(false),
	)
	if err != nil {
		return nil, fmt.Errorf("p2p: start host: %w", err)
	}
	opts := []bitswap.Option{
		bitswap.WithPeerBlockRequestFilter(func(p peer.ID, _ cid.Cid) bool { return cfg.Members.Allowed(p) }),
	}
	if cfg.Tracer != nil {
		opts = append(opts, bitswap.WithTracer(cfg.Tracer))
	}
	// A nil content router: wants go to connected peers only (closed consortium).
	bs := bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, cfg.Store.Blockstore(), opts...)
	life, stop := context.WithCancel(ctx)
	return &Host{host: h, bitswap: bs, dag: cfg.Store.DAG(bs), members: cfg.Members, life: life, stop: stop}, nil
}

// ID is the host's peer ID.
func (h *Host) ID() peer.ID { return h.host.ID() }

// AddrInfo is how other hosts reach this one.
func (h *Host) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: h.host.ID(), Addrs: h.host.Addrs()}
}

// Connect connects to a peer; the gater refuses non-members.
func (h *Host) Connect(ctx context.Context, pi peer.AddrInfo) error {
	if err := h.host.Connect(ctx, pi); err != nil {
		return fmt.Errorf("p2p: connect %s: %w", pi.ID, err)
	}
	return nil
}

// ConnectedTo reports whether the host has a live connection with p.
func (h *Host) ConnectedTo(p peer.ID) bool {
	return h.host.Network().Connectedness(p) == network.Connected
}

// Disconnect closes every connection with p, so that the next exchange dials afresh
// (a peer that restarted leaves connections that fail on first use).
func (h *Host) Disconnect(p peer.ID) { _ = h.host.Network().ClosePeer(p) }

// OpenStream opens a stream to p for protocol id (for protocols built elsewhere, and
// tests).
func (h *Host) OpenStream(ctx context.Context, p peer.ID, id protocol.ID) (network.Stream, error) {
	return h.host.NewStream(ctx, p, id)
}

// Fetch fetches the file rooted at c from connected peers into the local store (one
// bitswap session for the whole graph) and returns a reader of it. Bytes are only
// as trustworthy as their CID: every block is hash-checked.
func (h *Host) Fetch(ctx context.Context, c cid.Cid) (storage.Reader, error) {
	if err := h.FetchAll(ctx, c); err != nil {
		return nil, err
	}
	return storage.NewReader(ctx, h.dag, c)
}

// FetchAll fetches every block of the file rooted at c from connected peers into the
// local store (one bitswap session), each block hash-checked.
func (h *Host) FetchAll(ctx context.Context, c cid.Cid) error {
	if err := merkledag.FetchGraph(ctx, c, h.dag); err != nil {
		return fmt.Errorf("p2p: fetch %s: %w", c, err)
	}
	return nil
}

// Close ends the protocol handlers' contexts and stops bitswap and the host.
func (h *Host) Close() error {
	h.stop()
	return errors.Join(h.bitswap.Close(), h.host.Close())
}
