package chainbench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/medledger/medledger/bench/kvnet"
	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

// workload is what one application of the benchmark runs: its network and its txs.
type workload interface {
	// name is the application's name in the results.
	name() string
	// launch starts a network of cfg.Validators running the application, its homes
	// in dir.
	launch(dir string, cfg Config) (*network, error)
	// setup runs before the measurements, once the network makes blocks.
	setup(ctx context.Context, net *network) error
	// tx returns a fresh, valid tx; height is a recently committed height. It is safe
	// for concurrent use.
	tx(height int64) []byte
}

// submitter commits a tx through one validator: nil once it is committed, an error if
// it was refused (by the mempool, in CheckTx or in its block) or not committed.
type submitter func(ctx context.Context, tx []byte) error

// network is a running network of validators, whichever runs it.
type network struct {
	chainID    string
	nodes      []submitter
	height     func() int64 // node 0's last committed height
	waitHeight func(ctx context.Context, h int64) error
	stop       func() error
}

// The consent workload's shape.
const (
	hospitals       = 4
	defaultPatients = 4096 // one record each (Config.Patients)
	// maxTxTTL is the genesis' bound on how far ahead a tx's expiry may be; txs expire
	// txTTL after the height they are made at, so a pre-built pool stays valid for a
	// long run.
	maxTxTTL = 100_000
	txTTL    = maxTxTTL - 1000
)

// consentLoad is the consent chain: every tx signed, half of them patients granting a
// consent to a hospital (for treatment), half hospitals requesting access to a
// registered record (decided on chain: granted if the patient's consents permit it).
// Setup registers one record per patient, held by one of the hospitals.
type consentLoad struct {
	chainID   string
	hospitals []*consenttest.Key
	hospIDs   []consent.HospitalID
	patients  []*consenttest.Key
	records   []consent.RecordID
	picks     atomic.Uint64 // the choice of txs
	nonces    atomic.Uint64
}

func newConsentLoad(patients int) *consentLoad {
	w := &consentLoad{}
	for i := range hospitals {
		w.hospIDs = append(w.hospIDs, consent.HospitalID(fmt.Sprintf("hospital-%d", i)))
		w.hospitals = append(w.hospitals, consenttest.NewKey(string(w.hospIDs[i])))
	}
	w.patients = make([]*consenttest.Key, patients)
	w.records = make([]consent.RecordID, patients)
	parallel(patients, func(i int) {
		w.patients[i] = consenttest.NewKey(fmt.Sprintf("patient %d", i))
		id := sha256.Sum256(fmt.Appendf(nil, "record %d", i))
		w.records[i] = consent.RecordID(hex.EncodeToString(id[:16]))
	})
	return w
}

func (w *consentLoad) name() string { return "consent" }

// appState is the genesis: the hospitals, and a MaxTxTTL that keeps a pool of txs
// built ahead valid for a long run.
func (w *consentLoad) appState() ([]byte, error) {
	g := consent.Genesis{Params: consent.Params{MaxTxTTL: maxTxTTL}}
	for _, id := range w.hospIDs {
		g.Hospitals = append(g.Hospitals, consenttest.Hospital(string(id), 1)) // its operator key: consenttest.NewKey(id)
	}
	return json.Marshal(g)
}

func (w *consentLoad) launch(dir string, cfg Config) (*network, error) {
	appState, err := w.appState()
	if err != nil {
		return nil, err
	}
	vs, err := nodetest.LaunchValidators(nodetest.ValidatorsConfig{
		Validators: cfg.Validators, Dir: dir, Logger: cfg.Logger, AppState: appState,
		NewMachine: func(int) abci.StateMachine { return abci.NewConsentMachine() },
	})
	if err != nil {
		return nil, err
	}
	net := &network{chainID: vs.ChainID, height: vs.Nodes[0].Height, waitHeight: vs.WaitHeight, stop: vs.Stop}
	for _, n := range vs.Nodes {
		net.nodes = append(net.nodes, consentSubmitter(n))
	}
	return net, nil
}

// consentSubmitter submits through a consent chain node; a rejected tx is an error.
func consentSubmitter(n *chain.Node) submitter {
	return func(ctx context.Context, tx []byte) error {
		check, _, res, err := n.SubmitTx(ctx, tx)
		switch {
		case err != nil:
			return err
		case check.Code != 0:
			return fmt.Errorf("chainbench: tx rejected by CheckTx: code %d: %s", check.Code, check.Log)
		case res.Code != 0:
			return fmt.Errorf("chainbench: tx rejected in its block: code %d: %s", res.Code, res.Log)
		}
		return nil
	}
}

// setup registers every patient's record, many at a time.
func (w *consentLoad) setup(ctx context.Context, net *network) error {
	w.chainID = net.chainID
	h := net.height()
	txs := make([][]byte, len(w.patients))
	parallel(len(txs), func(i int) { txs[i] = w.register(i, h) })
	return submitAll(ctx, net, txs, 256)
}

