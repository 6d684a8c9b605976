package chain_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

// TestRPCAnswersOnlyPublicQueries: through a real validator's CometBFT RPC, a query
// path the machine's owner did not declare public is refused with CodeNotPublic,
// while the node's own Query answers it; public paths and the adapter's hash parts
// answer over the RPC.
func TestRPCAnswersOnlyPublicQueries(t *testing.T) {
	net := nodetest.New(t, 1, func(int) abci.StateMachine { return new(nodetest.KV) },
		nodetest.WithRPC(), nodetest.WithPublicQuery(func(path string) bool { return path == "/keys" }))
	net.Start()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nd := net.Nodes[0]
	_, h, res, err := nd.SubmitTx(ctx, []byte("color=teal"))
	if err != nil || res.Code != 0 {
		t.Fatalf("submit: code %d, %v", res.Code, err)
	}
	rpc, err := rpchttp.New("http://"+strings.TrimPrefix(net.Configs[0].RPCListen, "tcp://"), "/websocket")
	if err != nil {
		t.Fatal(err)
	}

	got, err := rpc.ABCIQuery(ctx, "/get", []byte("color"))
	if err != nil {
		t.Fatal(err)
	}
	r := got.Response
	if r.Code != abci.CodeNotPublic || r.Codespace != abci.QueryCodespace || len(r.Value) != 0 ||
		!strings.Contains(r.Log, "answered only through the node's API") {
		t.Errorf("RPC /get: code %d codespace %q value %q log %q, want a refusal", r.Code, r.Codespace, r.Value, r.Log)
	}
	own, _, err := nd.Query("/get", []byte("color"))
	if err != nil || own.Code != 0 || string(own.Value) != "teal" {
		t.Errorf("the node's own /get: %+v, %v; want teal", own, err)
	}

	got, err = rpc.ABCIQuery(ctx, "/keys", nil)
	if err != nil || got.Response.Code != 0 || !strings.Contains(string(got.Response.Value), "color=teal") {
		t.Errorf("RPC /keys (public): %+v, %v", got.Response, err)
	}
	got, err = rpc.ABCIQuery(ctx, abci.HashPartsPath+strconv.FormatInt(h, 10), nil)
	if err != nil || got.Response.Code != 0 || len(got.Response.Value) == 0 {
		t.Errorf("RPC hash parts at %d: %+v, %v", h, got.Response, err)
	}
}
