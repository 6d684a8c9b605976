package fhir

import (
	"strings"
	"unicode/utf8"
)

// maxStringChars is FHIR's bound on a string: "strings SHALL NOT exceed 1MB
// (1024*1024 characters) in size" (R4 datatypes, string).
const maxStringChars = 1 << 20

// tooLongString reports whether s, a value of primitive type prim, is over
// maxStringChars characters, and how many it has. The bound applies to every
// string-valued primitive (string and its kin: code, id, markdown, uri, …, and
// the narrative's xhtml, which no R4 rule bounds but which is meant as a human
// readable summary), except base64Binary, which R4 leaves unbounded (the input's
// MaxBytes bounds it).
func tooLongString(s, prim string) (int, bool) {
	if len(s) <= maxStringChars || prim == "base64Binary" {
		return 0, false // a character is at least one byte
	}
	n := utf8.RuneCountInString(s)
	return n, n > maxStringChars
}

// markup returns the first HTML or XML tag in s, or "". A tag is what a browser
// or XML parser would take as markup: '<' then a letter (a start tag: name, then
// whitespace, '/' or '>', and a '>' before the next '<'), "</" then a letter (an
// end tag), "<!" then a letter, '-' or '[' (a DOCTYPE, comment or CDATA) or
// "<?" then a letter (a processing instruction). A '<' before a digit, a space or '=' is text: "< 7.0", "<=5",
// "a<b" at the end. The HL7 validator flags HTML in strings; medledger refuses
// it in every string-valued primitive but the narrative (xhtml, its own rules)
// and base64Binary (which cannot hold '<'), markdown included: a consumer
// renders markdown as HTML, so raw HTML there is markup that would run.
func markup(s string) string {
	for i := strings.IndexByte(s, '<'); i >= 0; {
		if n := tagAt(s[i:]); n > 0 {
			return s[i : i+min(n, 40)]
		}
		j := strings.IndexByte(s[i+1:], '<')
		if j < 0 {
			return ""
		}
		i += 1 + j
	}
	return ""
}

// tagAt returns the length of the tag that t (which starts with '<') starts
// with, or 0 when it starts no tag.
func tagAt(t string) int {
	if len(t) < 2 {
		return 0
	}
	switch c := t[1]; {
	case c == '!':
		if len(t) > 2 && (isLetter(t[2]) || t[2] == '-' || t[2] == '[') {
			return 3
		}
		return 0
	case c == '?':
		if len(t) > 2 && isLetter(t[2]) {
			return 3
		}
		return 0
	case c == '/':
		if len(t) > 2 && isLetter(t[2]) {
			return 3
		}
		return 0
	case !isLetter(c):
		return 0
	}
	k := 2
	for k < len(t) && (isLetter(t[k]) || t[k] >= '0' && t[k] <= '9' || t[k] == '-' || t[k] == ':' || t[k] == '_' || t[k] == '.') {
		k++
	}
	if k == len(t) {
		return 0 // "<b" at the end: no tag
	}
	switch t[k] {
	case '>':
		return k + 1
	case ' ', '\t', '\r', '\n', '/':
		end := strings.IndexAny(t[k:], "<>")
		if end >= 0 && t[k+end] == '>' {
			return k + end + 1
		}
	}
	return 0
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// defuseMarkup replaces the '<' of every tag in s (as markup finds them) with
// '‹' (U+2039), so that s passes the markup rule and reads the same to a person:
// an OperationOutcome's diagnostics may quote what was refused.
func defuseMarkup(s string) string {
	if markup(s) == "" {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '<' && tagAt(s[i:]) > 0 {
			b.WriteString("\u2039")
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
