package abci

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/medledger/medledger/consent"
)

// readCacheBytes bounds the committed values an App keeps in memory.
const readCacheBytes = 16 << 20

// AppVersion is the application protocol version reported to CometBFT.
const AppVersion uint64 = 1

// ErrClosed is returned by an App used after Close.
var ErrClosed = errors.New("abci: app is closed")

// App is the ABCI++ adapter between CometBFT and a StateMachine. It keeps the state in
// its own leveldb; see the package documentation for the execution model and the app
// hash. Its methods are safe for concurrent use: a node calls CheckTx (its mempool
// connection) and Query while FinalizeBlock runs (its consensus connection), so that
// checking signatures of new txs on one core does not hold up the block on the other.
// CheckTx and Query read the committed state, which only Commit changes.
type App struct {
	abcitypes.BaseApplication

	machine StateMachine
	log     *slog.Logger
	// peers, if set, are the node keys CometBFT's p2p admits, and alsoAdmit the node IDs
	// it admits besides (AdmitPeers).
	peers     PeerKeys
	alsoAdmit func(id string) bool

	// cons orders the consensus connection's calls (InitChain, FinalizeBlock, Commit)
	// and guards pending. It is taken before mu.
	cons sync.Mutex

	// mu guards the committed state: the store's contents, height, hash, genesis and
	// closed. Readers hold it shared; Commit, InitChain and Close hold it alone.
	mu     sync.RWMutex
	db     store
	cache  *readCache // over db
	closed bool
	height int64  // last committed height; 0 before the first Commit
	hash   []byte // app hash at height (nil before the first Commit)

	// genesis holds InitChain's writes until the first Commit, so a crash before it
	// leaves the store empty and CometBFT calls InitChain again.
	genesis *genesisState

	// pending is the finalized block waiting for Commit (guarded by cons).
	pending *pendingBlock

	// report learns of every store failure and every error of a consensus call
	// (which halts consensus): ReportFaults; nil for an App outside a node.
	report func(error)

	// gate decides which query paths a caller other than the node itself
	// (CometBFT's RPC) may ask: GateQueries; nil for an App outside a node, which
	// answers every query.
	gate func(path string) bool
}

type pendingBlock struct {
	height int64
	writes []consent.Write // in ascending key order
	hash   []byte
	parts  HashParts
}

// genesisState is what InitChain wrote, waiting for the first Commit.
type genesisState struct {
	writes []consent.Write // in ascending key order
	hash   []byte
	parts  HashParts
}

// on returns an overlay holding the genesis writes on top of v: the state before the
// first block.
func (g *genesisState) on(v *dbView) *consent.Overlay {
	o := consent.NewOverlay(v)
	for _, w := range g.writes {
		if w.Deleted {
			_ = o.Delete([]byte(w.Key)) // keys InitChain wrote once: never empty
		} else {
			_ = o.Set([]byte(w.Key), w.Value)
		}
	}
	return o
}

// commitment is the machine's commitment (Committer) over r, or nil.
func (a *App) commitment(r consent.Reader) ([]byte, error) {
	if c, ok := a.machine.(Committer); ok {
		return c.Commitment(r)
	}
	return nil, nil
}

// HashPartsAt returns what the app hash after a committed height is made of (nil, nil
// if that height is not committed here).
func (a *App) HashPartsAt(height int64) (*HashParts, error) {
	b, err := a.db.Get(partsKey(height), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("abci: app store: read hash parts at %d: %w", height, err)
	}
	var p HashParts
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("abci: app store: hash parts at %d: %w", height, err)
	}
	return &p, nil
}

// HashPartsPath + height is the query for HashPartsAt, answered by the adapter for
// any state machine.
const HashPartsPath = "/chain/hashparts/"

func (a *App) queryHashParts(height string) (*abcitypes.ResponseQuery, error) {
	h, err := strconv.ParseInt(height, 10, 64)
	if err != nil || h < 0 {
		return &abcitypes.ResponseQuery{Code: 1, Log: "height must be a non-negative integer", Height: a.height}, nil
	}
	p, err := a.HashPartsAt(h)
	if err != nil {
		a.fault(err)
		return nil, fmt.Errorf("abci: Query: %w", err)
	}
	if p == nil {
		return &abcitypes.ResponseQuery{Code: 1, Log: fmt.Sprintf("height %d is not committed here", h), Height: a.height}, nil
	}
	v, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return &abcitypes.ResponseQuery{Value: v, Height: a.height}, nil
}

