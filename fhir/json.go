package fhir

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// kind is the JSON type of a node.
type kind uint8

const (
	kindNull kind = iota
	kindFalse
	kindTrue
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindFalse, kindTrue:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindArray:
		return "an array"
	}
	return "an object"
}

// node is one JSON value with the offset of its first byte in the input.
// Strings hold their decoded value, numbers their literal text (so that
// FHIR's decimal precision and the schema's patterns see what was written).
type node struct {
	kind    kind
	off     int
	str     string
	members []member // objects, in input order, duplicates dropped
	items   []*node  // arrays
}

// member is one object property; off is the offset of its key.
type member struct {
	key string
	off int
	val *node
}

// get returns the value of property key, or nil.
func (n *node) get(key string) *node {
	for i := range n.members {
		if n.members[i].key == key {
			return n.members[i].val
		}
	}
	return nil
}

// text returns the value of string property key, or "".
func (n *node) text(key string) string {
	if v := n.get(key); v != nil && v.kind == kindString {
		return v.str
	}
	return ""
}

// parser is a strict JSON (RFC 8259) reader that builds a node tree. It
// tracks the FHIR path of the value being read so that a syntax error can
// say where it happened, rejects duplicate keys (which encoding/json would
// silently merge) and bounds nesting depth and the values held in the tree.
//
// With a stream, the items of the top-level "entry" array are not kept in the
// tree: each is handed to the stream as soon as it is read, then dropped, so a
// Bundle's tree holds one entry at a time.
type parser struct {
	src       string
	pos       int
	depth     int
	maxDepth  int
	values    int // JSON values in the tree (one entry's and the top level's when streaming)
	maxValues int
	path      path
	root      string // top-level resourceType once read, for paths
	issues    *collector
	failed    bool
	dups      []pendingDup
	stream    *bundleStream
	arena     *arena // lends the slabs while a streamed entry is read
	entries   arena

	nodes   []node // slabs: one allocation for many values
	members []member
	items   []*node
	scratch []member
	iscr    []*node
}

// pendingDup is a duplicate key whose path is rendered once the top-level
// resourceType is known (it may come after the duplicate).
type pendingDup struct {
	segs []seg
	off  int
	key  string
}

const (
	slabNodes   = 1024
	slabMembers = 1024
	maxDepthCap = 10000
)

func newParser(src string, lim Limits, c *collector) *parser {
	return &parser{src: src, maxDepth: lim.MaxDepth, maxValues: lim.MaxValues, issues: c}
}

// parse reads exactly one top-level JSON value. It returns nil after a
// syntax error or a limit, which it has reported.
func (p *parser) parse() *node {
	p.skipSpace()
	n := p.value()
	if p.failed {
		return nil
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		p.path.segs, p.root = nil, "" // the document as a whole
		p.syntax("unexpected " + p.describe(p.pos) + " after the end of the top-level JSON value")
		return nil
	}
	for _, d := range p.dups {
		c := path{segs: d.segs}
		p.issues.add(d.off, severityError, codeStructure, c.render(p.root),
			"duplicate property '"+quote(d.key)+"'; each property may appear once")
	}
	return n
}

// fail records a fatal issue at off with the path reached so far.
func (p *parser) fail(off int, code, msg string) {
	if p.failed {
		return
	}
	p.failed = true
	p.issues.add(off, severityFatal, code, p.path.render(p.root), msg)
}

func (p *parser) syntax(msg string) { p.fail(p.pos, codeStructure, "malformed JSON: "+msg) }

// describe names the input at off for an error message.
func (p *parser) describe(off int) string {
	if off >= len(p.src) {
		return "end of input"
	}
	r, _ := utf8.DecodeRuneInString(p.src[off:])
	if r == utf8.RuneError || r < 0x20 {
		return "byte 0x" + strconv.FormatUint(uint64(p.src[off]), 16)
	}
	return "'" + string(r) + "'"
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) newNode(k kind, off int) *node {
	if len(p.nodes) == 0 {
		p.nodes = p.nodeSlab()
	}
	n := &p.nodes[0]
	p.nodes = p.nodes[1:]
	n.kind, n.off = k, off
	return n
}

// count counts one more value in the tree; false (reported) past MaxValues.
func (p *parser) count() bool {
	p.values++
	if p.values > p.maxValues {
		p.fail(p.pos, codeTooCostly, "more than "+strconv.Itoa(p.maxValues)+" JSON values in one resource (Limits.MaxValues); split it or raise the limit")
		return false
	}
	return true
}

func (p *parser) value() *node {
	if !p.count() {
		return nil
	}
	if p.pos >= len(p.src) {
		p.syntax("unexpected end of input; a value was expected")
		return nil
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		off := p.pos
		s, ok := p.string()
		if !ok {
			return nil
		}
		n := p.newNode(kindString, off)
		n.str = s
		return n
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", kindTrue)
	case c == 'f':
		return p.literal("false", kindFalse)
	case c == 'n':
		return p.literal("null", kindNull)
	}
	p.syntax("unexpected " + p.describe(p.pos) + "; a value was expected")
	return nil
}

