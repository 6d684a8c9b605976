package node_test

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/medledger/medledger/node/nodetest"
)

// shared is the consortium of the tests that stop no node, configure none and assert
// nothing about the network as a whole; they run in parallel on it.
var shared nodetest.Shared

// minParallel is how many parallel tests run at once unless -test.parallel says: the
// package's networked tests mostly wait for blocks, peers and timeouts, not for a CPU
// (together they keep about a third of one core busy), so more of them than there are
// cores run at once. A test with a network of its own calls t.Parallel; the tests
// that measure the whole process (its heap, its open files) do not: they run alone,
// before the parallel ones.
const minParallel = 4

// TestMain raises the default -test.parallel to minParallel, and stops the shared
// consortium after the tests.
func TestMain(m *testing.M) {
	flag.Parse()
	if !flagSet("test.parallel") {
		_ = flag.Set("test.parallel", strconv.Itoa(max(minParallel, runtime.GOMAXPROCS(0))))
	}
	code := m.Run()
	if err := shared.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// flagSet reports whether the command line set the flag.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
