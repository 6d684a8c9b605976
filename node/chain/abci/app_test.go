package abci_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

var genesisTime = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func openApp(t *testing.T, dir string) *abci.App {
	t.Helper()
	a, err := abci.NewApp(dir, new(nodetest.KV), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func initChain(t *testing.T, a *abci.App) []byte {
	t.Helper()
	res, err := a.InitChain(t.Context(), &abcitypes.RequestInitChain{
		ChainId: "test", InitialHeight: 1, Time: genesisTime,
		AppStateBytes: []byte(`{"g1":"x","g0":"y"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.AppHash
}

// blocks is a reproducible sequence of blocks mixing every KV tx form.
func blocks(seed uint64, n int) []*abcitypes.RequestFinalizeBlock {
	r := rand.New(rand.NewPCG(seed, 2))
	var out []*abcitypes.RequestFinalizeBlock
	for h := 1; h <= n; h++ {
		req := &abcitypes.RequestFinalizeBlock{Height: int64(h), Time: genesisTime.Add(time.Duration(h) * time.Second)}
		for range r.IntN(12) {
			k, v := fmt.Sprintf("k%d", r.IntN(20)), fmt.Sprint(r.IntN(1000))
			var tx string
			switch r.IntN(6) {
			case 0:
				tx = "del:" + k
			case 1:
				tx = "tmp:" + k + "=" + v
			case 2:
				tx = "fail:" + k + "=" + v
			case 3:
				tx = "malformed"
			default:
				tx = k + "=" + v
			}
			req.Txs = append(req.Txs, []byte(tx))
		}
		out = append(out, req)
	}
	return out
}

// run feeds reqs to a (after InitChain) and returns the app hash after each height.
func run(t *testing.T, a *abci.App, reqs []*abcitypes.RequestFinalizeBlock) [][]byte {
	t.Helper()
	ctx := t.Context()
	var hashes [][]byte
	for _, req := range reqs {
		res, err := a.FinalizeBlock(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.AppHash, a.AppHash()) {
			t.Fatalf("height %d: FinalizeBlock app hash %x, committed %x", req.Height, res.AppHash, a.AppHash())
		}
		hashes = append(hashes, res.AppHash)
	}
	return hashes
}

func withGOMAXPROCS(n int, f func()) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
	f()
}

func TestAppHashDeterminism(t *testing.T) {
	reqs := blocks(1, 60)
	var genesis [2][]byte
	var hashes [2][][]byte
	for i, procs := range []int{1, 2} {
		withGOMAXPROCS(procs, func() {
			a := openApp(t, t.TempDir())
			genesis[i] = initChain(t, a)
			hashes[i] = run(t, a, reqs)
		})
	}
	if !bytes.Equal(genesis[0], genesis[1]) {
		t.Fatalf("genesis app hashes differ: %x, %x", genesis[0], genesis[1])
	}
	for h := range hashes[0] {
		if !bytes.Equal(hashes[0][h], hashes[1][h]) {
			t.Fatalf("height %d: app hash %x under GOMAXPROCS=1, %x under 2", h+1, hashes[0][h], hashes[1][h])
		}
	}
	// A height with txs changes the app hash; one without keeps it (an idle chain).
	for h := 1; h < len(hashes[0]); h++ {
		if same := bytes.Equal(hashes[0][h], hashes[0][h-1]); same != (len(reqs[h].Txs) == 0) {
			t.Fatalf("height %d with %d txs: app hash unchanged = %v", h+1, len(reqs[h].Txs), same)
		}
	}

	// Changing one write at height 30 changes the app hash from there on.
	changed := blocks(1, 60)
	changed[29].Txs = append(changed[29].Txs, []byte("k0=changed"))
	a := openApp(t, t.TempDir())
	initChain(t, a)
	other := run(t, a, changed)
	for h := range other {
		if same := bytes.Equal(other[h], hashes[0][h]); same != (h < 29) {
			t.Fatalf("height %d: same app hash = %v after changing height 30", h+1, same)
		}
	}
}

// TestAppReopen: committed heights survive a close; a finalized but uncommitted block
// does not, and replaying it gives the same app hash.
func TestAppReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	reqs := blocks(7, 12)
	a := openApp(t, dir)
	initChain(t, a)
	want := run(t, a, reqs[:10])
	fin, err := a.FinalizeBlock(ctx, reqs[10])
	if err != nil {
		t.Fatal(err)
	}
	a.Close()

	a = openApp(t, dir)
	info, err := a.Info(ctx, &abcitypes.RequestInfo{})
	if err != nil || info.LastBlockHeight != 10 || !bytes.Equal(info.LastBlockAppHash, want[9]) {
		t.Fatalf("Info after reopen: height %d hash %x (%v), want 10, %x", info.LastBlockHeight, info.LastBlockAppHash, err, want[9])
	}
	for h := int64(1); h <= 10; h++ {
		if got, err := a.AppHashAt(h); err != nil || !bytes.Equal(got, want[h-1]) {
			t.Fatalf("AppHashAt(%d) = %x, %v; want %x", h, got, err, want[h-1])
		}
	}
	if again := run(t, a, reqs[10:11]); !bytes.Equal(again[0], fin.AppHash) {
		t.Fatalf("replayed height 11: app hash %x, first time %x", again[0], fin.AppHash)
	}
}

func TestFinalizeBlockResults(t *testing.T) {
	ctx := t.Context()
	a := openApp(t, t.TempDir())
	initChain(t, a)
	res, err := a.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{
		Height: 1, Time: genesisTime,
		Txs: [][]byte{[]byte("a=1"), []byte("malformed"), []byte("fail:b=2"), []byte("tmp:c=3")},
	})
	if err != nil {
		t.Fatal(err)
	}
	var codes []consent.Code
	for _, r := range res.TxResults {
		codes = append(codes, consent.Code(r.Code))
	}
	if want := []consent.Code{0, nodetest.CodeMalformed, nodetest.CodeFailed, 0}; !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
	wantEv := abcitypes.Event{Type: "kv", Attributes: []abcitypes.EventAttribute{
		{Key: "key", Value: "a", Index: true}, {Key: "op", Value: "set", Index: false},
	}}
	if ev := res.TxResults[0].Events; len(ev) != 1 || ev[0].String() != wantEv.String() {
		t.Fatalf("events %v, want %v", ev, wantEv)
	}
	if _, err := a.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]consent.Code{"a": 0, "g0": 0, "b": nodetest.CodeNotFound, "c": nodetest.CodeNotFound} {
		q, err := a.Query(ctx, &abcitypes.RequestQuery{Path: "/get", Data: []byte(key)})
		if err != nil || consent.Code(q.Code) != want || q.Height != 1 {
			t.Errorf("/get %s: code %d height %d err %v; want code %d height 1", key, q.Code, q.Height, err, want)
		}
	}
	if q, _ := a.Query(ctx, &abcitypes.RequestQuery{Path: "/count"}); string(q.Value) != "2" {
		t.Errorf("/count = %s, want 2 (a=1 and tmp:c=3)", q.Value)
	}
	c, err := a.CheckTx(ctx, &abcitypes.RequestCheckTx{Tx: []byte("nope")})
	if err != nil || consent.Code(c.Code) != nodetest.CodeMalformed || c.Log == "" {
		t.Errorf("CheckTx(nope) = code %d log %q err %v", c.Code, c.Log, err)
	}
}

func TestPrepareProposalCapsBytes(t *testing.T) {
	a := openApp(t, t.TempDir())
	var txs [][]byte
	for range 10 {
		txs = append(txs, bytes.Repeat([]byte("x"), 100))
	}
	// Each 100-byte tx takes 102 bytes in the block's protobuf.
	res, err := a.PrepareProposal(t.Context(), &abcitypes.RequestPrepareProposal{Txs: txs, MaxTxBytes: 350})
	if err != nil || len(res.Txs) != 3 {
		t.Fatalf("PrepareProposal kept %d txs (%v), want 3", len(res.Txs), err)
	}
}

// TestStorageFailureHalts: a failed write fails Commit, and a failed read fails the
// ABCI call even when the state machine swallowed the error.
func TestStorageFailureHalts(t *testing.T) {
	ctx := t.Context()
	errDisk := errors.New("disk on fire")
	a := openApp(t, t.TempDir())
	initChain(t, a)
	run(t, a, blocks(3, 2))
	h, hash := a.LastCommitted()

	if _, err := a.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{Height: 3, Time: genesisTime, Txs: [][]byte{[]byte("x=1")}}); err != nil {
		t.Fatal(err)
	}
	abci.InjectStoreFaults(a, nil, errDisk)
	if _, err := a.Commit(ctx, &abcitypes.RequestCommit{}); !errors.Is(err, errDisk) {
		t.Fatalf("Commit with a failing store: %v, want %v", err, errDisk)
	}
	if gh, ghash := a.LastCommitted(); gh != h || !bytes.Equal(ghash, hash) {
		t.Fatalf("after a failed Commit: height %d hash %x, want %d %x", gh, ghash, h, hash)
	}

	abci.InjectStoreFaults(a, errDisk, nil)
	// KV turns the read error of "x=1" (it reads its counter) into a code; the adapter
	// still halts.
	if _, err := a.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{Height: 3, Time: genesisTime, Txs: [][]byte{[]byte("x=1")}}); !errors.Is(err, errDisk) {
		t.Fatalf("FinalizeBlock with a failing store: %v, want %v", err, errDisk)
	}
	if _, err := a.Query(ctx, &abcitypes.RequestQuery{Path: "/get", Data: []byte("x")}); !errors.Is(err, errDisk) {
		t.Fatalf("Query with a failing store: %v, want %v", err, errDisk)
	}
}

func TestClosedApp(t *testing.T) {
	a := openApp(t, t.TempDir())
	a.Close()
	if _, err := a.Info(t.Context(), &abcitypes.RequestInfo{}); !errors.Is(err, abci.ErrClosed) {
		t.Fatalf("Info after Close: %v, want ErrClosed", err)
	}
}

// Before the first block, CheckTx and Query read the genesis state (which is committed
// with the first block), not an empty store.
func TestGenesisStateBeforeFirstBlock(t *testing.T) {
	a := openApp(t, t.TempDir())
	initChain(t, a)
	res, err := a.Query(t.Context(), &abcitypes.RequestQuery{Path: "/get", Data: []byte("g1")})
	if err != nil || res.Code != 0 || string(res.Value) != "x" || res.Height != 0 {
		t.Fatalf("query g1 before block 1: %q code %d height %d, %v; want \"x\" at height 0", res.Value, res.Code, res.Height, err)
	}
	run(t, a, blocks(1, 1))
	res, err = a.Query(t.Context(), &abcitypes.RequestQuery{Path: "/get", Data: []byte("g1")})
	if err != nil || string(res.Value) != "x" || res.Height != 1 {
		t.Fatalf("query g1 after block 1: %q height %d, %v", res.Value, res.Height, err)
	}
}

// committingKV commits to its count of applied txs, as the consent machine commits to its
// audit log's root.
type committingKV struct{ nodetest.KV }

func (*committingKV) Commitment(r consent.Reader) ([]byte, error) { return r.Get([]byte("#count")) }

// TestHashParts: the parts stored for each height rebuild its app hash and chain onto
// the previous one, and the commitment is the machine's as the height left the state.
func TestHashParts(t *testing.T) {
	a, err := abci.NewApp(t.TempDir(), &committingKV{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	genesis := initChain(t, a)
	reqs := blocks(7, 12)
	reqs[5].Txs, reqs[6].Txs = nil, nil // idle heights
	hashes := run(t, a, reqs)
	prev := genesis
	sawCommitment, sawIdle := false, false
	for i, want := range hashes {
		h := int64(i + 1)
		p, err := a.HashPartsAt(h)
		if err != nil || p == nil {
			t.Fatalf("height %d: %v", h, err)
		}
		if len(reqs[i].Txs) == 0 { // an idle height keeps the hash and the parts that made it
			sawIdle = true
			if !bytes.Equal(want, prev) || p.Height >= h || !bytes.Equal(p.AppHash, want) {
				t.Fatalf("idle height %d: hash %x after %x, parts of height %d", h, want, prev, p.Height)
			}
			continue
		}
		if !bytes.Equal(p.AppHash, want) || !bytes.Equal(p.Prev, prev) || p.Height != h ||
			!bytes.Equal(abci.AppHashOf(p.Prev, p.Digest, h, p.Commitment), want) {
			t.Fatalf("height %d: parts %+v do not rebuild app hash %x", h, p, want)
		}
		if bytes.Equal(abci.AppHashOf(p.Prev, p.Digest, h, append(p.Commitment, 'x')), want) {
			t.Fatal("a changed commitment rebuilds the same app hash")
		}
		sawCommitment = sawCommitment || len(p.Commitment) > 0
		prev = want
	}
	if !sawCommitment || !sawIdle {
		t.Fatalf("commitment made %v, idle height seen %v: the test proves less than it says", sawCommitment, sawIdle)
	}
	q, err := a.Query(t.Context(), &abcitypes.RequestQuery{Path: abci.HashPartsPath + "3"})
	if err != nil || q.Code != 0 || !bytes.Contains(q.Value, []byte(`"height":3`)) {
		t.Fatalf("query: %v %+v", err, q)
	}
	if q, _ := a.Query(t.Context(), &abcitypes.RequestQuery{Path: abci.HashPartsPath + "99"}); q.Code == 0 {
		t.Fatal("hash parts of an uncommitted height")
	}
}

// TestReadCacheFollowsCommits: an app whose reads are cached (queried for every key
// after every block, its cache so small that entries keep moving between its
// generations) answers exactly as an app that reads its store every time, through
// sets, deletes, failed and malformed txs.
func TestReadCacheFollowsCommits(t *testing.T) {
	ctx := t.Context()
	cached, direct := openApp(t, t.TempDir()), openApp(t, t.TempDir())
	abci.SetReadCache(cached, 2000)
	abci.SetReadCache(direct, 0)
	initChain(t, cached)
	initChain(t, direct)
	for _, req := range blocks(7, 60) {
		var hashes [2][]byte
		for i, a := range []*abci.App{cached, direct} {
			res, err := a.FinalizeBlock(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
				t.Fatal(err)
			}
			hashes[i] = res.AppHash
		}
		if !bytes.Equal(hashes[0], hashes[1]) {
			t.Fatalf("height %d: app hashes differ", req.Height)
		}
		for k := range 20 {
			key := []byte(fmt.Sprintf("k%d", k))
			c, err1 := cached.Query(ctx, &abcitypes.RequestQuery{Path: "/get", Data: key})
			d, err2 := direct.Query(ctx, &abcitypes.RequestQuery{Path: "/get", Data: key})
			if err1 != nil || err2 != nil || c.Code != d.Code || !bytes.Equal(c.Value, d.Value) {
				t.Fatalf("height %d, %s: cached %d %q %v, store %d %q %v", req.Height, key, c.Code, c.Value, err1, d.Code, d.Value, err2)
			}
		}
	}
}

// TestReadsDuringBlocks: CheckTx and Query run while FinalizeBlock and Commit do (a
// node calls them on other connections), and each answer is the committed state at the
// height it reports: never a finalized block's writes before their Commit, never a
// height with another height's values.
func TestReadsDuringBlocks(t *testing.T) {
	ctx := t.Context()
	reqs := blocks(11, 80)
	key := func(k int) []byte { return fmt.Appendf(nil, "k%d", k) }
	// want[h][k] is k's value after height h, from an app nobody reads concurrently.
	ref := openApp(t, t.TempDir())
	initChain(t, ref)
	want := map[int64][20]string{}
	snapshot := func(a *abci.App) {
		var vs [20]string
		for k := range vs {
			res, err := a.Query(ctx, &abcitypes.RequestQuery{Path: "/get", Data: key(k)})
			if err != nil {
				t.Fatal(err)
			}
			vs[k] = fmt.Sprintf("%d %q", res.Code, res.Value)
		}
		want[a.Height()] = vs
	}
	snapshot(ref)
	for _, req := range reqs {
		run(t, ref, []*abcitypes.RequestFinalizeBlock{req})
		snapshot(ref)
	}

	a := openApp(t, t.TempDir())
	initChain(t, a)
	type seen struct {
		height int64
		k      int
		got    string
	}
	done := make(chan struct{})
	results := make(chan []seen)
	for g := range 3 {
		go func() {
			var out []seen
			r := rand.New(rand.NewPCG(uint64(g), 3))
			for {
				select {
				case <-done:
					results <- out
					return
				default:
				}
				if _, err := a.CheckTx(ctx, &abcitypes.RequestCheckTx{Tx: key(r.IntN(20))}); err != nil {
					t.Error(err)
				}
				k := r.IntN(20)
				res, err := a.Query(ctx, &abcitypes.RequestQuery{Path: "/get", Data: key(k)})
				if err != nil {
					t.Error(err)
				}
				out = append(out, seen{res.Height, k, fmt.Sprintf("%d %q", res.Code, res.Value)})
			}
		}()
	}
	run(t, a, reqs)
	close(done)
	var all []seen
	for range 3 {
		all = append(all, <-results...)
	}
	heights := map[int64]bool{}
	for _, s := range all {
		if w := want[s.height][s.k]; s.got != w {
			t.Fatalf("k%d at height %d: read %s, committed state has %s", s.k, s.height, s.got, w)
		}
		heights[s.height] = true
	}
	if len(heights) < 10 {
		t.Fatalf("reads saw only %d heights of %d: they did not run alongside the blocks", len(heights), len(reqs))
	}
}
