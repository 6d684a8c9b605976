package node_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/medledger/medledger/node"
)

// TestStartFailureReleasesEverything: a node whose CometBFT p2p port is taken fails to
// start with an error naming the cause (it does not panic), and it leaves nothing
// behind: once the port is free, the same home starts (its block store, chain
// databases and libp2p ports were released).
func TestStartFailureReleasesEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hospital node")
	}
	homes, err := node.Testnet(node.TestnetConfig{Dir: t.TempDir(), Hospitals: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := homes[0]
	h.Config.API.Listen = ""
	taken, err := net.Listen("tcp", strings.TrimPrefix(h.Config.Chain.P2PListen, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	nd, err := node.Start(t.Context(), node.Config{Home: h, Logger: quiet})
	if err == nil {
		nd.Close()
		t.Fatal("started with its p2p port taken")
	}
	if nd != nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start = %v, %v; want nil and an address-in-use error", nd, err)
	}
	taken.Close()
	nd, err = node.Start(t.Context(), node.Config{Home: h, Logger: quiet})
	if err != nil {
		t.Fatalf("restart after the failure: %v", err)
	}
	if err := nd.Close(); err != nil {
		t.Fatal(err)
	}
}
