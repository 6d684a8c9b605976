package nodetest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain/abci"
)

// Result codes of KV.
const (
	CodeOK        consent.Code = 0
	CodeMalformed consent.Code = 1 // CheckTx and DeliverTx: not one of KV's tx forms
	CodeFailed    consent.Code = 2 // DeliverTx of "fail:k=v": its write must be discarded
	CodeNotFound  consent.Code = 3 // Query /get of an absent key
	CodeBadPath   consent.Code = 4 // Query of an unknown path
	CodeGated     consent.Code = 5 // CheckTx and DeliverTx of "unless:g:k=v" once g is set
)

// KV is a small deterministic StateMachine for tests of the chain. Txs:
//
//	k=v        set k to v (k non-empty, without '=' or ':')
//	del:k      delete k
//	tmp:k=v    set k to v for the rest of the block: EndBlock sweeps it away
//	fail:k=v   passes CheckTx; DeliverTx sets k, then fails with CodeFailed
//	unless:g:k=v   k=v while key g is not set: refused by CheckTx once g is (so the
//	               mempool drops it after the block that sets g), and by DeliverTx
//
// DeliverTx buffers a tx's writes in an overlay and applies them only when the tx
// succeeds, as abci.StateMachine asks: a failed tx writes nothing.
//
// Query paths: "/get" (data = key) → value; "/keys" → "k=v\n" for every key in order;
// "/count" → the number of txs that succeeded (in state, so in the app hash).
// Genesis app_state: a JSON object of string keys and values, set at InitChain.
type KV struct {
	delivered atomic.Int64 // DeliverTx calls, whatever their outcome (not state)
}

var _ abci.StateMachine = (*KV)(nil)

// Delivered is how many times DeliverTx was called on this instance.
func (m *KV) Delivered() int64 { return m.delivered.Load() }

// Key layout.
const (
	dataPrefix = "d/"
	tmpPrefix  = "t/"
	countKey   = "#count"
)

type kvTx struct {
	op, key, value string
	unless         string // for unless:g:k=v
}

func parseKVTx(tx []byte) (kvTx, bool) {
	if after, ok := bytes.CutPrefix(tx, []byte("unless:")); ok {
		g, rest, ok := bytes.Cut(after, []byte(":"))
		if !ok || !validKey(string(g)) {
			return kvTx{}, false
		}
		t, ok := parseKVTx(rest)
		if t.unless != "" { // one gate a tx
			return kvTx{}, false
		}
		t.unless = string(g)
		return t, ok && t.op == "set"
	}
	op, rest := "set", string(tx)
	for _, p := range []string{"del", "tmp", "fail"} {
		if after, ok := bytes.CutPrefix(tx, []byte(p+":")); ok {
			op, rest = p, string(after)
		}
	}
	if op == "del" {
		return kvTx{op: op, key: rest}, validKey(rest)
	}
	k, v, ok := bytes.Cut([]byte(rest), []byte("="))
	if !ok || !validKey(string(k)) {
		return kvTx{}, false
	}
	return kvTx{op: op, key: string(k), value: string(v)}, true
}

func validKey(k string) bool {
	return k != "" && !bytes.ContainsAny([]byte(k), "=:")
}

// InitChain implements abci.StateMachine.
func (m *KV) InitChain(w consent.Store, _ string, appState []byte, _ consent.Block) error {
	if len(appState) == 0 {
		return nil
	}
	var kvs map[string]string
	if err := json.Unmarshal(appState, &kvs); err != nil {
		return fmt.Errorf("kv: app_state: %w", err)
	}
	keys := make([]string, 0, len(kvs))
	for k := range kvs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := w.Set([]byte(dataPrefix+k), []byte(kvs[k])); err != nil {
			return err
		}
	}
	return nil
}

// CheckTx implements abci.StateMachine.
func (m *KV) CheckTx(r consent.Reader, tx []byte) (consent.Result, error) {
	t, ok := parseKVTx(tx)
	if !ok {
		return consent.Result{Code: CodeMalformed, Log: "kv: want k=v, del:k, tmp:k=v, fail:k=v or unless:g:k=v"}, nil
	}
	return gated(r, t)
}

