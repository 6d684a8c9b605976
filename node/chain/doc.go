// Package chain runs the consent chain: a CometBFT v0.40 validator in this process
// (Node) over the ABCI++ adapter of package abci, which drives the consent machine
// (abci.NewConsentMachine) or, in tests, a smaller state machine.
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
// subscription, so one per waiting tx made each commit cost O(txs in flight)), and
// Node.WaitHeight and Node.NewHeight learn of new heights through another (NewBlockHeader
// events): nothing polls for a height.
package chain