// putParts stores the hash parts of the app hash after height (p.Height is below it
// when height had no txs: see finalizeIdle).
func putParts(b *leveldb.Batch, height int64, p HashParts) error {
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("abci: hash parts: %w", err)
	}
	b.Put(partsKey(height), v)
	return nil
}

var _ abcitypes.Application = (*App)(nil)

// NewApp opens (or creates) the app store in dir. logger may be nil.
func NewApp(dir string, m StateMachine, logger *slog.Logger) (*App, error) {
	if m == nil {
		return nil, errors.New("abci: NewApp: a StateMachine is required")
	}
	db, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	a, err := newApp(db, m, logger)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return a, nil
}

func newApp(db store, m StateMachine, logger *slog.Logger) (*App, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	height, hash, err := loadLast(db)
	if err != nil {
		return nil, err
	}
	return &App{machine: m, log: logger, db: db, cache: newReadCache(readCacheBytes), height: height, hash: hash}, nil
}

// Close closes the app store. Later calls fail with ErrClosed.
func (a *App) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	return a.db.Close()
}

// Height returns the last committed height (0 before the first block).
func (a *App) Height() int64 {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.height
}

// AppHash returns the app hash at the last committed height.
func (a *App) AppHash() []byte {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return bytes.Clone(a.hash)
}

// LastCommitted returns the last committed height and its app hash, read together.
func (a *App) LastCommitted() (int64, []byte) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.height, bytes.Clone(a.hash)
}

// AppHashAt returns the app hash after the given committed height, or nil, nil if that
// height is not committed here.
func (a *App) AppHashAt(height int64) ([]byte, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return nil, ErrClosed
	}
	if height < 1 || height > a.height {
		return nil, nil
	}
	h, err := a.db.Get(hashKey(height), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("abci: app store: read app hash at %d: %w", height, err)
	}
	return h, nil
}

// Info implements abcitypes.Application: the last committed height and app hash, from
// which CometBFT's handshake replays the blocks the app lacks.
func (a *App) Info(context.Context, *abcitypes.RequestInfo) (*abcitypes.ResponseInfo, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return nil, ErrClosed
	}
	return &abcitypes.ResponseInfo{
		Version:          version.ABCIVersion,
		AppVersion:       AppVersion,
		LastBlockHeight:  a.height,
		LastBlockAppHash: bytes.Clone(a.hash),
	}, nil
}

// InitChain implements abcitypes.Application. The genesis writes are committed with the
// first block.
func (a *App) InitChain(_ context.Context, req *abcitypes.RequestInitChain) (_ *abcitypes.ResponseInitChain, err error) {
	defer a.halted(&err)
	a.cons.Lock()
	defer a.cons.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	if a.height != 0 {
		return nil, fmt.Errorf("abci: InitChain on a store already at height %d", a.height)
	}
	height := req.InitialHeight - 1
	base := &dbView{db: a.db, cache: a.cache}
	w := consent.NewOverlay(base)
	if err := a.machine.InitChain(w, req.ChainId, req.AppStateBytes, block(height, req.Time)); err != nil {
		return nil, fmt.Errorf("abci: InitChain: %w", err)
	}
	vals := make([]consent.ValidatorUpdate, len(req.Validators))
	for i, v := range req.Validators {
		vals[i] = consent.ValidatorUpdate{Node: v.PubKey.GetEd25519(), Power: v.Power}
	}
	if err := a.machine.InitValidators(w, vals); err != nil {
		return nil, fmt.Errorf("abci: InitChain: validators: %w", err)
	}
	if err := firstErr(base.err, w.Err()); err != nil {
		return nil, fmt.Errorf("abci: InitChain: %w", err)
	}
	commitment, err := a.commitment(w)
	if err := firstErr(base.err, w.Err(), err); err != nil {
		return nil, fmt.Errorf("abci: InitChain: commitment: %w", err)
	}
	writes := w.Writes()
	hash := appHash(nil, writes, height, commitment)
	a.genesis = &genesisState{writes: writes, hash: hash,
		parts: HashParts{Height: height, Digest: writesDigest(writes), Commitment: commitment, AppHash: hash}}
	a.pending = nil
	return &abcitypes.ResponseInitChain{AppHash: bytes.Clone(hash)}, nil
}

