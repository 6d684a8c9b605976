// Package storage keeps opaque ciphertext in an IPFS block store (boxo).
//
// A record's ciphertext stream is imported as a UnixFS file: 1 MiB chunks, raw leaves,
// a balanced DAG of CIDv1 blocks, written in batches. Blocks live in an embedded
// datastore (go-ds-leveldb on disk, or memory for tests) and are hash-checked on every
// read, so a damaged block is reported, never served — to a local reader or to a peer.
// What the chain registers is pinned; unpinning and GC remove what nothing pins.
//
// storage never imports crypto or fhir: it cannot read what it stores, and a CID is
// always of ciphertext.
package storage
