package fhir

import "strings"

// walker validates a parsed tree against the compiled schema and the rules
// beyond it, reporting issues at FHIR paths.
type walker struct {
	sch    *schema
	path   path
	issues *collector
	scopes []*scope
	stream *bundleStream // the top-level Bundle's entries, validated as they were read; or nil
}

// scope is one containing resource: the ids of its contained resources and
// the local ("#id") references made anywhere inside it, resolved when the
// resource is done.
type scope struct {
	contained map[string]bool
	refs      []localRef
}

type localRef struct {
	id, path string
	off      int
}

// report adds an error at the current path.
func (w *walker) report(off int, code, msg string) {
	if !w.issues.full() {
		w.issues.add(off, severityError, code, w.path.render(""), msg)
	}
}

// document validates the top-level value, which must be a resource.
func (w *walker) document(n *node) {
	if n.kind != kindObject {
		w.issues.add(n.off, severityFatal, codeStructure, "",
			"the top-level JSON value must be an object (a FHIR resource), not "+n.kind.String())
		return
	}
	w.resource(n, false, true)
}

// resource validates a resource found by its resourceType. A contained
// resource joins the scope of its container; any other opens its own.
func (w *walker) resource(n *node, contained, top bool) {
	if n.kind != kindObject {
		w.report(n.off, codeStructure, "must be an object (a resource), not "+n.kind.String())
		return
	}
	d := w.resourceDef(n)
	if d == nil {
		return
	}
	if top {
		w.path.pushKey(n.text("resourceType"))
		defer w.path.pop()
	}
	if contained {
		if id := n.text("id"); id != "" && len(w.scopes) > 0 {
			w.scopes[len(w.scopes)-1].contained[id] = true
		}
		w.object(n, d)
		return
	}
	sc := &scope{contained: map[string]bool{}}
	if top && w.stream != nil && w.stream.scope != nil {
		sc = w.stream.scope // holds the references made in the streamed entries
	}
	w.scopes = append(w.scopes, sc)
	w.object(n, d)
	w.resolveLocal(w.scopes[len(w.scopes)-1])
	w.scopes = w.scopes[:len(w.scopes)-1]
}

// resourceDef dispatches on resourceType (the schema's discriminator).
func (w *walker) resourceDef(n *node) *def {
	rt := n.get("resourceType")
	switch {
	case rt == nil:
		w.report(n.off, codeRequired, "missing 'resourceType'; every resource must name its type")
	case rt.kind != kindString:
		w.report(rt.off, codeStructure, "'resourceType' must be a string, not "+rt.kind.String())
	case w.sch.resources[rt.str] == nil:
		w.report(rt.off, codeInvalid, "unknown resource type '"+quote(rt.str)+"' (not an R4 resource)")
	default:
		return w.sch.resources[rt.str]
	}
	return nil
}

// object validates the members of n against complex definition d.
func (w *walker) object(n *node, d *def) {
	for i := range n.members {
		if w.issues.full() {
			return
		}
		m := &n.members[i]
		p := d.props[m.key]
		if p == nil {
			w.report(m.off, codeStructure, "unrecognized property '"+quote(m.key)+"'")
			continue
		}
		w.path.pushKey(m.key)
		w.member(n, m, p)
		w.path.pop()
	}
	for _, r := range d.required {
		if !hasAny(n, r.anyOf) {
			w.report(n.off, codeRequired, "missing required element '"+r.name+"'")
		}
	}
	if d.check != nil {
		d.check(w, n)
	}
}

func hasAny(n *node, names []string) bool {
	for _, name := range names {
		if n.get(name) != nil {
			return true
		}
	}
	return false
}

// member validates one property value, single or repeating.
func (w *walker) member(parent *node, m *member, p *prop) {
	v := m.val
	contained := m.key == "contained"
	switch {
	case w.stream != nil && w.stream.array != nil && v == w.stream.array:
		w.stream.finish(w, parent)
	case p.array && v.kind != kindArray:
		w.report(v.off, codeStructure, "must be an array, not "+v.kind.String())
	case p.array && len(v.items) == 0:
		w.report(v.off, codeInvalid, "empty array; omit the property instead")
	case p.array:
		for i, it := range v.items {
			w.path.pushIndex(i)
			if it.kind == kindNull {
				w.nullItem(parent, m.key, i, it)
			} else {
				w.value(it, p.def, contained)
			}
			w.path.pop()
		}
	case v.kind == kindArray:
		w.report(v.off, codeStructure, "must be a single value, not an array")
	case v.kind == kindNull:
		w.report(v.off, codeInvalid, "null is not allowed; omit the property instead")
	default:
		w.value(v, p.def, contained)
	}
}

// nullItem accepts a null in a repeating primitive only as a placeholder
// that keeps it aligned with its companion: "given": ["a", null] with
// "_given": [null, {...}].
func (w *walker) nullItem(parent *node, key string, i int, it *node) {
	partner := "_" + key
	if k, ok := strings.CutPrefix(key, "_"); ok {
		partner = k
	}
	own, other := parent.get(key), parent.get(partner)
	if other != nil && other.kind == kindArray && len(other.items) == len(own.items) && other.items[i].kind != kindNull {
		return
	}
	w.report(it.off, codeInvalid, "null is allowed in an array only where the '"+partner+"' array has a value at the same index")
}

// value validates a single (non-null) value against d.
func (w *walker) value(v *node, d *def, contained bool) {
	switch d.kind {
	case defComplex:
		switch {
		case v.kind != kindObject:
			w.report(v.off, codeStructure, "must be an object, not "+v.kind.String())
		case len(v.members) == 0:
			w.report(v.off, codeInvalid, "empty object; an element must have a value or children (ele-1)")
		default:
			w.object(v, d)
		}
	case defResource:
		w.resource(v, contained, false)
	case defCode:
		w.code(v, d)
	default:
		w.primitive(v, d)
	}
}

// code validates a value bound to a required code list (an enum).
func (w *walker) code(v *node, d *def) {
	if v.kind != kindString {
		w.report(v.off, codeStructure, "must be a string (a code), not "+v.kind.String())
		return
	}
	for _, e := range d.enum {
		if v.str == e {
			return
		}
	}
	allowed := d.enum
	more := ""
	if len(allowed) > 12 {
		allowed, more = allowed[:12], ", …"
	}
	w.report(v.off, codeValue, "'"+quote(v.str)+"' is not an allowed code; allowed: "+strings.Join(allowed, ", ")+more)
}