func (p *parser) literal(word string, k kind) *node {
	if !strings.HasPrefix(p.src[p.pos:], word) {
		p.syntax("unexpected " + p.describe(p.pos) + "; a value was expected")
		return nil
	}
	n := p.newNode(k, p.pos)
	p.pos += len(word)
	return n
}

// enter counts one level of nesting; false (reported) past MaxDepth.
func (p *parser) enter() bool {
	p.depth++
	if p.depth > p.maxDepth {
		p.fail(p.pos, codeTooCostly, "JSON nesting deeper than "+strconv.Itoa(p.maxDepth)+" levels (Limits.MaxDepth)")
		return false
	}
	return true
}

func (p *parser) object() *node {
	n := p.newNode(kindObject, p.pos)
	if !p.enter() {
		return nil
	}
	p.pos++
	base := len(p.scratch)
	var seen map[string]bool
	for first := true; ; first = false {
		p.skipSpace()
		if first && p.pos < len(p.src) && p.src[p.pos] == '}' {
			break
		}
		m, ok := p.member()
		if !ok {
			return nil
		}
		if p.isDuplicate(base, &seen, m.key) {
			p.dups = append(p.dups, pendingDup{segs: p.path.clone(), off: m.off, key: m.key})
		} else {
			p.scratch = append(p.scratch, m)
		}
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			break
		}
		p.syntax("unexpected " + p.describe(p.pos) + "; expected ',' or '}' after an object member")
		return nil
	}
	p.pos++
	p.depth--
	n.members = p.takeMembers(base)
	return n
}

// member reads `"key": value` and remembers the top-level resourceType.
func (p *parser) member() (member, bool) {
	if p.pos >= len(p.src) || p.src[p.pos] != '"' {
		p.syntax("unexpected " + p.describe(p.pos) + "; expected a property name in double quotes")
		return member{}, false
	}
	off := p.pos
	key, ok := p.string()
	if !ok {
		return member{}, false
	}
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] != ':' {
		p.syntax("unexpected " + p.describe(p.pos) + "; expected ':' after property name")
		return member{}, false
	}
	p.pos++
	p.skipSpace()
	p.path.pushKey(key)
	v := p.memberValue(key)
	p.path.pop()
	if v == nil {
		return member{}, false
	}
	if p.depth == 1 && key == "resourceType" && v.kind == kindString && p.root == "" {
		p.root = v.str
	}
	return member{key: key, off: off, val: v}, true
}

// memberValue reads the value of property key: a value, or, for the top-level
// "entry" array when streaming, an array node whose items went to the stream.
func (p *parser) memberValue(key string) *node {
	if p.stream == nil || p.depth != 1 || key != "entry" {
		return p.value()
	}
	each, first := p.stream.sink()
	if each == nil || p.pos >= len(p.src) || p.src[p.pos] != '[' {
		return p.value()
	}
	if !p.count() {
		return nil
	}
	n := p.arrayOf(each)
	if first {
		p.stream.array = n
	}
	return n
}

// isDuplicate reports whether key is already among the object's members
// scratch[base:]; large objects switch to a map to stay linear.
func (p *parser) isDuplicate(base int, seen *map[string]bool, key string) bool {
	ms := p.scratch[base:]
	if *seen == nil && len(ms) < 16 {
		for i := range ms {
			if ms[i].key == key {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]bool, 2*len(ms))
		for i := range ms {
			(*seen)[ms[i].key] = true
		}
	}
	if (*seen)[key] {
		return true
	}
	(*seen)[key] = true
	return false
}

func (p *parser) takeMembers(base int) []member {
	n := len(p.scratch) - base
	if n == 0 {
		return nil
	}
	if len(p.members) < n {
		p.members = p.memberSlab(n)
	}
	out := p.members[:n:n]
	p.members = p.members[n:]
	copy(out, p.scratch[base:])
	clear(p.scratch[base:])
	p.scratch = p.scratch[:base]
	return out
}

func (p *parser) takeItems(base int) []*node {
	n := len(p.iscr) - base
	if n == 0 {
		return nil
	}
	if len(p.items) < n {
		p.items = p.itemSlab(n)
	}
	out := p.items[:n:n]
	p.items = p.items[n:]
	copy(out, p.iscr[base:])
	clear(p.iscr[base:])
	p.iscr = p.iscr[:base]
	return out
}

func (p *parser) array() *node { return p.arrayOf(nil) }

