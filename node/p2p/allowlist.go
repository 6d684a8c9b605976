package p2p

import (
	"crypto/ed25519"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Allowlist is the set of member peers. It is safe for concurrent use; Set replaces
// the whole set at once (the chain feeds it after each committed registry change).
type Allowlist struct {
	mu      sync.RWMutex
	members map[peer.ID]bool
}

// NewAllowlist returns an allowlist of the given members.
func NewAllowlist(members ...peer.ID) *Allowlist {
	a := &Allowlist{}
	a.Set(members)
	return a
}

// Set replaces the members.
func (a *Allowlist) Set(members []peer.ID) {
	m := make(map[peer.ID]bool, len(members))
	for _, p := range members {
		m[p] = true
	}
	a.mu.Lock()
	a.members = m
	a.mu.Unlock()
}

// Allowed reports whether p is a member.
func (a *Allowlist) Allowed(p peer.ID) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.members[p]
}

// PeerID is the libp2p peer ID of a hospital's node key.
func PeerID(nodeKey ed25519.PublicKey) (peer.ID, error) {
	pk, err := p2pcrypto.UnmarshalEd25519PublicKey(nodeKey)
	if err != nil {
		return "", fmt.Errorf("p2p: node key: %w", err)
	}
	return peer.IDFromPublicKey(pk)
}

// gater admits connections to and from members and bootstrap peers only. Inbound
// connections are judged once the peer has proven its key (InterceptSecured).
type gater struct {
	allow     *Allowlist
	bootstrap map[peer.ID]bool
}

var _ connmgr.ConnectionGater = (*gater)(nil)

func (g *gater) admits(p peer.ID) bool { return g.allow.Allowed(p) || g.bootstrap[p] }

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return g.admits(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.admits(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.admits(p)
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