// block is what the state machine knows of a block.
func block(height int64, t time.Time) consent.Block {
	return consent.Block{Height: consent.Height(height), Time: t}
}

// ReportFaults makes a pass report every store failure it meets and every error of a
// consensus call (InitChain, FinalizeBlock, Commit), on which CometBFT halts. A node
// calls it before CometBFT uses the app.
func (a *App) ReportFaults(report func(error)) { a.report = report }

func (a *App) fault(err error) {
	if err != nil && a.report != nil {
		a.report(err)
	}
}

// halted reports *err, an error of a consensus call (InitChain, FinalizeBlock, Commit),
// as the node's fault unless the app was closed: CometBFT halts on it.
func (a *App) halted(err *error) {
	if *err != nil && !errors.Is(*err, ErrClosed) {
		a.fault(*err)
	}
}

// CheckTx implements abcitypes.Application, against the latest committed state.
func (a *App) CheckTx(_ context.Context, req *abcitypes.RequestCheckTx) (*abcitypes.ResponseCheckTx, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return nil, ErrClosed
	}
	r, v := a.committed()
	res, err := a.machine.CheckTx(r, req.Tx)
	a.fault(v.err) // a store failure; the machine's own errors are its business
	if err := firstErr(v.err, err); err != nil {
		return nil, fmt.Errorf("abci: CheckTx: %w", err)
	}
	return &abcitypes.ResponseCheckTx{Code: uint32(res.Code), Log: res.Log, Data: res.Value}, nil
}

// committed is the state CheckTx and Query read: the store, or before the first block,
// the genesis state InitChain wrote (which waits to be committed with the first block;
// without it every tx would be checked against an empty state). v is the store under
// it, whose errors halt the node.
func (a *App) committed() (r consent.Reader, v *dbView) {
	v = &dbView{db: a.db, cache: a.cache}
	if a.height == 0 && a.genesis != nil {
		return a.genesis.on(v), v
	}
	return v, v
}

// Query implements abcitypes.Application, against the latest committed state. In a
// Node, a path that is not public is refused unless ctx marks the read as the node's
// own (see publicquery.go).
func (a *App) Query(ctx context.Context, req *abcitypes.RequestQuery) (*abcitypes.ResponseQuery, error) {
	if rest, ok := strings.CutPrefix(req.Path, PeerFilterPath); ok && a.peers != nil {
		return a.filterPeer(rest), nil
	}
	if refusal := a.refuseQuery(ctx, req.Path); refusal != nil {
		return refusal, nil
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return nil, ErrClosed
	}
	if hs, ok := strings.CutPrefix(req.Path, HashPartsPath); ok {
		return a.queryHashParts(hs)
	}
	r, v := a.committed()
	res, err := a.machine.Query(r, req.Path, req.Data)
	a.fault(v.err) // a store failure; the machine's own errors are its business
	if err := firstErr(v.err, err); err != nil {
		return nil, fmt.Errorf("abci: Query: %w", err)
	}
	return &abcitypes.ResponseQuery{
		Code:   uint32(res.Code),
		Log:    res.Log,
		Key:    req.Data,
		Value:  res.Value,
		Height: a.height,
	}, nil
}

// StaleBlockTime bounds how far a block's time may lag the proposer's clock when it
// carries txs. CometBFT's block time is the median time of the votes that committed the
// previous block: after an idle period (no blocks) it is the time the chain went idle.
// A tx must be judged at a current time (a consent whose end passed while the chain was
// idle must deny the next request), so a proposer that finds the block's time stale
// proposes it empty; the votes on it are current, and the next block, which takes the
// txs, has a current time. It costs one block after an idle period. Longer than the
// block interval of a loaded chain (about a second), so that a busy chain never pays it.
const StaleBlockTime = 2 * time.Second

