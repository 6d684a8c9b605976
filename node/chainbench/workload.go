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
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	dbm "github.com/cometbft/cometbft-db"
	"github.com/cometbft/cometbft/abci/example/kvstore"
	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/nodetest"
)

// workload is what one application of the benchmark runs: its network and its txs.
type workload interface {
	// name is the application's name in the results.
	name() string
	// config sets the application (NewMachine or NewApp, AppState) of cfg.
	config(cfg *nodetest.ValidatorsConfig) error
	// setup runs before the measurements, once the network makes blocks.
	setup(ctx context.Context, net *nodetest.Validators) error
	// tx returns a fresh, valid tx; height is a recently committed height. It is safe
	// for concurrent use.
	tx(height int64) []byte
}

// The consent workload's shape.
const (
	hospitals = 4
	patients  = 4096 // one record each
	// maxTxTTL is the genesis' bound on how far ahead a tx's expiry may be; txs expire
	// txTTL after the height they are made at, so a pre-built pool stays valid for a
	// long run.
	maxTxTTL = 100_000
	txTTL    = maxTxTTL - 1000
)

// key is a deterministic Ed25519 key: a consent.Signer.
type key struct{ priv ed25519.PrivateKey }

func newKey(name string) key {
	seed := sha256.Sum256([]byte("chainbench " + name))
	return key{ed25519.NewKeyFromSeed(seed[:])}
}

func (k key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }
func (k key) Public() ed25519.PublicKey       { return k.priv.Public().(ed25519.PublicKey) }

// consentLoad is the consent chain: every tx signed, half of them patients granting a
// consent to a hospital (for treatment), half hospitals requesting access to a
// registered record (decided on chain: granted if the patient's consents permit it).
// Setup registers one record per patient, held by one of the hospitals.
type consentLoad struct {
	chainID   string
	hospitals []key
	hospIDs   []consent.HospitalID
	patients  []key
	records   []consent.RecordID
	picks     atomic.Uint64 // the choice of txs
	nonces    atomic.Uint64
}

func newConsentLoad() *consentLoad {
	w := &consentLoad{}
	for i := range hospitals {
		w.hospitals = append(w.hospitals, newKey(fmt.Sprintf("hospital %d", i)))
		w.hospIDs = append(w.hospIDs, consent.HospitalID(fmt.Sprintf("hospital-%d", i)))
	}
	w.patients = make([]key, patients)
	w.records = make([]consent.RecordID, patients)
	parallel(patients, func(i int) {
		w.patients[i] = newKey(fmt.Sprintf("patient %d", i))
		id := sha256.Sum256(fmt.Appendf(nil, "record %d", i))
		w.records[i] = consent.RecordID(hex.EncodeToString(id[:16]))
	})
	return w
}

func (w *consentLoad) name() string { return "consent" }

func (w *consentLoad) config(cfg *nodetest.ValidatorsConfig) error {
	g := consent.Genesis{Params: consent.Params{MaxTxTTL: maxTxTTL}}
	for i, k := range w.hospitals {
		g.Hospitals = append(g.Hospitals, consent.Hospital{
			ID: w.hospIDs[i], Name: "Hospital " + string(w.hospIDs[i]), Power: 1, Operator: k.Public(),
			Node: newKey(fmt.Sprintf("hospital %d node", i)).Public(), Wrap: newKey(fmt.Sprintf("hospital %d wrap", i)).Public(),
		})
	}
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	cfg.AppState = b
	cfg.NewMachine = func(int) chain.StateMachine { return chain.NewConsentMachine() }
	return nil
}

// setup registers every patient's record, many at a time.
func (w *consentLoad) setup(ctx context.Context, net *nodetest.Validators) error {
	w.chainID = net.ChainID
	h := net.Nodes[0].Height()
	txs := make([][]byte, patients)
	parallel(patients, func(i int) { txs[i] = w.register(i, h) })
	return submitAll(ctx, net, txs, 256)
}

func (w *consentLoad) register(i int, height int64) []byte {
	custodian := i % hospitals
	return w.sign(consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: w.records[i], CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm",
		Patient: w.patients[i].patientID(), Classes: []consent.DataClass{"Condition", "Observation"},
		Custodians: []consent.HospitalID{w.hospIDs[custodian]},
	}}, w.hospitals[custodian], height)
}

func (k key) patientID() consent.PatientID { return consent.PatientIDOf(k.Public()) }

func (w *consentLoad) tx(height int64) []byte {
	s := w.picks.Add(1)
	r := rand.New(rand.NewPCG(s, 0x9e3779b97f4a7c15))
	p, h := r.IntN(patients), r.IntN(hospitals)
	if s%2 == 0 {
		return w.sign(consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{
			Patient: w.patients[p].patientID(),
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
func (w *consentLoad) sign(body consent.Body, signer key, height int64) []byte {
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
// txs "key=value" of txBytes bytes.
type kvLoad struct {
	txBytes int
	seq     atomic.Uint64
}

func (w *kvLoad) name() string { return "kvstore" }

func (w *kvLoad) config(cfg *nodetest.ValidatorsConfig) error {
	cfg.NewApp = func(_ int, home string) (abcitypes.Application, error) {
		db, err := dbm.NewGoLevelDB("kvstore", filepath.Join(home, "data"))
		if err != nil {
			return nil, err
		}
		return kvstore.NewApplication(db), nil
	}
	return nil
}

func (w *kvLoad) setup(context.Context, *nodetest.Validators) error { return nil }

func (w *kvLoad) tx(int64) []byte {
	tx := fmt.Appendf(nil, "k%016x=", w.seq.Add(1))
	for len(tx) < w.txBytes {
		tx = append(tx, 'v')
	}
	return tx
}

// submitAll commits txs through the network's nodes, at most inFlight at a time; any
// rejection is an error.
func submitAll(ctx context.Context, net *nodetest.Validators, txs [][]byte, inFlight int) error {
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		errMu sync.Mutex
		first error
	)
	for g := range inFlight {
		n := net.Nodes[g%len(net.Nodes)]
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(txs) || ctx.Err() != nil {
					return
				}
				if err := submitOne(ctx, n, txs[i]); err != nil {
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

func submitOne(ctx context.Context, n *chain.Node, tx []byte) error {
	ctx, cancel := context.WithTimeout(ctx, submitTimeout)
	defer cancel()
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
