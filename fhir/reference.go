package fhir

import "strings"

// checkReference validates Reference.reference. Accepted shapes:
//
//	#id                         a resource contained in the same resource ("#" alone: the container)
//	Type/id[/_history/vid]      relative to the server base; Type an R4 resource type
//	Type?query                  a conditional reference, resolved by the receiver
//	urn:uuid:<uuid>, urn:oid:<oid>
//	scheme:…                    any other absolute URL (http:, https:, …)
//
// Local references are resolved when the containing resource is done.
func checkReference(w *walker, n *node) {
	ref := n.get("reference")
	if ref == nil || ref.kind != kindString || !isFHIRString(ref.str) {
		return // reported as a string problem
	}
	s := ref.str
	if !w.referenceShape(s) {
		w.path.pushKey("reference")
		w.report(ref.off, codeValue, "'"+quote(s)+"' is not a valid reference; use #id, Type/id, Type?query, urn:uuid:…, urn:oid:… or an absolute URL")
		w.path.pop()
		return
	}
	if id, ok := strings.CutPrefix(s, "#"); ok && id != "" && len(w.scopes) > 0 {
		sc := w.scopes[len(w.scopes)-1]
		sc.refs = append(sc.refs, localRef{id: id, path: w.path.render(""), off: n.off})
	}
}

func (w *walker) referenceShape(s string) bool {
	switch {
	case strings.HasPrefix(s, "#"):
		return true // resolved against the contained ids (ref-1)
	case strings.HasPrefix(s, "urn:uuid:"):
		return isUUID(s[len("urn:uuid:"):])
	case strings.HasPrefix(s, "urn:oid:"):
		return isOID(s[len("urn:oid:"):])
	case hasScheme(s):
		return hasNoSpace(s)
	}
	if typ, query, ok := strings.Cut(s, "?"); ok {
		return w.sch.resources[typ] != nil && query != ""
	}
	parts := strings.Split(s, "/")
	switch {
	case len(parts) != 2 && (len(parts) != 4 || parts[2] != "_history" || !isID(parts[3])):
		return false
	}
	return w.sch.resources[parts[0]] != nil && isID(parts[1])
}

// hasScheme reports whether s starts with an RFC 3986 scheme and ':' and
// has something after it.
func hasScheme(s string) bool {
	i := strings.IndexByte(s, ':')
	if i < 1 || i == len(s)-1 {
		return false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (j == 0 || !(isDigit(c) || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// isUUID matches 8-4-4-4-12 hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !(isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isOID matches [0-2](.(0|[1-9][0-9]*))+.
func isOID(s string) bool {
	arcs := strings.Split(s, ".")
	if len(arcs) < 2 || len(arcs[0]) != 1 || arcs[0][0] < '0' || arcs[0][0] > '2' {
		return false
	}
	for _, a := range arcs[1:] {
		if !allDigits(a) || (len(a) > 1 && a[0] == '0') {
			return false
		}
	}
	return true
}

// resolveLocal reports local references that name no contained resource
// (ref-1).
func (w *walker) resolveLocal(sc *scope) {
	for _, r := range sc.refs {
		if !sc.contained[r.id] {
			w.issues.add(r.off, severityError, codeInvariant, r.path,
				"ref-1: local reference '#"+quote(r.id)+"' names no contained resource of this resource")
		}
	}
}
