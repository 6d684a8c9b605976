// Package chain runs the consent chain: a CometBFT v0.40 validator in this process
// (Node) over an ABCI++ adapter (App) that drives a deterministic StateMachine — the
// consent machine (NewConsentMachine), or in tests a smaller one. The adapter does not
// know what the txs mean; the consent package does. The machine sees state through
// consent's Reader and Store and answers with consent's Result, Event and Attr: one
// set of types from the machine to CometBFT.
//
// # Execution
//
// The App keeps the state machine's state in its own leveldb (data/app.db in the
// CometBFT home). FinalizeBlock runs DeliverTx for every tx of the block, in order, over
// an in-memory overlay (consent.Overlay) on the committed state; the machine buffers
// each tx's writes and applies them to the block's overlay only if it accepts the tx,
// so a rejected tx changes nothing. EndBlock runs last, over the block's overlay. Reads see the committed state plus the
// block's earlier writes. Commit writes the block's writes, the height and the app hash
// in one leveldb batch with sync=true: after a crash the store holds a whole height or
// none of it, and Info tells CometBFT's handshake which blocks to replay. InitChain's
// genesis writes wait in memory and are committed with the first block, so a crash
// before it leaves an empty store and InitChain runs again.
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
// The node gives each ABCI connection its own lock (CometBFT's default is one lock over
// all of them), so CheckTx and Query run while FinalizeBlock does: a node checks the
// signatures of new txs on one core while it executes the block on another. The App
// orders InitChain, FinalizeBlock and Commit among themselves; Commit alone changes
// the committed state, holding a write lock, so every CheckTx and Query sees one whole
// height (the one a Query reports).
//
// # Node
//
// NewNode tunes CometBFT for a LAN (timeout_commit 100 ms, peer_gossip_sleep_duration
// 10 ms, timeout_propose 1 s, timeout_prevote and timeout_precommit 200 ms, PEX off,
// duplicate IPs allowed, mempool of 5,000 txs, kv tx indexer, which indexes only the
// event attributes the machine marks Index). The node key is the hospital's node key;
// the validator key signs votes, and its last-signed state (data/priv_validator_state.json)
// prevents double signing across restarts; neither key is written to disk here.
// A validator restarting behind the others block-syncs, which CometBFT starts only
// 3 s after the node (peerConnWait): a restart takes about 3 s to catch up.
//
// Node.SubmitTx waits for commits through one event-bus subscription per node,
// dispatched by tx hash (the event bus matches every event against every
// subscription, so one per waiting tx made each commit cost O(txs in flight)).
// Instead of a StateMachine, a Node may run a raw ABCI application (Config.App), e.g.
// CometBFT's kvstore as a yardstick for benchmarks.
package chain