// PrepareProposal implements abcitypes.Application: the mempool's txs in order, capped
// at MaxTxBytes (measured as CometBFT measures them); none if the block's time is
// older than StaleBlockTime on this proposer's clock. (Reading the clock here is sound:
// PrepareProposal only shapes a proposal; every validator executes the block decided.)
func (a *App) PrepareProposal(_ context.Context, req *abcitypes.RequestPrepareProposal) (*abcitypes.ResponsePrepareProposal, error) {
	if len(req.Txs) > 0 && !req.Time.IsZero() && time.Since(req.Time) > StaleBlockTime {
		a.log.Debug("block time stale: proposing an empty block first", "height", req.Height, "lag", time.Since(req.Time).Round(time.Millisecond))
		return &abcitypes.ResponsePrepareProposal{}, nil
	}
	txs := make([][]byte, 0, len(req.Txs))
	var total int64
	for _, tx := range req.Txs {
		total += cmttypes.ComputeProtoSizeForTxs([]cmttypes.Tx{tx})
		if total > req.MaxTxBytes {
			break
		}
		txs = append(txs, tx)
	}
	return &abcitypes.ResponsePrepareProposal{Txs: txs}, nil
}

// ProcessProposal implements abcitypes.Application: every proposal is accepted (txs are
// judged one by one in FinalizeBlock; CometBFT checks the size).
func (a *App) ProcessProposal(context.Context, *abcitypes.RequestProcessProposal) (*abcitypes.ResponseProcessProposal, error) {
	return &abcitypes.ResponseProcessProposal{Status: abcitypes.ResponseProcessProposal_ACCEPT}, nil
}

// FinalizeBlock implements abcitypes.Application: DeliverTx for each tx in order, over
// the block's overlay (a rejected tx writes nothing: see StateMachine), then EndBlock,
// then the app hash. Nothing is stored until Commit.
func (a *App) FinalizeBlock(_ context.Context, req *abcitypes.RequestFinalizeBlock) (_ *abcitypes.ResponseFinalizeBlock, err error) {
	defer a.halted(&err)
	a.cons.Lock()
	defer a.cons.Unlock()
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return nil, ErrClosed
	}
	if a.height != 0 && req.Height != a.height+1 {
		return nil, fmt.Errorf("abci: FinalizeBlock at height %d after committed height %d", req.Height, a.height)
	}
	if len(req.Txs) == 0 && a.height != 0 {
		return a.finalizeIdle(req.Height)
	}
	prev := a.hash
	base := &dbView{db: a.db, cache: a.cache}
	var parent consent.Reader = base
	if a.height == 0 {
		if a.genesis == nil {
			return nil, errors.New("abci: FinalizeBlock before InitChain on an empty store")
		}
		prev, parent = a.genesis.hash, a.genesis.on(base)
	}
	b := block(req.Height, req.Time)
	blk := consent.NewOverlay(parent)
	results := make([]*abcitypes.ExecTxResult, len(req.Txs))
	var valUpdates []abcitypes.ValidatorUpdate
	for i, tx := range req.Txs {
		res, err := a.machine.DeliverTx(blk, tx, b)
		if err := firstErr(base.err, blk.Err(), err); err != nil {
			return nil, fmt.Errorf("abci: height %d tx %d: %w", req.Height, i, err)
		}
		for _, v := range res.Validators {
			valUpdates = append(valUpdates, abcitypes.Ed25519ValidatorUpdate(v.Node, v.Power))
		}
		results[i] = &abcitypes.ExecTxResult{
			Code:   uint32(res.Code),
			Data:   res.Value,
			Log:    res.Log,
			Events: abciEvents(res.Events),
		}
	}
	if err := a.machine.EndBlock(blk, b); err != nil {
		return nil, fmt.Errorf("abci: EndBlock at height %d: %w", req.Height, err)
	}
	if err := firstErr(base.err, blk.Err()); err != nil {
		return nil, fmt.Errorf("abci: EndBlock at height %d: %w", req.Height, err)
	}
	commitment, err := a.commitment(blk)
	if err := firstErr(base.err, blk.Err(), err); err != nil {
		return nil, fmt.Errorf("abci: commitment at height %d: %w", req.Height, err)
	}
	writes := blk.Writes()
	digest := writesDigest(writes)
	hash := AppHashOf(prev, digest, req.Height, commitment)
	a.pending = &pendingBlock{height: req.Height, writes: writes, hash: hash,
		parts: HashParts{Height: req.Height, Prev: bytes.Clone(prev), Digest: digest, Commitment: commitment, AppHash: hash}}
	return &abcitypes.ResponseFinalizeBlock{TxResults: results, ValidatorUpdates: valUpdates, AppHash: bytes.Clone(hash)}, nil
}

