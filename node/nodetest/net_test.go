package nodetest_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

func newKV(int) abci.StateMachine { return new(nodetest.KV) }

func TestFourValidators(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	net := nodetest.New(t, 4, newKV, nodetest.WithAppState([]byte(`{"genesis":"yes"}`)))
	net.Start()
	if err := net.WaitHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("first block on all 4 nodes %v after New", time.Since(start).Round(time.Millisecond))

	// 40 txs, 10 to each node, all at once.
	const perNode = 10
	type sent struct {
		key    string
		height int64
		took   time.Duration
	}
	var (
		mu   sync.Mutex
		all  []sent
		wg   sync.WaitGroup
		errs = make(chan error, 4*perNode)
	)
	for i, node := range net.Nodes {
		for j := range perNode {
			wg.Go(func() {
				key := fmt.Sprintf("k%d-%d", i, j)
				t0 := time.Now()
				check, h, res, err := node.SubmitTx(ctx, []byte(key+"=v"+key))
				took := time.Since(t0)
				switch {
				case err != nil:
					errs <- fmt.Errorf("submit %s to node %d: %w", key, i, err)
				case check.Code != 0 || res.Code != 0:
					errs <- fmt.Errorf("submit %s: check code %d, deliver code %d (%s)", key, check.Code, res.Code, res.Log)
				case len(res.Events) != 1 || res.Events[0].Attrs[0] != (consent.Attr{Key: "key", Value: key, Index: true}):
					errs <- fmt.Errorf("submit %s: events %+v", key, res.Events)
				default:
					mu.Lock()
					all = append(all, sent{key, h, took})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	lat := make([]time.Duration, len(all))
	maxH := int64(0)
	for i, s := range all {
		lat[i] = s.took
		maxH = max(maxH, s.height)
	}
	slices.Sort(lat)
	t.Logf("SubmitTx latency over %d concurrent txs: p50 %v, max %v", len(lat),
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))

	// A malformed tx gets the machine's code at CheckTx and changes nothing.
	check, h, _, err := net.Nodes[2].SubmitTx(ctx, []byte("no equals sign"))
	if err != nil || check.Code != nodetest.CodeMalformed || h != 0 {
		t.Errorf("malformed tx: code %d height %d err %v, want code %d height 0", check.Code, h, err, nodetest.CodeMalformed)
	}
	// A tx that fails in DeliverTx is in a block, but its write is discarded.
	_, fh, fres, err := net.Nodes[3].SubmitTx(ctx, []byte("fail:doomed=1"))
	if err != nil || fres.Code != nodetest.CodeFailed {
		t.Fatalf("fail tx: code %d err %v, want code %d", fres.Code, err, nodetest.CodeFailed)
	}
	maxH = max(maxH, fh)

	target := maxH + 2
	if err := net.WaitHeight(ctx, target); err != nil {
		t.Fatal(err)
	}
	for i, node := range net.Nodes {
		for _, s := range all {
			res, _, err := node.Query("/get", []byte(s.key))
			if err != nil || res.Code != 0 || string(res.Value) != "v"+s.key {
				t.Fatalf("node %d: /get %s = %q code %d err %v", i, s.key, res.Value, res.Code, err)
			}
		}
		if res, _, _ := node.Query("/get", []byte("doomed")); res.Code != nodetest.CodeNotFound {
			t.Errorf("node %d: the failed tx's write is visible: %q", i, res.Value)
		}
		if res, _, _ := node.Query("/get", []byte("genesis")); string(res.Value) != "yes" {
			t.Errorf("node %d: genesis key = %q, want yes", i, res.Value)
		}
		res, qh, _ := node.Query("/count", nil)
		if string(res.Value) != fmt.Sprint(len(all)) || qh < target {
			t.Errorf("node %d: /count = %s at height %d, want %d at ≥ %d", i, res.Value, qh, len(all), target)
		}
	}
	sameAppHashes(t, net, target)

	// The idle block interval.
	h0, t0 := net.Nodes[0].Height(), time.Now()
	time.Sleep(time.Second)
	h1, took := net.Nodes[0].Height(), time.Since(t0)
	t.Logf("idle: %d blocks in %v, %v per block", h1-h0, took.Round(time.Millisecond),
		(took / time.Duration(max(1, h1-h0))).Round(time.Millisecond))
}

// sameAppHashes checks that every in-process node has the same app hash at each height
// from 1 to upTo.
func sameAppHashes(t *testing.T, net *nodetest.Net, upTo int64) {
	t.Helper()
	for h := int64(1); h <= upTo; h++ {
		var want []byte
		for i, node := range net.Nodes {
			if node == nil || !net.Running(i) {
				continue
			}
			got, err := node.AppHashAt(h)
			if err != nil || got == nil {
				t.Fatalf("node %d: app hash at %d: %x, %v", i, h, got, err)
			}
			if want == nil {
				want = got
			} else if !bytes.Equal(got, want) {
				t.Fatalf("node %d: app hash at %d is %x, node 0 has %x", i, h, got, want)
			}
		}
	}
}

func TestRestartNode(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	net := nodetest.New(t, 4, newKV)
	net.Start()
	if _, _, _, err := net.Nodes[1].SubmitTx(ctx, []byte("before=1")); err != nil {
		t.Fatal(err)
	}
	net.StopNode(3)
	stoppedAt, hashAt := net.Nodes[3].LastCommitted()
	// The three others keep going; node 3 misses blocks and a tx.
	if _, _, _, err := net.Nodes[0].SubmitTx(ctx, []byte("during=2")); err != nil {
		t.Fatal(err)
	}
	if err := net.WaitHeight(ctx, stoppedAt+5); err != nil {
		t.Fatal(err)
	}

	net.RestartNode(3)
	// The handshake found the app at the height it stopped at, with the same hash.
	if h, hash := net.Nodes[3].LastCommitted(); h < stoppedAt || !bytes.Equal(mustHashAt(t, net.Nodes[3], stoppedAt), hashAt) {
		t.Fatalf("after restart: height %d (stopped at %d), app hash at %d changed: %x, was %x", h, stoppedAt, stoppedAt, hash, hashAt)
	}
	target := net.Nodes[0].Height() + 2
	if err := net.WaitHeight(ctx, target); err != nil {
		t.Fatal(err)
	}
	sameAppHashes(t, net, target)
	for _, key := range []string{"before", "during"} {
		if res, _, err := net.Nodes[3].Query("/get", []byte(key)); err != nil || res.Code != 0 {
			t.Errorf("restarted node: /get %s: code %d err %v", key, res.Code, err)
		}
	}
}

func mustHashAt(t *testing.T, n *chain.Node, h int64) []byte {
	t.Helper()
	hash, err := n.AppHashAt(h)
	if err != nil {
		t.Fatal(err)
	}
	return hash
}
