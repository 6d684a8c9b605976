package fhir

import (
	"sort"
	"strconv"
	"strings"
)

// checkBundle enforces the Bundle rules the schema cannot: every fullUrl is
// absolute, and (bdl-7, except in history bundles) no two entries share a
// fullUrl or a resource type and id, unless their meta.versionId differ.
func checkBundle(w *walker, n *node) {
	entries := n.get("entry")
	if entries == nil || entries.kind != kindArray {
		return
	}
	var sums []entrySummary
	if w.stream != nil && entries == w.stream.array {
		sums = w.stream.entries
	} else {
		sums = make([]entrySummary, len(entries.items))
		for i, e := range entries.items {
			sums[i] = summarize(e)
		}
	}
	history := n.text("type") == "history"
	seen := entriesSeen{urls: map[[2]string]int{}, ids: map[[3]string]int{}}
	w.path.pushKey("entry")
	defer w.path.pop()
	for i, e := range sums {
		if !e.object {
			continue
		}
		w.path.pushIndex(i)
		w.entry(e, i, history, seen)
		w.path.pop()
	}
}

// entriesSeen indexes the entries checked so far: by fullUrl and version, and by
// resource type, id and version.
type entriesSeen struct {
	urls map[[2]string]int
	ids  map[[3]string]int
}

// entry checks one Bundle.entry against the entries before it.
func (w *walker) entry(e entrySummary, i int, history bool, seen entriesSeen) {
	if e.fullURL != "" && isFHIRString(e.fullURL) && !hasScheme(e.fullURL) {
		w.report(e.off, codeValue, "fullUrl '"+quote(e.fullURL)+"' is not absolute; use urn:uuid:…, urn:oid:… or an absolute URL")
	}
	if history {
		return
	}
	if e.fullURL != "" {
		k := [2]string{e.fullURL, e.version}
		if j, dup := seen.urls[k]; dup {
			w.report(e.off, codeInvalid, "fullUrl '"+quote(e.fullURL)+"' is also used by entry["+strconv.Itoa(j)+"] (bdl-7)")
		} else {
			seen.urls[k] = i
		}
	}
	if e.id == "" {
		return
	}
	k := [3]string{e.typ, e.id, e.version}
	if j, dup := seen.ids[k]; dup {
		w.report(e.off, codeInvalid, "resource "+quote(e.typ+"/"+e.id)+" is also in entry["+strconv.Itoa(j)+"]")
	} else {
		seen.ids[k] = i
	}
}

// PatientID returns the id of the bundle's Patient entry when there is
// exactly one, and it has an id.
func (b *Bundle) PatientID() (string, bool) {
	id, n := "", 0
	for _, e := range b.Entries {
		if e.Type == "Patient" {
			id, n = e.ID, n+1
		}
	}
	return id, n == 1 && id != ""
}

// ResourceTypes returns the sorted distinct resource types of the entries:
// the data classes the bundle holds, without any patient data.
func (b *Bundle) ResourceTypes() []string {
	seen := map[string]bool{}
	var types []string
	for _, e := range b.Entries {
		if e.Type != "" && !seen[e.Type] {
			seen[e.Type] = true
			types = append(types, e.Type)
		}
	}
	sort.Strings(types)
	return types
}

// bundleOf builds the Bundle view of a validated Bundle tree. Its strings are
// copies, not slices of Raw.
func bundleOf(r *Resource, t *tree) *Bundle {
	b := &Bundle{Resource: *r, BundleType: strings.Clone(t.root.text("type"))}
	entries := t.root.get("entry")
	if entries == nil {
		return b
	}
	sums := t.stream.entries
	if entries != t.stream.array {
		sums = make([]entrySummary, len(entries.items))
		for i, e := range entries.items {
			sums[i] = summarize(e)
		}
	}
	types := map[string]string{}
	b.Entries = make([]Entry, len(sums))
	for i, e := range sums {
		typ, ok := types[e.typ]
		if !ok {
			typ = strings.Clone(e.typ)
			types[typ] = typ
		}
		b.Entries[i] = Entry{FullURL: strings.Clone(e.fullURL), Type: typ, ID: strings.Clone(e.id)}
	}
	return b
}
