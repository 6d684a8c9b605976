package node_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/home"
)

// TestStartFailureReleasesEverything: a node whose CometBFT p2p port is taken fails to
// start with an error naming the cause (it does not panic), and it leaves nothing
// behind: once the port is free, the same home starts (its block store, chain
// databases and libp2p ports were released).
func TestStartFailureReleasesEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hospital node")
	}
	t.Parallel()
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
	// A second node on a home in use is refused, saying who holds it, and disturbs
	// nothing: the first keeps committing.
	second, err := node.Start(t.Context(), node.Config{Home: h, Logger: quiet})
	if err == nil {
		second.Close()
		t.Fatal("a second node started on a home in use")
	}
	if !errors.Is(err, home.ErrInUse) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second Start: %v, want home.ErrInUse naming this process", err)
	}
	before := nd.Chain().Height()
	deadline := time.Now().Add(30 * time.Second)
	for nd.Chain().Height() <= before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if nd.Chain().Height() <= before {
		t.Fatal("the first node stopped committing after the refused second start")
	}
	if err := nd.Close(); err != nil {
		t.Fatal(err)
	}
}
