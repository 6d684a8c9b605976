package fhir

// bundleStream validates the items of a Bundle's top-level "entry" array as the
// parser reads them, so that the tree never holds more than one entry. What the
// checks over all entries need (bdl-7, the null placeholders) is kept per entry
// as a few slices of the input, and finished when the Bundle's walk reaches its
// "entry" property. Until the top-level resourceType is known the entries are
// taken to be a Bundle's; if it is not "Bundle", the input is parsed again
// without a stream.
type bundleStream struct {
	w       *walker // over entries: path Bundle.entry, scope the Bundle's
	def     *def    // Bundle.entry
	scope   *scope  // the Bundle's: local references made in its entries
	issues  *collector
	seen    bool           // a top-level "entry" property was read
	array   *node          // the streamed "entry" array (first occurrence), or nil
	entries []entrySummary // one per item, in order
}

// entrySummary is what the checks over all of a Bundle's entries need of one.
type entrySummary struct {
	off                       int
	object, null              bool
	fullURL, typ, id, version string
	// which of resource, request, response and search the entry has (bdl-2..5)
	resource, request, response, search bool
}

func newBundleStream(sch *schema) *bundleStream {
	s := &bundleStream{scope: &scope{contained: map[string]bool{}}, issues: &collector{}}
	if b := sch.resources["Bundle"]; b != nil && b.props["entry"] != nil {
		s.def = b.props["entry"].def
	}
	s.w = &walker{sch: sch, issues: s.issues, scopes: []*scope{s.scope}}
	s.w.path.pushKey("Bundle")
	s.w.path.pushKey("entry")
	return s
}

// sink is called for each top-level "entry" property. The first one's items are
// validated as Bundle entries (first is true); a duplicate's are only read and
// dropped (the parser reports the duplicate). Nil: do not stream (a schema
// without Bundle.entry, which the embedded one has).
func (s *bundleStream) sink() (each func(int, *node), first bool) {
	switch {
	case s.def == nil:
		return nil, false
	case s.seen:
		return func(int, *node) {}, false
	}
	s.seen = true
	return s.entry, true
}

// entry validates item i as a Bundle.entry and summarises it.
func (s *bundleStream) entry(i int, e *node) {
	s.entries = append(s.entries, summarize(e))
	if e.kind == kindNull {
		return // judged against "_entry" when the Bundle is walked
	}
	s.w.path.pushIndex(i)
	s.w.value(e, s.def, false)
	s.w.path.pop()
}

// summarize keeps what checkEntries and Bundle.Entries need of entry e.
func summarize(e *node) entrySummary {
	sum := entrySummary{off: e.off, object: e.kind == kindObject, null: e.kind == kindNull, fullURL: e.text("fullUrl"),
		resource: e.get("resource") != nil, request: e.get("request") != nil, response: e.get("response") != nil, search: e.get("search") != nil}
	res := e.get("resource")
	if res == nil || res.kind != kindObject {
		return sum
	}
	sum.typ, sum.id = res.text("resourceType"), res.text("id")
	if meta := res.get("meta"); meta != nil && meta.kind == kindObject {
		sum.version = meta.text("versionId")
	}
	return sum
}

// finish does for the streamed array what walker.member does for an array
// property, given the Bundle node parent now that it is complete.
func (s *bundleStream) finish(w *walker, parent *node) {
	if len(s.entries) == 0 {
		w.report(s.array.off, codeInvalid, "empty array; omit the property instead")
		return
	}
	partner := parent.get("_entry")
	for i, e := range s.entries {
		if !e.null {
			continue
		}
		if partner != nil && partner.kind == kindArray && len(partner.items) == len(s.entries) && partner.items[i].kind != kindNull {
			continue
		}
		w.path.pushIndex(i)
		w.report(e.off, codeInvalid, "null is allowed in an array only where the '_entry' array has a value at the same index")
		w.path.pop()
	}
}
