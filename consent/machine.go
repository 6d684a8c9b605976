package consent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Result is the outcome of a tx or a query. Code 0 is success; otherwise Log says why.
type Result struct {
	Code   Code
	Log    string
	Value  []byte
	Events []Event
	// Validators are the validator-set changes the tx makes (a hospital that leaves
	// is removed: power 0); the chain applies them as CometBFT does.
	Validators []ValidatorUpdate
}

// Event is an ABCI event: opaque IDs and codes only, never PHI.
type Event struct {
	Type  string
	Attrs []Attr
}

// Attr is one event attribute; Index asks the node to index it. Each event indexes
// only the ID of the object it is about (grant, consent, record, hospital): the tx
// indexer finds txs by hash, and the access log answers queries by patient, hospital,
// kind and time, so every further indexed attribute would only cost each validator
// writes per tx (and make pseudonymous patient IDs searchable on every node).
type Attr struct {
	Key, Value string
	Index      bool
}

// Machine applies txs to state. It keeps no state of its own but a cache of the txs
// CheckTx accepted, decoded and verified, by the SHA-256 of their exact bytes, so a
// node decodes and checks each signature once, not again in the block; the cache never
// changes a result, only saves work.
type Machine struct {
	mu         sync.Mutex
	checked    map[[32]byte]checkedTx
	order      [][32]byte // FIFO eviction; may name entries already taken out
	checkedLen int        // bytes of the txs in checked
}

// checkedTx is a tx CheckTx accepted, decoded and verified. Nothing modifies it.
type checkedTx struct {
	tx   *Tx
	body *Body
	size int // of the tx's bytes
}

// The cache's bounds: a few full mempools, and memory for them even when every tx is
// as large as a tx may be.
const (
	checkedCacheSize  = 1 << 14
	checkedCacheBytes = 64 << 20
)

// NewMachine returns a state machine.
func NewMachine() *Machine { return &Machine{checked: map[[32]byte]checkedTx{}} }

// Genesis is the chain's initial state (CometBFT's app_state).
type Genesis struct {
	Hospitals []Hospital `json:"hospitals"`
	Params    Params     `json:"params"`
}

// InitChain writes genesis state. Invalid genesis is an error (the node halts).
func (m *Machine) InitChain(st Store, chainID string, appState []byte, b Block) error {
	var g Genesis
	if len(appState) > 0 {
		if err := json.Unmarshal(appState, &g); err != nil {
			return fmt.Errorf("consent: genesis app_state: %w", err)
		}
	}
	g.Params.fill()
	if err := g.Params.fillCustody(len(g.Hospitals)); err != nil {
		return fmt.Errorf("consent: genesis: %w", err)
	}
	g.Params.ChainID = chainID
	if err := setValue(st, keyParams, g.Params); err != nil {
		return err
	}
	if err := setValue(st, keyLayout, stateLayout); err != nil {
		return err
	}
	for _, h := range g.Hospitals {
		if err := h.validate(); err != nil {
			return fmt.Errorf("consent: genesis: %w", err)
		}
		if err := putHospital(st, h); err != nil {
			return err
		}
	}
	return setMeta(st, b)
}

func setMeta(st Store, b Block) error {
	if err := setValue(st, keyMeta+"height", b.Height); err != nil {
		return err
	}
	return setValue(st, keyMeta+"time", b.Time.Unix())
}

func meta(r Reader) (Height, int64, error) {
	var h Height
	var t int64
	if _, err := getValue(r, keyMeta+"height", &h); err != nil {
		return 0, 0, err
	}
	_, err := getValue(r, keyMeta+"time", &t)
	return h, t, err
}

// GetParams returns the chain's parameters, the consortium's default custody among them.
func GetParams(r Reader) (Params, error) {
	var p Params
	_, err := getValue(r, keyParams, &p)
	p.fill()
	return p, err
}

// CheckTx validates a tx against committed state, as it would be applied in the next
// block. A tx it accepts is remembered, decoded and verified, for DeliverTx.
func (m *Machine) CheckTx(r Reader, txBytes []byte) (Result, error) {
	height, t, err := meta(r)
	if err != nil {
		return Result{}, err
	}
	// Apply to a throwaway overlay: the same code decides CheckTx and DeliverTx.
	ov := NewOverlay(r)
	res, err := m.apply(ov, txBytes, Block{Height: height + 1, Time: unixTime(t)}, true)
	return res, err
}