// finalizeIdle finalizes a block without txs: the machine is not called (no EndBlock),
// so the state and the app hash stay as the previous height left them, and CometBFT,
// whose proof-block rule makes another block only after one that changed the app hash,
// then lets an idle chain make no more blocks (see Config.EmptyBlockInterval). The
// height's hash parts are those of the height that made the hash: a verifier checks them
// against the signed app hash all the same, and they say which height wrote the state.
func (a *App) finalizeIdle(height int64) (*abcitypes.ResponseFinalizeBlock, error) {
	parts, err := a.HashPartsAt(a.height)
	if err != nil {
		return nil, err
	}
	if parts == nil {
		return nil, fmt.Errorf("abci: no hash parts for committed height %d", a.height)
	}
	a.pending = &pendingBlock{height: height, hash: a.hash, parts: *parts}
	return &abcitypes.ResponseFinalizeBlock{AppHash: bytes.Clone(a.hash)}, nil
}

// Commit implements abcitypes.Application: the block's writes (and, on the first block,
// the genesis writes), the height and the app hash go to the store in one synced batch.
// A storage error is returned, which halts the node.
func (a *App) Commit(context.Context, *abcitypes.RequestCommit) (_ *abcitypes.ResponseCommit, err error) {
	defer a.halted(&err)
	a.cons.Lock()
	defer a.cons.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	p := a.pending
	if p == nil {
		return nil, errors.New("abci: Commit without a finalized block")
	}
	batch := new(leveldb.Batch)
	if a.height == 0 && a.genesis != nil {
		addWrites(batch, a.genesis.writes)
	}
	addWrites(batch, p.writes)
	last := binary.BigEndian.AppendUint64(nil, uint64(p.height))
	batch.Put([]byte(metaLast), append(last, p.hash...))
	batch.Put(hashKey(p.height), p.hash)
	if a.height == 0 && a.genesis != nil {
		if err := putParts(batch, a.genesis.parts.Height, a.genesis.parts); err != nil {
			return nil, err
		}
	}
	if err := putParts(batch, p.height, p.parts); err != nil {
		return nil, err
	}
	if err := a.db.Write(batch, &opt.WriteOptions{Sync: true}); err != nil {
		return nil, fmt.Errorf("abci: commit height %d: app store: %w", p.height, err)
	}
	if a.height == 0 && a.genesis != nil {
		a.cache.committed(a.genesis.writes)
	}
	a.cache.committed(p.writes)
	a.height, a.hash = p.height, p.hash
	a.pending, a.genesis = nil, nil
	return &abcitypes.ResponseCommit{}, nil
}

func addWrites(b *leveldb.Batch, ws []consent.Write) {
	for _, w := range ws {
		if w.Deleted {
			b.Delete(stateKey([]byte(w.Key)))
		} else {
			b.Put(stateKey([]byte(w.Key)), w.Value)
		}
	}
}

func abciEvents(evs []consent.Event) []abcitypes.Event {
	if len(evs) == 0 {
		return nil
	}
	out := make([]abcitypes.Event, len(evs))
	for i, e := range evs {
		attrs := make([]abcitypes.EventAttribute, len(e.Attrs))
		for j, at := range e.Attrs {
			attrs[j] = abcitypes.EventAttribute{Key: at.Key, Value: at.Value, Index: at.Index}
		}
		out[i] = abcitypes.Event{Type: e.Type, Attributes: attrs}
	}
	return out
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
