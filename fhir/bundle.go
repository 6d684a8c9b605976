package fhir

import (
	"sort"
	"strconv"
)

// checkBundle enforces the Bundle rules the schema cannot: every fullUrl is
// absolute, and (bdl-7, except in history bundles) no two entries share a
// fullUrl or a resource type and id, unless their meta.versionId differ.
func checkBundle(w *walker, n *node) {
	entries := n.get("entry")
	if entries == nil || entries.kind != kindArray {
		return
	}
	history := n.text("type") == "history"
	urls, ids := map[string]int{}, map[string]int{}
	w.path.pushKey("entry")
	defer w.path.pop()
	for i, e := range entries.items {
		if e.kind != kindObject {
			continue
		}
		w.path.pushIndex(i)
		w.entry(e, i, history, urls, ids)
		w.path.pop()
	}
}

// entry checks one Bundle.entry against the entries before it.
func (w *walker) entry(e *node, i int, history bool, urls, ids map[string]int) {
	fullURL := e.text("fullUrl")
	if fullURL != "" && isFHIRString(fullURL) && !hasScheme(fullURL) {
		w.report(e.off, codeValue, "fullUrl '"+quote(fullURL)+"' is not absolute; use urn:uuid:…, urn:oid:… or an absolute URL")
	}
	if history {
		return
	}
	version := ""
	res := e.get("resource")
	if res != nil && res.kind == kindObject {
		if meta := res.get("meta"); meta != nil && meta.kind == kindObject {
			version = meta.text("versionId")
		}
	}
	if fullURL != "" {
		if j, dup := urls[fullURL+"|"+version]; dup {
			w.report(e.off, codeInvalid, "fullUrl '"+quote(fullURL)+"' is also used by entry["+strconv.Itoa(j)+"] (bdl-7)")
		} else {
			urls[fullURL+"|"+version] = i
		}
	}
	if res == nil || res.kind != kindObject || res.text("id") == "" {
		return
	}
	key := res.text("resourceType") + "/" + res.text("id")
	if j, dup := ids[key+"|"+version]; dup {
		w.report(e.off, codeInvalid, "resource "+quote(key)+" is also in entry["+strconv.Itoa(j)+"]")
	} else {
		ids[key+"|"+version] = i
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

// bundleOf builds the Bundle view of a validated Bundle tree.
func bundleOf(r *Resource, root *node) *Bundle {
	b := &Bundle{Resource: *r, BundleType: root.text("type")}
	entries := root.get("entry")
	if entries == nil {
		return b
	}
	b.Entries = make([]Entry, 0, len(entries.items))
	for _, e := range entries.items {
		en := Entry{FullURL: e.text("fullUrl")}
		if res := e.get("resource"); res != nil {
			en.Type, en.ID = res.text("resourceType"), res.text("id")
		}
		b.Entries = append(b.Entries, en)
	}
	return b
}
