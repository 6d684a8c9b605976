// Package node wires a hospital node: its home directory, block store, libp2p host and
// (in later issues) the consent chain and HTTP API. cmd/medledger is a thin shell over
// it; nothing else imports it.
package node
