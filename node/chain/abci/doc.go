// Package abci is the ABCI++ adapter (App) between CometBFT and a deterministic
// StateMachine — the consent machine (NewConsentMachine), or in tests a smaller one.
// It does not know what the txs mean; the consent package does. The machine sees state
// through consent's Reader and Store and answers with consent's Result, Event and Attr:
// one set of types from the machine to CometBFT. It does not run CometBFT (package
// chain does, for a node), so a verifier that replays the chain (node/auditor) links
// no networking.
//
// # Execution
//
// The App keeps the state machine's state in its own leveldb (data/app.db in the
// CometBFT home). FinalizeBlock runs DeliverTx for every tx of the block, in order, over
// an in-memory overlay (consent.Overlay) on the committed state; the machine buffers
// each tx's writes and applies them to the block's overlay only if it accepts the tx,
// so a rejected tx changes nothing. EndBlock runs last, over the block's overlay.
// Reads see the committed state plus the block's earlier writes. Commit writes the
// block's writes, the height and the app hash in one leveldb batch with sync=true:
// after a crash the store holds a whole height or none of it, and Info tells
// CometBFT's handshake which blocks to replay. InitChain's genesis writes wait in
// memory and are committed with the first block, so a crash before it leaves an empty
// store and InitChain runs again.
//
// # App hash
//
// Each height's app hash chains its writes onto the previous hash:
//
//	hash(h) = SHA-256( hash(h-1)
//	                 || for each key the height wrote, in ascending byte order:
//	                        len(key) as 4 bytes big endian || key
//	                        || 0x00 (set) or 0x01 (delete)
//	                        || len(value) as 4 bytes big endian || value   (empty for a delete)
//	                 || h as 8 bytes big endian )
//
// where a key's write is its last one in the height (a delete is recorded even if the key
// was absent), hash(genesis) uses an empty previous hash and the height before the
// initial height (0), and "the writes of height 1" exclude the genesis writes, which
// hash(genesis) covers. Two nodes with the same hash at a height made the same writes
// at every height up to it, so they hold the same state. The hash after each height is
// kept (App.AppHashAt) for audits and tests.
//
// # Errors
//
// A tx the machine rejects gets a code and a log (the machine owns the codes). A storage
// failure, a write the adapter cannot store (an empty key), an InitChain or EndBlock
// error is returned from the ABCI method, which halts the node: never log and continue.
// A storage error seen by the machine halts the node even if the machine swallowed it.
//
// # Determinism
//
// The adapter iterates sorted slices, never Go maps, and passes the machine the block's
// BFT time, never the wall clock. CheckTx and Query run against the latest committed
// state (before the first block: the genesis state InitChain wrote).
//
// # Concurrency
//
// The node (package chain) gives each ABCI connection its own lock (CometBFT's default
// is one lock over all of them), so CheckTx and Query run while FinalizeBlock does: a
// node checks the
// signatures of new txs on one core while it executes the block on another. The App
// orders InitChain, FinalizeBlock and Commit among themselves; Commit alone changes
// the committed state, holding a write lock, so every CheckTx and Query sees one whole
// height (the one a Query reports).
package abci
