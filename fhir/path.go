package fhir

import (
	"strconv"
	"strings"
)

// seg is one step of a path: a property name, or an array index when key
// is empty.
type seg struct {
	key string
	idx int
}

// path is the element being read or validated, kept as a stack so that a
// string is only built when an issue is reported.
type path struct{ segs []seg }

func (p *path) pushKey(k string) { p.segs = append(p.segs, seg{key: k}) }
func (p *path) pushIndex(i int)  { p.segs = append(p.segs, seg{idx: i}) }
func (p *path) pop()             { p.segs = p.segs[:len(p.segs)-1] }

func (p *path) clone() []seg { return append([]seg(nil), p.segs...) }

// render gives the FHIRPath-style form, "Patient.name[0].given[1]",
// prefixed by root (the resource type) when it is known.
func (p *path) render(root string) string {
	var b strings.Builder
	b.WriteString(root)
	for _, s := range p.segs {
		if s.key == "" {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.idx))
			b.WriteByte(']')
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}
