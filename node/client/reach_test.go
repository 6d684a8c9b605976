package client

import (
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"
)

// reach counts the validators a node reaches by their node IDs (a hospital's node key
// is its validator key), whether or not the node itself is a validator, and leaves out
// the one a leave would remove. A bare chain (no node ID among the validators) counts
// each node as one validator of the same power.
func TestReach(t *testing.T) {
	key := func(seed byte) ed25519.PublicKey {
		return ed25519.NewKeyFromSeed(make32(seed)).Public().(ed25519.PublicKey)
	}
	var vals []*cmttypes.Validator
	ids := map[string]string{}
	for i, name := range []string{"a", "b", "c", "d"} {
		pk := cmted25519.PubKey(key(byte(i + 1)))
		vals = append(vals, cmttypes.NewValidator(pk, 10))
		ids[name] = hex.EncodeToString(pk.Address())
	}
	ups := func(names ...string) map[string]bool {
		up := map[string]bool{}
		for _, n := range names {
			if id, ok := ids[n]; ok {
				up[id] = true
			} else {
				up[n] = true // a node that is not a validator
			}
		}
		return up
	}
	without := func(name string) func(*cmttypes.Validator) bool {
		return func(v *cmttypes.Validator) bool { return hex.EncodeToString(v.Address) == ids[name] }
	}
	for _, c := range []struct {
		name      string
		up        map[string]bool
		drop      func(*cmttypes.Validator) bool
		reachable int
		powerUp   int64
		total     int
		quorum    bool
	}{
		{"validator a, c down", ups("a", "b", "d"), nil, 3, 30, 4, true},
		{"validator a, c down, b leaves", ups("a", "b", "d"), without("b"), 2, 20, 3, false},
		{"validator a, c down, c leaves", ups("a", "b", "d"), without("c"), 3, 30, 3, true},
		{"non-validator x, c down, b leaves", ups("x", "a", "b", "d"), without("b"), 2, 20, 3, false},
		{"non-validator x, all up", ups("x", "a", "b", "c", "d"), nil, 4, 40, 4, true},
		{"validator a leaves itself, c down", ups("a", "b", "d"), without("a"), 2, 20, 3, false},
		{"bare chain: 3 nodes of 4", ups("n1", "n2", "n3"), nil, 3, 30, 4, true},
	} {
		r := reach(vals, c.up, c.drop)
		if r.Reachable != c.reachable || r.PowerUp != c.powerUp || r.Total != c.total || r.Quorum() != c.quorum {
			t.Errorf("%s: %+v (quorum %v), want %d reachable, power %d, of %d, quorum %v",
				c.name, r, r.Quorum(), c.reachable, c.powerUp, c.total, c.quorum)
		}
	}
}

func make32(b byte) []byte {
	s := make([]byte, 32)
	s[0] = b
	return s
}
