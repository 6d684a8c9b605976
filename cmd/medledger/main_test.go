package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/storage"
)

// runAsCLI makes the test binary run as the medledger command (for tests that start
// node processes).
const runAsCLI = "MEDLEDGER_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(runAsCLI) == "1" {
		os.Exit(run())
	}
	testscript.Main(m, map[string]func(){"medledger": func() { os.Exit(run()) }})
}

// TestScripts runs the CLI scripts in testdata/script (txtar files; see testscript).
// Each script starts with bundle.json (a Synthea Bundle) and invalid.json (an invalid
// one) in its work directory.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			if err := copySamples(env.WorkDir); err != nil {
				return err
			}
			env.Setenv("MEDLEDGER_HOME", filepath.Join(env.WorkDir, "default-home"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"capture":     capture,
			"blocks":      blocks,
			"oneline":     oneline,
			"noplaintext": noPlaintext,
		},
	})
}

// copySamples writes the scripts' sample Bundles into dir: bundle.json (a Synthea
// Bundle), large.json (a 1.5 MB one) and invalid.json (an invalid one).
func copySamples(dir string) error {
	for dst, src := range map[string]string{
		"bundle.json":  "../../testdata/fhir/synthea/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json",
		"large.json":   "../../testdata/fhir/synthea/Cleo_Friesen_59907280-53b1-4677-92b9-83c1332a08b3.json",
		"invalid.json": "../../testdata/fhir/invalid/bundle-duplicate-id.json",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// capture VAR REGEXP sets $VAR to the first group of REGEXP in the last stdout.
func capture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	m := regexp.MustCompile(args[1]).FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("capture: %q not in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// noplaintext HOME BUNDLE asserts that no block in HOME's store contains the Bundle's
// patient names, birth dates or address lines.
func noPlaintext(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: noplaintext HOME BUNDLE")
	}
	terms, err := fhir.PHITerms([]byte(ts.ReadFile(args[1])))
	ts.Check(err)
	forEachBlock(ts, args[0], func(b []byte) {
		for _, term := range terms {
			if strings.Contains(string(b), term) {
				ts.Fatalf("a block of %s contains %q", args[0], term)
			}
		}
	})
}

func forEachBlock(ts *testscript.TestScript, home string, f func([]byte)) int {
	ctx := context.Background()
	s, err := storage.Open(ctx, filepath.Join(ts.MkAbs(home), "data", "blocks"))
	ts.Check(err)
	defer s.Close()
	keys, err := s.Blockstore().AllKeysChan(ctx)
	ts.Check(err)
	n := 0
	for k := range keys {
		b, err := s.Blockstore().Get(ctx, k)
		ts.Check(err)
		f(b.RawData())
		n++
	}
	return n
}

// blocks HOME N asserts that HOME's block store holds exactly N blocks.
func blocks(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: blocks HOME N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	got := forEachBlock(ts, args[0], func([]byte) {})
	if got != want {
		ts.Fatalf("%s holds %d blocks, want %d", args[0], got, want)
	}
}

// oneline asserts that the last stderr is exactly one line.
func oneline(ts *testscript.TestScript, neg bool, args []string) {
	s := ts.ReadFile("stderr")
	if n := strings.Count(s, "\n"); n != 1 || !strings.HasSuffix(s, "\n") {
		ts.Fatalf("stderr has %d lines, want exactly one: %q", n, s)
	}
}
