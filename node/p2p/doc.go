// Package p2p is a hospital node's libp2p side: a host whose identity is the hospital's
// Ed25519 node key (TCP and QUIC), bitswap over it, and the gates that keep it a closed
// consortium.
//
// Two gates, both fed from one Allowlist that the chain's hospital registry will keep:
// the connection gater admits only members (and explicit bootstrap peers), and bitswap
// serves blocks only to members. No public DHT: wants go to connected peers only, and a
// record's custodians are named by the chain, so the requester connects to them first.
// Blocks are ciphertext, hash-checked on receipt and on read.
//
// Two request-response protocols ride on the host, in the go-libp2p ping model
// (versioned ID, resource scope, deadline, maximum message size, Reset on error):
// key release (KeyReleaseID: a grant in, a wrapped key or share out) and share delivery
// for threshold custody (CustodyID: a wrapped share in, custody accepted out).
package p2p
