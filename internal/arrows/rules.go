package main

import (
	"fmt"
	"slices"
	"strings"
)

// rule is one arrow of DESIGN.md, checked over the import graph.
type rule struct {
	name  string // what -skip names
	check func(*graph) result
}

// result is a rule's verdict: broken lists one line per broken arrow; missing names
// the subject package when it does not exist yet (the rule is then pending).
type result struct {
	missing string
	broken  []string
}

// External module prefixes that stay out of the consent state machine and the auditor.
const (
	cometbft = "github.com/cometbft"
	libp2p   = "github.com/libp2p"
	boxo     = "github.com/ipfs/boxo"
	kvstore  = "github.com/cometbft/cometbft/abci/example/kvstore"
)

// rules lists the arrows in the order they are reported.
func rules() []rule {
	return []rule{
		{"crypto-alone", importsNoProject("crypto")},
		{"fhir-alone", importsNoProject("fhir")},
		{"storage-alone", importsNoProject("storage")},
		{"consent-alone", consentAlone},
		{"node-importers", nodeImporters},
		{"binary-kvstore", binaryKVStore},
		{"binary-bench", linksNone("cmd/medledger", func(g *graph, p string) bool { return under(p, g.path("bench")) })},
		{"auditor", linksNone("node/auditor", auditorForbids)},
		{"testing", noTestingInProduction},
	}
}

// importsNoProject: the package at rel imports no package of the module.
func importsNoProject(rel string) func(*graph) result {
	return func(g *graph) result {
		subject := g.path(rel)
		p, ok := g.pkgs[subject]
		if !ok {
			return result{missing: subject}
		}
		var res result
		for _, imp := range p.Imports {
			if g.ofProject(imp) {
				res.broken = append(res.broken, fmt.Sprintf("%s imports %s (%s may import nothing of the project)", rel, g.short(imp), rel))
			}
		}
		return res
	}
}

// consentAlone: consent imports only crypto of the module, and links no CometBFT,
// libp2p or boxo package, directly or through crypto.
func consentAlone(g *graph) result {
	subject := g.path("consent")
	p, ok := g.pkgs[subject]
	if !ok {
		return result{missing: subject}
	}
	var res result
	for _, imp := range p.Imports {
		if g.ofProject(imp) && imp != g.path("crypto") {
			res.broken = append(res.broken, fmt.Sprintf("consent imports %s (consent may import only crypto of the project)", g.short(imp)))
		}
	}
	for _, prefix := range []string{cometbft, libp2p, boxo} {
		if line := linkLine(g, subject, func(p string) bool { return under(p, prefix) }); line != "" {
			res.broken = append(res.broken, line)
		}
	}
	return res
}

// nodeImporters: no production package imports node except the CLI, the demo, the
// benchmarks and *test packages (test files are not production imports).
func nodeImporters(g *graph) result {
	target := g.path("node")
	if _, ok := g.pkgs[target]; !ok {
		return result{missing: target}
	}
	var res result
	for _, path := range g.own {
		p := g.pkgs[path]
		if mayImportNode(g, p) {
			continue
		}
		for _, imp := range p.Imports {
			if imp == target {
				res.broken = append(res.broken, fmt.Sprintf("%s imports node (only cmd/..., internal/demo, bench/... and *test packages may)", g.short(path)))
			}
		}
	}
	return res
}

// mayImportNode is the allow-list of nodeImporters.
func mayImportNode(g *graph, p *pkg) bool {
	return under(p.ImportPath, g.path("cmd")) ||
		under(p.ImportPath, g.path("internal/demo")) ||
		under(p.ImportPath, g.path("bench")) ||
		isTestPackage(p)
}

// isTestPackage reports whether p is a test-support package (named *test).
func isTestPackage(p *pkg) bool { return strings.HasSuffix(p.Name, "test") }

// auditorForbids: the auditor links no libp2p, no boxo and not node itself.
func auditorForbids(g *graph, p string) bool {
	return under(p, libp2p) || under(p, boxo) || p == g.path("node")
}

// linksNone: the package at rel links no package that bad matches.
func linksNone(rel string, bad func(*graph, string) bool) func(*graph) result {
	return func(g *graph) result {
		subject := g.path(rel)
		if _, ok := g.pkgs[subject]; !ok {
			return result{missing: subject}
		}
		line := linkLine(g, subject, func(p string) bool { return bad(g, p) })
		if line == "" {
			return result{}
		}
		return result{broken: []string{line}}
	}
}

// linkLine describes what subject links that bad matches: the first such package, the
// import chain that brings it in, and how many more there are; "" if none.
func linkLine(g *graph, subject string, bad func(string) bool) string {
	n, chain := g.chainTo(subject, bad)
	if n == 0 {
		return ""
	}
	line := fmt.Sprintf("%s links %s via %s", g.short(subject), g.short(chain[len(chain)-1]), g.showChain(chain))
	if n > 1 {
		line += fmt.Sprintf(" (and %d more such packages)", n-1)
	}
	return line
}

// binaryKVStore: no package of the project that the product binary links imports
// CometBFT's example kvstore. (CometBFT's own proxy package imports it for its
// built-in apps, so `go list -deps` of any binary running a CometBFT node lists it;
// the linker drops it unless something calls it, which .ci/run checks on the binary.)
func binaryKVStore(g *graph) result {
	subject := g.path("cmd/medledger")
	if _, ok := g.pkgs[subject]; !ok {
		return result{missing: subject}
	}
	importsKV := func(p string) bool {
		q, ok := g.pkgs[p]
		return ok && g.ofProject(p) && slices.ContainsFunc(q.Imports, func(imp string) bool { return under(imp, kvstore) })
	}
	n, chain := g.chainTo(subject, importsKV)
	if n == 0 {
		return result{}
	}
	line := fmt.Sprintf("cmd/medledger links %s, which imports %s, via %s", g.short(chain[len(chain)-1]), kvstore, g.showChain(chain))
	return result{broken: []string{line}}
}

// noTestingInProduction: no production package of the module imports testing (or a
// testing/... package) except test-support packages named *test.
func noTestingInProduction(g *graph) result {
	var res result
	for _, path := range g.own {
		p := g.pkgs[path]
		if isTestPackage(p) {
			continue
		}
		for _, imp := range p.Imports {
			if under(imp, "testing") {
				res.broken = append(res.broken, fmt.Sprintf("%s imports %s in production code (only *test packages may)", g.short(path), imp))
			}
		}
	}
	return res
}
