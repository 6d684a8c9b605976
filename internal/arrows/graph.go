package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// pkg is one package as `go list -json` prints it (only the fields the rules read).
type pkg struct {
	ImportPath string
	Name       string
	Imports    []string // production imports only (not the test files')
	DepOnly    bool     // listed only as a dependency of a matched package
	Module     *struct {
		Path string
		Main bool
	}
}

// ErrNoModule means the listing held no package of the main module.
var ErrNoModule = errors.New("no package of the main module listed (run in the module root)")

// decode reads the stream of JSON objects that `go list -json` prints.
func decode(r io.Reader) ([]pkg, error) {
	var pkgs []pkg
	dec := json.NewDecoder(r)
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

// graph is the import graph of the module and everything it links.
type graph struct {
	module string          // the main module's path
	pkgs   map[string]*pkg // by import path
	own    []string        // the module's packages matched by ./..., sorted
}

// newGraph indexes a listing. The main module is the one marked Main.
func newGraph(pkgs []pkg) (*graph, error) {
	g := &graph{pkgs: map[string]*pkg{}}
	for i := range pkgs {
		p := &pkgs[i]
		g.pkgs[p.ImportPath] = p
		if p.Module != nil && p.Module.Main {
			g.module = p.Module.Path
			if !p.DepOnly {
				g.own = append(g.own, p.ImportPath)
			}
		}
	}
	if g.module == "" {
		return nil, ErrNoModule
	}
	slices.Sort(g.own)
	return g, nil
}

// path is the import path of a package of the module given relative to its root.
func (g *graph) path(rel string) string { return g.module + "/" + rel }

// short names a package of the module relative to its root; others by full path.
func (g *graph) short(p string) string {
	if p == g.module {
		return "(module root)"
	}
	return strings.TrimPrefix(p, g.module+"/")
}

// ofProject reports whether p is a package of the module.
func (g *graph) ofProject(p string) bool { return under(p, g.module) }

// under reports whether p is prefix or a package below it.
func under(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// showChain prints an import chain as "a -> b -> c".
func (g *graph) showChain(chain []string) string {
	names := make([]string, len(chain))
	for i, p := range chain {
		names[i] = g.short(p)
	}
	return strings.Join(names, " -> ")
}

// chainTo finds, breadth first from root (included) over production imports, the
// packages that bad matches. It returns how many there are and the shortest import chain to the
// first one met (root first), or 0 and nil if root links none.
func (g *graph) chainTo(root string, bad func(string) bool) (int, []string) {
	parent := map[string]string{root: ""}
	queue := []string{root}
	var first string
	count := 0
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if bad(cur) {
			count++
			if first == "" {
				first = cur
			}
		}
		p := g.pkgs[cur]
		if p == nil {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := parent[imp]; !seen {
				parent[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	if first == "" {
		return 0, nil
	}
	var chain []string
	for p := first; p != ""; p = parent[p] {
		chain = append(chain, p)
	}
	slices.Reverse(chain)
	return count, chain
}
