package nodetest_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

// TestValidators runs the test state machine KV on the default four validators: a tx
// commits on every node with one app hash, a restarted node reopens its state from its
// home, and Stop removes the temporary directory LaunchValidators made.
func TestValidators(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	net, err := nodetest.LaunchValidators(nodetest.ValidatorsConfig{
		NewMachine: func(int) abci.StateMachine { return &nodetest.KV{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	if len(net.Nodes) != 4 {
		t.Fatalf("got %d nodes, want the default 4", len(net.Nodes))
	}
	_, h, res, err := net.Nodes[1].SubmitTx(ctx, []byte("color=teal"))
	if err != nil || res.Code != 0 {
		t.Fatalf("submit: code %d, %v", res.Code, err)
	}
	if err := net.WaitHeight(ctx, h+1); err != nil {
		t.Fatal(err)
	}
	want, err := net.Nodes[0].AppHashAt(h)
	if err != nil || want == nil {
		t.Fatalf("app hash at %d: %x, %v", h, want, err)
	}
	for i, n := range net.Nodes {
		got, _, err := n.Query("/get", []byte("color"))
		if err != nil || string(got.Value) != "teal" {
			t.Errorf("node %d: color = %q, %v", i, got.Value, err)
		}
		if hash, _ := n.AppHashAt(h); !bytes.Equal(hash, want) {
			t.Errorf("node %d: app hash at %d is %x, node 0 has %x", i, h, hash, want)
		}
	}

	// A restart reopens the app over the same home.
	if err := net.RestartNode(2); err != nil {
		t.Fatal(err)
	}
	if got, _ := net.Nodes[2].LastCommitted(); got < h {
		t.Errorf("restarted node at height %d, had committed %d", got, h)
	}
	if err := net.WaitHeight(ctx, net.Nodes[0].Height()+1); err != nil {
		t.Fatal(err)
	}
	for i, n := range net.Nodes {
		if n.CatchingUp() {
			t.Errorf("node %d is still catching up after WaitHeight (it would refuse txs)", i)
		}
	}

	if err := net.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(net.Dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there after Stop (%v)", net.Dir, err)
	}
}

func TestConfig(t *testing.T) {
	kv := func(int) abci.StateMachine { return &nodetest.KV{} }
	for name, cfg := range map[string]nodetest.ValidatorsConfig{
		"no machine":   {},
		"powers":       {NewMachine: kv, Powers: []int64{1}},
		"external out": {NewMachine: kv, External: []int{4}},
	} {
		if _, err := nodetest.NewValidators(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