// DeliverTx applies a tx in a block. A rejected tx changes nothing; a storage failure
// is returned as an error, which must halt the node.
func (m *Machine) DeliverTx(st Store, txBytes []byte, b Block) (Result, error) {
	ov := NewOverlay(st)
	res, err := m.apply(ov, txBytes, b, false)
	if err != nil || res.Code != OK {
		return res, err
	}
	return res, ov.Flush(st)
}

// EndBlock records the block's height and time, checkpoints the access log and prunes
// expired nonces.
func (m *Machine) EndBlock(st Store, b Block) error {
	var layout int
	if _, err := getValue(st, keyLayout, &layout); err != nil {
		return err
	}
	if layout != stateLayout {
		return fmt.Errorf("consent: the state is in layout %d, this binary keeps layout %d: "+
			"replay the chain from genesis with the binary that made it", layout, stateLayout)
	}
	if err := setMeta(st, b); err != nil {
		return err
	}
	if err := checkpointLog(st, b.Height); err != nil {
		return err
	}
	// A nonce key starts with its tx's expiry: those below the height can never be
	// included again.
	var dead []string
	err := st.Iterate([]byte(keyNonce), []byte(keyNonce+heightKey(b.Height)), func(k, _ []byte) error {
		dead = append(dead, string(k))
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range dead {
		if err := st.Delete([]byte(k)); err != nil {
			return err
		}
	}
	return nil
}

// apply runs every check and, if all pass, the tx's effect on st.
func (m *Machine) apply(st Store, txBytes []byte, b Block, check bool) (Result, error) {
	sum := sha256.Sum256(txBytes)
	id := idOfSum(sum)
	tx, body, err := m.decodeVerified(txBytes, sum, check)
	if err != nil {
		return rejected(err)
	}
	p, err := GetParams(st)
	if err != nil {
		return Result{}, err
	}
	a := &action{st: st, tx: tx, id: id, block: b, params: p, check: check}
	events, err := a.run(body)
	if err != nil {
		return rejected(err)
	}
	if check {
		m.remember(sum, tx, body, len(txBytes))
	}
	events = append([]Event{{Type: "tx", Attrs: []Attr{
		{Key: "kind", Value: body.Kind.String()},
		{Key: "id", Value: string(id)},
	}}}, events...)
	res := Result{Code: OK, Events: events, Validators: a.validators}
	if a.logRoot != nil {
		// The log's size and root after this tx: the block results, which the next
		// header commits to, carry them to light clients.
		if res.Value, err = encMode.Marshal(a.logRoot); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// rejected turns a Rejection into a result; any other error is infrastructure.
func rejected(err error) (Result, error) {
	var r *Rejection
	if errors.As(err, &r) {
		return Result{Code: r.Code, Log: r.Log}, nil
	}
	return Result{}, err
}

// decodeVerified decodes a tx and verifies its signature, or takes both from the
// cache (DeliverTx takes its tx out: it is in a block now).
func (m *Machine) decodeVerified(txBytes []byte, sum [32]byte, check bool) (*Tx, *Body, error) {
	m.mu.Lock()
	c, ok := m.checked[sum]
	if ok && !check {
		delete(m.checked, sum)
		m.checkedLen -= c.size
	}
	m.mu.Unlock()
	if ok {
		return c.tx, c.body, nil
	}
	tx, body, err := Decode(txBytes)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.Verify(); err != nil {
		return nil, nil, err
	}
	return tx, body, nil
}

// remember caches a tx CheckTx accepted (only those: a rejected tx costs whoever
// sent it nothing, so it must cost the node no memory either).
func (m *Machine) remember(sum [32]byte, tx *Tx, body *Body, size int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.checked[sum]; ok {
		return
	}
	m.checked[sum] = checkedTx{tx: tx, body: body, size: size}
	m.checkedLen += size
	m.order = append(m.order, sum)
	for len(m.order) > checkedCacheSize || m.checkedLen > checkedCacheBytes {
		if c, ok := m.checked[m.order[0]]; ok {
			delete(m.checked, m.order[0])
			m.checkedLen -= c.size
		}
		m.order = m.order[1:]
	}
}

// action is one tx being applied.
type action struct {
	st     Store
	tx     *Tx
	id     TxID
	block  Block
	params Params
	// check is set in CheckTx, whose writes and events are thrown away: work that
	// cannot change whether the tx is accepted may be skipped.
	check bool
	// logRoot is the access log's size and root after this tx's appends, if any.
	logRoot *LogRoot
	// validators are the validator-set changes of the tx.
	validators []ValidatorUpdate
}

func (a *action) run(body *Body) ([]Event, error) {
	if err := a.common(body); err != nil {
		return nil, err
	}
	var events []Event
	var err error
	switch body.Kind {
	case KindProposeHospital:
		events, err = a.proposeHospital(*body.ProposeHospital)
	case KindRegisterRecord:
		events, err = a.registerRecord(*body.RegisterRecord)
	case KindGrant:
		events, err = a.grant(*body.Grant)
	case KindRevoke:
		events, err = a.revoke(*body.Revoke)
	case KindRequest:
		events, err = a.request(*body.Request)
	case KindEmergency:
		events, err = a.emergency(*body.Emergency)
	case KindReceipt:
		events, err = a.receipt(*body.Receipt)
	case KindErase:
		events, err = a.erase(*body.Erase)
	case KindReview:
		events, err = a.review(*body.Review)
	case KindAcceptCustody:
		events, err = a.acceptCustody(*body.AcceptCustody)
	case KindAttestErasure:
		events, err = a.attestErasure(*body.AttestErasure)
	case KindLeave:
		events, err = a.leave(*body.Leave)
	case KindDealShares:
		events, err = a.dealShares(*body.DealShares)
	case KindHandOver:
		events, err = a.handOver(*body.HandOver)
	default:
		return nil, reject(CodeDecode, "unknown kind %d", body.Kind)
	}
	if err != nil || a.check {
		return events, err // CheckTx's writes would be thrown away
	}
	return events, a.useNonce(body)
}

// common checks chain ID, expiry and replay.
func (a *action) common(body *Body) error {
	if body.ChainID != a.params.ChainID {
		return reject(CodeChainID, "tx is for chain %q", Truncate(body.ChainID, 64))
	}
	if body.Expiry < a.block.Height {
		return reject(CodeExpired, "tx expired at height %d (now %d)", body.Expiry, a.block.Height)
	}
	if body.Expiry > a.block.Height+a.params.MaxTxTTL {
		return reject(CodeExpired, "expiry %d is more than %d blocks ahead", body.Expiry, a.params.MaxTxTTL)
	}
	b, err := a.st.Get(nonceKey(a.tx.Signer, body))
	if err != nil {
		return err
	}
	if b != nil {
		return reject(CodeReplay, "nonce already used by this signer")
	}
	return nil
}

// nonceKey is where a tx's nonce is kept until its expiry: one key per tx, led by the
// expiry so that EndBlock sweeps the expired ones by range. The signature covers the
// expiry, so a replayed tx always meets its own key; a signer may reuse a nonce with
// another expiry, which makes another tx.
func nonceKey(signer []byte, body *Body) []byte {
	k := make([]byte, 0, len(keyNonce)+17+2*len(signer)+1+2*len(body.Nonce))
	k = append(k, keyNonce...)
	k = append(k, heightKey(body.Expiry)...)
	k = append(k, '/')
	k = hex.AppendEncode(k, signer)
	k = append(k, '/')
	return hex.AppendEncode(k, body.Nonce)
}

func (a *action) useNonce(body *Body) error {
	return a.st.Set(nonceKey(a.tx.Signer, body), []byte{1}) // any value: the key is what counts
}

// signerHospital returns the registered hospital whose operator key signed the tx.
func (a *action) signerHospital() (*Hospital, error) {
	var id HospitalID
	ok, err := getValue(a.st, keyOperator+hex.EncodeToString(a.tx.Signer), &id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, reject(CodeUnauthorized, "signer is not a registered hospital's operator key")
	}
	return getHospital(a.st, id)
}

// signerIsPatient checks the tx is signed by the patient's own key.
func (a *action) signerIsPatient(p PatientID) error {
	if PatientIDOf(a.tx.Signer) != p {
		return reject(CodeUnauthorized, "only the patient may do this, with their own key")
	}
	return nil
}

func sortedUnique[T ~string](s []T) []T {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
