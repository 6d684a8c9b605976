package fhir

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// collector gathers issues with the input offset each refers to (-1 when
// none), up to maxIssues.
type collector struct {
	list []located
}

type located struct {
	Issue
	off int
}

// full reports whether no more issues will be kept; validation stops early.
func (c *collector) full() bool { return len(c.list) >= maxIssues }

func (c *collector) add(off int, severity, code, path, msg string) {
	if c.full() {
		return
	}
	c.list = append(c.list, located{Issue{Severity: severity, Code: code, Path: path, Message: msg}, off})
}

// merge adds o's issues (o may be nil), as far as there is room.
func (c *collector) merge(o *collector) {
	if o == nil {
		return
	}
	for _, l := range o.list {
		if c.full() {
			return
		}
		c.list = append(c.list, l)
	}
}

// result orders the issues by position, fills in lines and columns from
// src and returns them as a *ValidationError, or nil when there are none.
func (c *collector) result(src string) error {
	if len(c.list) == 0 {
		return nil
	}
	sort.SliceStable(c.list, func(i, j int) bool { return c.list[i].off < c.list[j].off })
	var pos position
	out := make([]Issue, len(c.list))
	for i, l := range c.list {
		if l.off >= 0 {
			l.Line, l.Column = pos.advance(src, l.off)
		}
		out[i] = l.Issue
	}
	return &ValidationError{Issues: out}
}

// position walks forward through the input counting lines and columns;
// offsets must be visited in increasing order.
type position struct {
	off, line, lineStart int
}

// advance returns the 1-based line and column (in characters) of off.
func (p *position) advance(src string, off int) (line, col int) {
	off = min(off, len(src))
	if p.line == 0 {
		p.line = 1
	}
	for p.off < off {
		i := strings.IndexByte(src[p.off:off], '\n')
		if i < 0 {
			p.off = off
			break
		}
		p.off += i + 1
		p.line++
		p.lineStart = p.off
	}
	return p.line, utf8.RuneCountInString(src[p.lineStart:off]) + 1
}

// quote shortens a value for a message: at most 64 characters, one line.
func quote(s string) string {
	const limit = 64
	n := 0
	for i := range s {
		if n == limit {
			s = s[:i] + "…"
			break
		}
		n++
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
}