// arrayOf reads an array. With each set, every item is handed to each as soon as
// it is read and then dropped: the node keeps no items and the item's values
// no longer count against MaxValues.
func (p *parser) arrayOf(each func(i int, v *node)) *node {
	n := p.newNode(kindArray, p.pos)
	if !p.enter() {
		return nil
	}
	p.pos++
	base := len(p.iscr)
	for i := 0; ; i++ {
		p.skipSpace()
		if i == 0 && p.pos < len(p.src) && p.src[p.pos] == ']' {
			break
		}
		held := p.values
		if each != nil {
			p.entries.begin(p)
		}
		p.path.pushIndex(i)
		v := p.value()
		p.path.pop()
		if v == nil {
			return nil
		}
		if each != nil {
			each(i, v)
			p.values = held
			p.entries.end(p)
		} else {
			p.iscr = append(p.iscr, v)
		}
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == ']' {
			break
		}
		p.syntax("unexpected " + p.describe(p.pos) + "; expected ',' or ']' after an array item")
		return nil
	}
	p.pos++
	p.depth--
	n.items = p.takeItems(base)
	return n
}

// number reads a JSON number and keeps its literal text.
func (p *parser) number() *node {
	start := p.pos
	if p.src[p.pos] == '-' {
		p.pos++
	}
	if p.pos < len(p.src) && p.src[p.pos] == '0' {
		p.pos++
		if p.pos < len(p.src) && isDigit(p.src[p.pos]) {
			p.syntax("numbers must not have leading zeros")
			return nil
		}
	} else if !p.digits() {
		p.syntax("a digit must follow '-' in a number")
		return nil
	}
	if p.pos < len(p.src) && p.src[p.pos] == '.' {
		p.pos++
		if !p.digits() {
			p.syntax("invalid number '" + quote(p.src[start:p.pos]) + "': a digit must follow the decimal point")
			return nil
		}
	}
	if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.src) && (p.src[p.pos] == '+' || p.src[p.pos] == '-') {
			p.pos++
		}
		if !p.digits() {
			p.syntax("invalid number '" + quote(p.src[start:p.pos]) + "': a digit must follow the exponent")
			return nil
		}
	}
	n := p.newNode(kindNumber, start)
	n.str = p.src[start:p.pos]
	return n
}

// digits consumes one or more digits.
func (p *parser) digits() bool {
	start := p.pos
	for p.pos < len(p.src) && isDigit(p.src[p.pos]) {
		p.pos++
	}
	return p.pos > start
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// string reads a JSON string at p.pos (which holds '"'). Strings without
// escapes are slices of the input; the input must be UTF-8.
func (p *parser) string() (string, bool) {
	start := p.pos + 1
	for i := start; i < len(p.src); {
		c := p.src[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return p.src[start:i], true
		case c == '\\':
			return p.escaped(start, i)
		case c < 0x20:
			p.pos = i
			p.syntax("control character " + p.describe(i) + " in a string; escape it")
			return "", false
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRuneInString(p.src[i:])
			if r == utf8.RuneError && size == 1 {
				p.pos = i
				p.syntax("invalid UTF-8 in a string")
				return "", false
			}
			i += size
		}
	}
	p.pos = len(p.src)
	p.syntax("unterminated string")
	return "", false
}

// escaped finishes a string that contains escapes, from i (a backslash).
func (p *parser) escaped(start, i int) (string, bool) {
	var b strings.Builder
	b.WriteString(p.src[start:i])
	for i < len(p.src) {
		c := p.src[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return b.String(), true
		case c == '\\':
			n, ok := p.escape(&b, i)
			if !ok {
				return "", false
			}
			i += n
		case c < 0x20:
			p.pos = i
			p.syntax("control character " + p.describe(i) + " in a string; escape it")
			return "", false
		default:
			r, size := utf8.DecodeRuneInString(p.src[i:])
			if r == utf8.RuneError && size == 1 {
				p.pos = i
				p.syntax("invalid UTF-8 in a string")
				return "", false
			}
			b.WriteString(p.src[i : i+size])
			i += size
		}
	}
	p.pos = len(p.src)
	p.syntax("unterminated string")
	return "", false
}

// escape decodes the escape sequence at i into b and returns its length.
func (p *parser) escape(b *strings.Builder, i int) (int, bool) {
	if i+1 >= len(p.src) {
		p.pos = len(p.src)
		p.syntax("unterminated string")
		return 0, false
	}
	if r, ok := simpleEscape(p.src[i+1]); ok {
		b.WriteByte(r)
		return 2, true
	}
	if p.src[i+1] != 'u' {
		p.pos = i
		p.syntax("invalid escape '\\" + string(p.src[i+1]) + "' in a string")
		return 0, false
	}
	r, ok := hex4(p.src, i+2)
	if !ok {
		p.pos = i
		p.syntax("invalid \\u escape in a string; four hex digits are required")
		return 0, false
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex4(p.src, i+8); ok && p.src[i+6] == '\\' && p.src[i+7] == 'u' {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				b.WriteRune(dec)
				return 12, true
			}
		}
		r = utf8.RuneError
	}
	b.WriteRune(r)
	return 6, true
}

func simpleEscape(c byte) (byte, bool) {
	switch c {
	case '"', '\\', '/':
		return c, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

// hex4 decodes four hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i < 0 || i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}
