package main

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// testdata/layout.json is `go list -deps -json` output, written by hand, for a module
// example.com/med laid out as DESIGN.md wants: every arrow holds.
const fixtureModule = "example.com/med"

func loadFixture(t *testing.T) *graph {
	t.Helper()
	f, err := os.Open("testdata/layout.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, err := decode(f)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGraph(pkgs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// addImport makes from (module-relative) import imp: module-relative ("" is the module
// root), testing, or a full path if its first element has a dot.
func addImport(t *testing.T, g *graph, from, imp string) {
	t.Helper()
	switch first, _, _ := strings.Cut(imp, "/"); {
	case imp == "":
		imp = g.module
	case !strings.Contains(first, ".") && imp != "testing":
		imp = g.path(imp)
	}
	p, ok := g.pkgs[g.path(from)]
	if !ok {
		t.Fatalf("fixture has no package %s", from)
	}
	if _, ok := g.pkgs[imp]; !ok {
		t.Fatalf("fixture has no package %s", imp)
	}
	p.Imports = append(p.Imports, imp)
}

// verdicts runs every rule and returns the broken lines by rule name, and the
// missing subjects.
func verdicts(g *graph) (map[string][]string, []string) {
	broken := map[string][]string{}
	var missing []string
	for _, r := range rules() {
		res := r.check(g)
		if res.missing != "" {
			missing = append(missing, res.missing)
		}
		if len(res.broken) > 0 {
			broken[r.name] = res.broken
		}
	}
	return broken, missing
}

func TestFixtureLayoutPasses(t *testing.T) {
	g := loadFixture(t)
	if g.module != fixtureModule {
		t.Fatalf("module = %q, want %q", g.module, fixtureModule)
	}
	broken, missing := verdicts(g)
	if len(broken) > 0 || len(missing) > 0 {
		t.Fatalf("the target layout breaks arrows: broken %v, missing %v", broken, missing)
	}
}

func TestBrokenArrows(t *testing.T) {
	const (
		nodeOnly    = "(only cmd/..., internal/demo, bench/... and *test packages may)"
		auditorPeer = "node/auditor links github.com/libp2p/go-libp2p/core/peer via node/auditor -> node/chain -> github.com/cometbft/cometbft/node -> github.com/cometbft/cometbft/lp2p -> github.com/libp2p/go-libp2p/core/peer (and 1 more such packages)"
	)
	cases := []struct {
		name      string
		from, imp string
		want      map[string][]string
	}{
		{"crypto imports consent", "crypto", "consent", map[string][]string{
			"crypto-alone": {"crypto imports consent (crypto may import nothing of the project)"},
			// consent -> crypto -> consent is a cycle go build would refuse; the
			// rule itself needs only the direct import.
		}},
		{"fhir imports the module root", "fhir", "", map[string][]string{
			"fhir-alone": {"fhir imports (module root) (fhir may import nothing of the project)"},
		}},
		{"storage imports crypto", "storage", "crypto", map[string][]string{
			"storage-alone": {"storage imports crypto (storage may import nothing of the project)"},
		}},
		{"consent imports fhir", "consent", "fhir", map[string][]string{
			"consent-alone": {"consent imports fhir (consent may import only crypto of the project)"},
		}},
		{"consent imports CometBFT", "consent", "github.com/cometbft/cometbft/types", map[string][]string{
			"consent-alone": {"consent links github.com/cometbft/cometbft/types via consent -> github.com/cometbft/cometbft/types"},
		}},
		{"consent links boxo through crypto", "crypto", "github.com/ipfs/boxo/blockstore", map[string][]string{
			"consent-alone": {"consent links github.com/ipfs/boxo/blockstore via consent -> crypto -> github.com/ipfs/boxo/blockstore"},
			"auditor":       {"node/auditor links github.com/ipfs/boxo/blockstore via node/auditor -> crypto -> github.com/ipfs/boxo/blockstore"},
		}},
		{"consent links libp2p through crypto", "crypto", "github.com/libp2p/go-buffer-pool", map[string][]string{
			"consent-alone": {"consent links github.com/libp2p/go-buffer-pool via consent -> crypto -> github.com/libp2p/go-buffer-pool"},
			"auditor":       {"node/auditor links github.com/libp2p/go-buffer-pool via node/auditor -> crypto -> github.com/libp2p/go-buffer-pool"},
		}},
		{"chain imports node", "node/chain", "node", map[string][]string{
			"node-importers": {"node/chain imports node " + nodeOnly},
		}},
		{"auditor imports node", "node/auditor", "node", map[string][]string{
			"node-importers": {"node/auditor imports node " + nodeOnly},
			// node links libp2p (two packages) and, through storage, boxo.
			"auditor": {"node/auditor links node via node/auditor -> node (and 3 more such packages)"},
		}},
		{"fhirtest imports node", "fhir/fhirtest", "node", nil}, // *test packages may
		{"binary links the kvstore", "cmd/medledger", "github.com/cometbft/cometbft/abci/example/kvstore", map[string][]string{
			"binary-kvstore": {"cmd/medledger links cmd/medledger, which imports github.com/cometbft/cometbft/abci/example/kvstore, via cmd/medledger"},
		}},
		{"binary links bench", "internal/demo", "bench", map[string][]string{
			"binary-kvstore": {"cmd/medledger links bench, which imports github.com/cometbft/cometbft/abci/example/kvstore, via cmd/medledger -> internal/demo -> bench"},
			"binary-bench":   {"cmd/medledger links bench via cmd/medledger -> internal/demo -> bench"},
		}},
		{"binary links a bench subpackage", "cmd/medledger", "bench/cmd/medledger-bench", map[string][]string{
			"binary-kvstore": {"cmd/medledger links bench, which imports github.com/cometbft/cometbft/abci/example/kvstore, via cmd/medledger -> bench/cmd/medledger-bench -> bench"},
			"binary-bench":   {"cmd/medledger links bench/cmd/medledger-bench via cmd/medledger -> bench/cmd/medledger-bench (and 1 more such packages)"},
		}},
		// CometBFT's proxy imports the kvstore: only our own imports of it count.
		{"binary links CometBFT's node", "cmd/medledger", "github.com/cometbft/cometbft/node", nil},
		{"auditor imports chain", "node/auditor", "node/chain", map[string][]string{
			"auditor": {auditorPeer},
		}},
		{"auditor imports boxo", "node/auditor", "github.com/ipfs/boxo/blockstore", map[string][]string{
			"auditor": {"node/auditor links github.com/ipfs/boxo/blockstore via node/auditor -> github.com/ipfs/boxo/blockstore"},
		}},
		{"storage imports testing", "storage", "testing", map[string][]string{
			"testing": {"storage imports testing in production code (only *test packages may)"},
		}},
		{"the CLI imports testing", "cmd/medledger", "testing", map[string][]string{
			"testing": {"cmd/medledger imports testing in production code (only *test packages may)"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := loadFixture(t)
			addImport(t, g, c.from, c.imp)
			broken, missing := verdicts(g)
			if len(missing) > 0 {
				t.Fatalf("missing %v, want none", missing)
			}
			if len(broken) != len(c.want) {
				t.Errorf("broken rules = %v, want %v", broken, c.want)
			}
			for name, want := range c.want {
				if got := broken[name]; !slices.Equal(got, want) {
					t.Errorf("rule %s:\n got %q\nwant %q", name, got, want)
				}
			}
		})
	}
}

// An absent subject makes its rule pending, and pending does not fail the run.
func TestAbsentPackageIsPending(t *testing.T) {
	g := loadFixture(t)
	absent := g.path("node/auditor")
	delete(g.pkgs, absent)
	g.own = slices.DeleteFunc(g.own, func(p string) bool { return p == absent })
	var out bytes.Buffer
	if report(&out, g, rules(), nil) {
		t.Fatalf("a pending rule failed the run:\n%s", out.String())
	}
	want := "arrows: pending auditor: node/auditor does not exist yet\n" +
		"arrows: 8 rules enforced, 1 pending, 0 not enforced\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestReportFailsOnlyEnforcedRules(t *testing.T) {
	g := loadFixture(t)
	addImport(t, g, "node/chain", "node")

	var out bytes.Buffer
	if !report(&out, g, rules(), nil) {
		t.Fatalf("a broken arrow passed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "arrows: FAIL node-importers: node/chain imports node ") {
		t.Fatalf("no FAIL line naming the import:\n%s", out.String())
	}

	out.Reset()
	if report(&out, g, rules(), map[string]bool{"node-importers": true, "auditor": true}) {
		t.Fatalf("a skipped rule failed the run:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "arrows: not enforced node-importers: node/chain imports node ") ||
		!strings.HasSuffix(out.String(), "arrows: 7 rules enforced, 0 pending, 2 not enforced\n") {
		t.Fatalf("skipped rules not reported as such:\n%s", out.String())
	}
}

func TestUnknownSkipNameFails(t *testing.T) {
	var out bytes.Buffer
	if !report(&out, loadFixture(t), rules(), splitNames(" auditor, node-importer ")) {
		t.Fatalf("a misspelt -skip passed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "arrows: FAIL -skip names no rule: node-importer\n") {
		t.Fatalf("the misspelt name is not reported:\n%s", out.String())
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	if _, err := decode(strings.NewReader(`{"ImportPath": "a"} {`)); err == nil {
		t.Fatal("truncated go list output decoded without error")
	}
}

func TestNoMainModule(t *testing.T) {
	pkgs, err := decode(strings.NewReader(`{"ImportPath": "fmt", "DepOnly": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newGraph(pkgs); !errors.Is(err, ErrNoModule) {
		t.Fatalf("err = %v, want ErrNoModule", err)
	}
}
