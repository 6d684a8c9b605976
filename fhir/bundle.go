package fhir

import (
	"sort"
	"strconv"
	"strings"
)

// checkBundle enforces the Bundle rules the schema cannot: every fullUrl is
// absolute; (bdl-7, except in history bundles) no two entries share a fullUrl or
// a resource type and id, unless their meta.versionId differ; the elements that
// depend on the Bundle's type (bdl-1 total, bdl-2 entry.search, bdl-3
// entry.request, bdl-4 entry.response), every entry has a resource, request or
// response (bdl-5); and Bundle.link names each paging relation at most once.
func checkBundle(w *walker, n *node) {
	typ := n.text("type")
	if !bundleTypes[typ] {
		typ = "" // missing or not a code (reported): judge no type-dependent rule
	}
	checkLinks(w, n.get("link"))
	if t := n.get("total"); t != nil && typ != "" && typ != "searchset" && typ != "history" {
		w.path.pushKey("total")
		w.report(t.off, codeInvariant, "bdl-1: total is only for a searchset or history Bundle, not a "+typ)
		w.path.pop()
	}
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
	seen := entriesSeen{urls: map[[2]string]int{}, ids: map[[3]string]int{}}
	w.path.pushKey("entry")
	defer w.path.pop()
	for i, e := range sums {
		if !e.object {
			continue
		}
		w.path.pushIndex(i)
		w.entry(e, i, typ == "history", seen)
		w.entryRules(e, typ)
		w.path.pop()
	}
}

// bundleTypes are the codes of Bundle.type.
var bundleTypes = setOf("document", "message", "transaction", "transaction-response", "batch",
	"batch-response", "history", "searchset", "collection")

// entryRules applies bdl-2..bdl-5 to one entry of a Bundle of type typ ("" when
// unknown: only bdl-5).
func (w *walker) entryRules(e entrySummary, typ string) {
	if !e.resource && !e.request && !e.response {
		w.report(e.off, codeInvariant, "bdl-5: an entry must have a resource, a request or a response")
	}
	if typ == "" {
		return
	}
	requests := typ == "batch" || typ == "transaction" || typ == "history"
	responses := typ == "batch-response" || typ == "transaction-response" || typ == "history"
	switch {
	case e.search && typ != "searchset":
		w.report(e.off, codeInvariant, "bdl-2: entry.search is only for a searchset Bundle, not a "+typ)
	case e.request && !requests:
		w.report(e.off, codeInvariant, "bdl-3: entry.request is only for a batch, transaction or history Bundle, not a "+typ)
	case !e.request && requests:
		w.report(e.off, codeInvariant, "bdl-3: every entry of a "+typ+" Bundle must have a request")
	case e.response && !responses:
		w.report(e.off, codeInvariant, "bdl-4: entry.response is only for a batch-response, transaction-response or history Bundle, not a "+typ)
	case !e.response && responses:
		w.report(e.off, codeInvariant, "bdl-4: every entry of a "+typ+" Bundle must have a response")
	}
}

// pagingRelations are the link relations that name one thing (R4 http.html#paging
// and search.html: the page itself, and the first, previous, next and last pages),
// so a Bundle carries each at most once; "prev" is the IANA synonym of "previous".
var pagingRelations = map[string]string{"self": "self", "first": "first", "previous": "previous",
	"prev": "previous", "next": "next", "last": "last"}

// checkLinks refuses a Bundle.link that repeats a paging relation: two "next"
// pages leave a client to guess which one the server meant.
func checkLinks(w *walker, links *node) {
	if links == nil || links.kind != kindArray {
		return
	}
	seen := map[string]int{}
	w.path.pushKey("link")
	defer w.path.pop()
	for i, l := range links.items {
		rel := l.get("relation")
		if rel == nil || rel.kind != kindString {
			continue
		}
		k, ok := pagingRelations[rel.str]
		if !ok {
			continue
		}
		if j, dup := seen[k]; dup {
			w.path.pushIndex(i)
			w.path.pushKey("relation")
			w.report(rel.off, codeInvalid, "link relation '"+quote(rel.str)+"' is also used by link["+strconv.Itoa(j)+"]; a Bundle has at most one self, first, previous, next and last link")
			w.path.pop()
			w.path.pop()
			continue
		}
		seen[k] = i
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
