// Command arrows checks the dependency arrows of DESIGN.md ("Dependency direction")
// against `go list -deps -json ./...` run in the module root:
//
//   - crypto, fhir and storage import nothing of the project;
//   - consent imports only crypto of the project and links no CometBFT, libp2p or boxo;
//   - nothing imports node but cmd/..., internal/demo, bench/... and *test packages
//     (test files may import it: only production imports count);
//   - the product binary (cmd/medledger) links nothing under bench/ and no package of
//     ours that imports CometBFT's example kvstore (CometBFT's proxy package imports it,
//     so it is always among the binary's deps; .ci/run checks the linker dropped it);
//   - the auditor (node/auditor) links no libp2p, no boxo and not node;
//   - no production package imports testing, except packages named *test.
//
// Each broken arrow is one line naming the package and the import (or the chain of
// imports) that breaks it. A rule whose subject package does not exist is reported as
// pending and passes. Rules named in -skip are checked and reported but do not fail the
// run: they are the arrows a layout change has not reached yet. The exit status is 1 if
// an enforced rule is broken, 2 if the packages cannot be listed.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

func main() {
	skip := flag.String("skip", "", "comma-separated rule names to report without failing")
	flag.Parse()
	pkgs, err := goList()
	if err != nil {
		fmt.Fprintln(os.Stderr, "arrows:", err)
		os.Exit(2)
	}
	g, err := newGraph(pkgs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "arrows:", err)
		os.Exit(2)
	}
	if report(os.Stdout, g, rules(), splitNames(*skip)) {
		os.Exit(1)
	}
}

// goList lists every package of the module and all their dependencies.
func goList() ([]pkg, error) {
	cmd := exec.Command("go", "list", "-deps",
		"-json=ImportPath,Name,Imports,Module,DepOnly", "./...")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	return decode(strings.NewReader(string(out)))
}

// splitNames parses the -skip flag.
func splitNames(s string) map[string]bool {
	names := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names[n] = true
		}
	}
	return names
}

// report runs every rule and prints one line per broken arrow, one per pending rule
// and a summary. It returns true if an enforced rule is broken. A skip name that is no
// rule is itself a failure, so a typo cannot silently disable a check.
func report(w io.Writer, g *graph, rs []rule, skip map[string]bool) (failed bool) {
	known := map[string]bool{}
	var enforced, pending, waived int
	for _, r := range rs {
		known[r.name] = true
		res := r.check(g)
		switch {
		case res.missing != "":
			pending++
			fmt.Fprintf(w, "arrows: pending %s: %s does not exist yet\n", r.name, g.short(res.missing))
		case skip[r.name]:
			waived++
			for _, v := range res.broken {
				fmt.Fprintf(w, "arrows: not enforced %s: %s\n", r.name, v)
			}
		default:
			enforced++
			for _, v := range res.broken {
				fmt.Fprintf(w, "arrows: FAIL %s: %s\n", r.name, v)
				failed = true
			}
		}
	}
	for name := range skip {
		if !known[name] {
			fmt.Fprintf(w, "arrows: FAIL -skip names no rule: %s\n", name)
			failed = true
		}
	}
	fmt.Fprintf(w, "arrows: %d rules enforced, %d pending, %d not enforced\n", enforced, pending, waived)
	return failed
}
