// Package node is a hospital's node: the consent chain's validator (node/chain), the
// libp2p host with bitswap, the key-release and share-delivery protocols (node/p2p),
// the encrypted block store, and the HTTP API (node/api). Each of the hospital's flows
// is one file:
//
//	node.go       start and close; the chain's hospital registry and connections to members
//	ingest.go     ingest: validate a FHIR Bundle, seal it, keep its key, register it
//	custody.go    threshold custody: choose the custodians, share the key k-of-r, hand
//	              out the shares (custodians fetch, pin, verify, accept), repair
//	reshare.go    re-sharing after a custodian leaves by vote or hands its custody
//	              over: deal the share again, take the new share, destroy the stale ones
//	access.go     the requester: ask the chain, obtain the key (or k custodians'
//	              shares, combined), fetch, decrypt
//	custodian.go  the custodian: key (or share) release (receipt first), and
//	              crypto-shredding with its erasure attestation
//	follow.go     the audit feed: the access log's pages, entries, live follow, reviews
//
// submit.go signs and submits txs, state.go reads committed state, keyfile.go is the
// wrapped-key file format, and health.go stops a node whose consensus or storage has
// failed.
//
// A record's key is held whole by the hospital that ingests it or, when genesis sets a
// custody of r > 1 (r capped by the members), shared k-of-r among r custodians: no
// single hospital can release it, and reads survive r-k custodians down or cut off.
//
// cmd/medledger is a thin shell over the package; only it, internal/demo, bench and
// tests import it.
package node