func (w *consentLoad) register(i int, height int64) []byte {
	custodian := i % hospitals
	return w.sign(consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: w.records[i], CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm",
		Patient: w.patients[i].Patient(), Classes: []consent.DataClass{"Condition", "Observation"},
		Custodians: []consent.HospitalID{w.hospIDs[custodian]},
	}}, w.hospitals[custodian], height)
}

func (w *consentLoad) tx(height int64) []byte {
	s := w.picks.Add(1)
	r := rand.New(rand.NewPCG(s, 0x9e3779b97f4a7c15))
	p, h := r.IntN(len(w.patients)), r.IntN(hospitals)
	if s%2 == 0 {
		return w.sign(consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{
			Patient: w.patients[p].Patient(),
			Policy: consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{{
				Type: consent.Permit, Actors: []consent.HospitalID{w.hospIDs[h]}, Purposes: []consent.Purpose{"TREAT"},
			}}},
		}}, w.patients[p], height)
	}
	return w.sign(consent.Body{Kind: consent.KindRequest, Request: &consent.Request{
		Requester: w.hospIDs[h], Record: w.records[p], Purpose: "TREAT",
	}}, w.hospitals[h], height)
}

// sign fills in the chain ID, a nonce unique in this run and the expiry, and signs.
func (w *consentLoad) sign(body consent.Body, signer *consenttest.Key, height int64) []byte {
	body.ChainID = w.chainID
	body.Nonce = binary.BigEndian.AppendUint64(make([]byte, 8), w.nonces.Add(1))
	body.Expiry = consent.Height(height + txTTL)
	tx, err := consent.Sign(body, signer)
	if err != nil {
		panic(err) // a well-formed body always encodes, and key.Sign cannot fail
	}
	return tx
}

// kvLoad is CometBFT's kvstore example app, over a leveldb in each node's home, with
// txs "key=value" of txBytes bytes; signed, the kvstore whose txs carry an Ed25519
// signature checked once in CheckTx (kvnet.SignedKVStore), the value padded so that
// the signed tx is txBytes long.
type kvLoad struct {
	txBytes int
	signed  bool
	seq     atomic.Uint64
}

// kvSigners sign the signed kvstore's txs, in turn.
var kvSigners = func() []ed25519.PrivateKey {
	keys := make([]ed25519.PrivateKey, 64)
	for i := range keys {
		seed := sha256.Sum256(fmt.Appendf(nil, "chainbench kvstore signer %d", i))
		keys[i] = ed25519.NewKeyFromSeed(seed[:])
	}
	return keys
}()

func (w *kvLoad) name() string {
	if w.signed {
		return "signed kvstore"
	}
	return "kvstore"
}

func (w *kvLoad) launch(dir string, cfg Config) (*network, error) {
	app := kvnet.NewKVStore
	if w.signed {
		app = kvnet.NewSignedKVStore
	}
	kn, err := kvnet.Launch(kvnet.Config{Validators: cfg.Validators, Dir: dir, NewApp: app, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	net := &network{chainID: kn.ChainID, height: kn.Nodes[0].Height, waitHeight: kn.WaitHeight, stop: kn.Stop}
	for _, n := range kn.Nodes {
		net.nodes = append(net.nodes, n.SubmitTx)
	}
	return net, nil
}

func (w *kvLoad) setup(context.Context, *network) error { return nil }

func (w *kvLoad) tx(int64) []byte {
	seq := w.seq.Add(1)
	size := w.txBytes
	if w.signed {
		size -= kvnet.SigOverhead
	}
	tx := fmt.Appendf(nil, "k%016x=", seq)
	for len(tx) < size {
		tx = append(tx, 'v')
	}
	if w.signed {
		tx = kvnet.SignTx(kvSigners[seq%uint64(len(kvSigners))], tx)
	}
	return tx
}

// submitAll commits txs through the network's nodes, at most inFlight at a time; any
// rejection is an error.
func submitAll(ctx context.Context, net *network, txs [][]byte, inFlight int) error {
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		errMu sync.Mutex
		first error
	)
	for g := range inFlight {
		submit := net.nodes[g%len(net.nodes)]
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(txs) || ctx.Err() != nil {
					return
				}
				if err := submitOne(ctx, submit, txs[i]); err != nil {
					errMu.Lock()
					first = cmpErr(first, err)
					errMu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return cmpErr(first, ctx.Err())
}

// submitOne commits tx through submit, waiting at most submitTimeout.
func submitOne(ctx context.Context, submit submitter, tx []byte) error {
	ctx, cancel := context.WithTimeout(ctx, submitTimeout)
	defer cancel()
	return submit(ctx, tx)
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// parallel runs fn(0..n-1) on every CPU.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}
