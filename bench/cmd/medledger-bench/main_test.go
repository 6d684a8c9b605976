package main

import (
	"os"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"medledger-bench": func() { os.Exit(run()) }})
}

// TestScripts runs the command's scripts in testdata/script (txtar files; see
// testscript).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:  "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"oneline": oneline},
	})
}

// oneline asserts that the last stderr is exactly one line.
func oneline(ts *testscript.TestScript, neg bool, args []string) {
	s := ts.ReadFile("stderr")
	if n := strings.Count(s, "\n"); n != 1 || !strings.HasSuffix(s, "\n") {
		ts.Fatalf("stderr has %d lines, want exactly one: %q", n, s)
	}
}
