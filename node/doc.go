// Package node is a hospital's node: the consent chain's validator (node/chain), the
// libp2p host with bitswap and the key-release protocol (node/p2p), the encrypted block
// store, and the HTTP API (node/api). Each of the hospital's flows is one file:
//
//	node.go       start and close; the chain's hospital registry and connections to members
//	ingest.go     ingest: validate a FHIR Bundle, seal it, keep its key, register it
//	access.go     the requester: ask the chain, obtain the key, fetch, decrypt
//	custodian.go  the custodian: key release (receipt first) and crypto-shredding
//	follow.go     the audit feed: the access log's pages, entries, live follow, reviews
//
// submit.go signs and submits txs, state.go reads committed state, keyfile.go is the
// wrapped-key file format, and health.go stops a node whose consensus or storage has
// failed. cmd/medledger is a thin shell over the package; only it, internal/demo, bench
// and tests import it.
package node