// gated refuses an unless:g:k=v tx once g is set.
func gated(r consent.Reader, t kvTx) (consent.Result, error) {
	if t.unless == "" {
		return consent.Result{}, nil
	}
	v, err := r.Get([]byte(dataPrefix + t.unless))
	if err != nil || v == nil {
		return consent.Result{}, err
	}
	return consent.Result{Code: CodeGated, Log: "kv: " + t.unless + " is set"}, nil
}

// DeliverTx implements abci.StateMachine.
func (m *KV) DeliverTx(st consent.Store, tx []byte, _ consent.Block) (consent.Result, error) {
	m.delivered.Add(1)
	t, ok := parseKVTx(tx)
	if !ok {
		return consent.Result{Code: CodeMalformed, Log: "kv: malformed tx"}, nil
	}
	if res, err := gated(st, t); err != nil || res.Code != CodeOK {
		return res, err
	}
	w := consent.NewOverlay(st)
	var err error
	switch t.op {
	case "del":
		err = w.Delete([]byte(dataPrefix + t.key))
	case "tmp":
		err = w.Set([]byte(tmpPrefix+t.key), []byte(t.value))
	default:
		err = w.Set([]byte(dataPrefix+t.key), []byte(t.value))
	}
	if err != nil {
		return consent.Result{}, err
	}
	if t.op == "fail" {
		return consent.Result{Code: CodeFailed, Log: "kv: failed as asked"}, nil
	}
	if err := m.addCount(w); err != nil {
		return consent.Result{}, err
	}
	return consent.Result{
		Events: []consent.Event{{Type: "kv", Attrs: []consent.Attr{
			{Key: "key", Value: t.key, Index: true},
			{Key: "op", Value: t.op},
		}}},
	}, w.Flush(st)
}

func (m *KV) addCount(w consent.Store) error {
	b, err := w.Get([]byte(countKey))
	if err != nil {
		return err
	}
	var n uint64
	if len(b) == 8 {
		n = binary.BigEndian.Uint64(b)
	}
	return w.Set([]byte(countKey), binary.BigEndian.AppendUint64(nil, n+1))
}

// InitValidators implements abci.StateMachine: the KV machine never changes the
// validator set, so it keeps nothing of it.
func (m *KV) InitValidators(consent.Store, []consent.ValidatorUpdate) error { return nil }

// EndBlock implements abci.StateMachine: it deletes every tmp key while iterating over
// them.
func (m *KV) EndBlock(w consent.Store, _ consent.Block) error {
	return w.Iterate([]byte(tmpPrefix), prefixEnd(tmpPrefix), func(k, _ []byte) error {
		return w.Delete(k)
	})
}

// Query implements abci.StateMachine.
func (m *KV) Query(r consent.Reader, path string, data []byte) (consent.Result, error) {
	switch path {
	case "/get":
		v, err := r.Get(append([]byte(dataPrefix), data...))
		if err != nil {
			return consent.Result{}, err
		}
		if v == nil {
			return consent.Result{Code: CodeNotFound, Log: "kv: not found"}, nil
		}
		return consent.Result{Value: v}, nil
	case "/keys":
		var out []byte
		err := r.Iterate([]byte(dataPrefix), prefixEnd(dataPrefix), func(k, v []byte) error {
			out = fmt.Appendf(out, "%s=%s\n", k[len(dataPrefix):], v)
			return nil
		})
		if err != nil {
			return consent.Result{}, err
		}
		return consent.Result{Value: out}, nil
	case "/count":
		b, err := r.Get([]byte(countKey))
		if err != nil {
			return consent.Result{}, err
		}
		var n uint64
		if len(b) == 8 {
			n = binary.BigEndian.Uint64(b)
		}
		return consent.Result{Value: []byte(strconv.FormatUint(n, 10))}, nil
	}
	return consent.Result{Code: CodeBadPath, Log: "kv: unknown path " + strconv.Quote(path)}, nil
}

func prefixEnd(p string) []byte {
	b := []byte(p)
	b[len(b)-1]++
	return b
}
