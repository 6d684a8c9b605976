package nodetest_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// leakGrace is how long goroutines may take to end after the tests. A stopped node's
// p2p switch may be sleeping before its next attempt to reconnect to a peer (CometBFT's
// reconnectInterval of 5 s plus up to 3 s of jitter); it ends after the sleep.
const leakGrace = 10 * time.Second

// TestMain fails the run if goroutines outlive the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitGoroutines(leakGrace); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left after the tests:\n%s", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// knownLeaks are goroutines CometBFT v0.40 itself never ends: the consensus WAL's
// autofile (its Group.Close closes the file but not the AutoFile, so the SIGHUP handler
// and the close ticker stay, with the signal.Notify loop they start).
var knownLeaks = []string{
	"cometbft/libs/autofile.OpenAutoFile",
	"cometbft/libs/autofile.(*AutoFile).closeFileRoutine",
	"os/signal.loop",
}

func waitGoroutines(grace time.Duration) string {
	deadline := time.Now().Add(grace)
	for {
		leaked := unexpectedGoroutines()
		if leaked == "" || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func unexpectedGoroutines() string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out bytes.Buffer
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("nodetest_test.TestMain")) || bytes.Contains(g, []byte("unexpectedGoroutines")) {
			continue
		}
		known := false
		for _, k := range knownLeaks {
			known = known || bytes.Contains(g, []byte(k))
		}
		if !known {
			out.Write(g)
			out.WriteString("\n\n")
		}
	}
	return out.String()
}
