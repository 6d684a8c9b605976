package fhir

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// primitive validates a FHIR primitive value: its JSON type, the FHIR JSON
// rules on strings, the schema pattern, and the rules for base64Binary,
// xhtml and dates that the schema cannot express.
func (w *walker) primitive(v *node, d *def) {
	switch d.json {
	case jsonBoolean:
		if v.kind != kindTrue && v.kind != kindFalse {
			w.report(v.off, codeStructure, "must be true or false, not "+v.kind.String())
		}
	case jsonNumber:
		if v.kind != kindNumber {
			w.report(v.off, codeStructure, "must be a JSON number (FHIR "+d.name+"), not "+v.kind.String())
		} else if d.pat != nil && !d.pat.match(v.str) {
			w.report(v.off, codeValue, "'"+quote(v.str)+"' is not a valid FHIR "+d.name)
		} else if msg := integerRange(d.name, v.str); msg != "" {
			w.report(v.off, codeValue, msg)
		}
	default:
		if v.kind != kindString {
			w.report(v.off, codeStructure, "must be a string (FHIR "+d.name+"), not "+v.kind.String())
			return
		}
		w.text(v, d)
	}
}

// integerRange checks the R4 ranges of the integer types: 32-bit signed,
// unsignedInt >= 0, positiveInt >= 1. lit already matches the pattern.
func integerRange(prim, lit string) string {
	lo := int64(math.MinInt32)
	switch prim {
	case "integer":
	case "unsignedInt":
		lo = 0
	case "positiveInt":
		lo = 1
	default:
		return ""
	}
	n, err := strconv.ParseInt(lit, 10, 32)
	if err != nil || n < lo {
		return "'" + quote(lit) + "' is out of range for FHIR " + prim + " (" + strconv.FormatInt(lo, 10) + " to 2147483647)"
	}
	return ""
}

// text validates a string primitive.
func (w *walker) text(v *node, d *def) {
	s := v.str
	if n, long := tooLongString(s, d.name); long {
		w.report(v.off, codeTooLong, "string of "+strconv.Itoa(n)+" characters; FHIR strings SHALL NOT exceed 1 MB ("+strconv.Itoa(maxStringChars)+" characters)")
		return
	}
	if strings.TrimSpace(s) == "" {
		w.report(v.off, codeInvalid, "empty or whitespace-only string; omit the property instead")
		return
	}
	if i := controlChar(s); i >= 0 {
		w.report(v.off, codeInvalid, "control character U+00"+hexByte(s[i])+" in a string; only tab, CR and LF are allowed")
		return
	}
	if d.pat != nil && !d.pat.match(s) {
		code, msg := patternMessage(d, s)
		w.report(v.off, code, msg)
		return
	}
	switch d.name {
	case "xhtml", "base64Binary":
	default:
		if tag := markup(s); tag != "" {
			w.report(v.off, codeInvalid, "markup '"+quote(tag)+"' in a "+d.name+"; HTML is allowed only in the narrative (text.div), so escape it or remove it")
			return
		}
	}
	switch d.name {
	case "base64Binary":
		if !isBase64(s) {
			w.report(v.off, codeValue, "'"+quote(s)+"' is not valid base64")
		}
	case "xhtml":
		if msg := checkXHTML(s); msg != "" {
			w.report(v.off, codeInvalid, msg)
		}
	case "date", "dateTime", "instant":
		if !validCalendarDate(s) {
			w.report(v.off, codeValue, "'"+quote(s)+"' is not a calendar date (day out of range for the month)")
		}
	}
}

// controlChar returns the index of the first character below U+0020 other
// than tab, CR and LF, or -1.
func controlChar(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\r' && c != '\n' {
			return i
		}
	}
	return -1
}

func hexByte(c byte) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// patternMessage explains a pattern mismatch in the terms of the primitive.
func patternMessage(d *def, s string) (code, msg string) {
	q := "'" + quote(s) + "'"
	switch d.name {
	case "id":
		if n := utf8.RuneCountInString(s); n > 64 {
			return codeTooLong, "id is " + strconv.Itoa(n) + " characters long; at most 64 are allowed"
		}
		return codeValue, q + " is not a valid id: only A-Z, a-z, 0-9, '-' and '.' are allowed"
	case "dateTime", "instant":
		if timeWithoutZone(s) {
			return codeValue, q + " has a time but no timezone; add 'Z' or an offset such as '+01:00'"
		}
		return codeValue, q + " is not a valid FHIR " + d.name + " (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff]Z|±hh:mm)"
	case "date":
		return codeValue, q + " is not a valid FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"
	case "time":
		return codeValue, q + " is not a valid FHIR time (hh:mm:ss[.fff])"
	case "string", "markdown":
		return codeValue, q + " contains whitespace other than space, tab, CR and LF"
	case "uri", "url", "canonical":
		return codeValue, q + " is not a valid " + d.name + ": whitespace is not allowed"
	case "code":
		return codeValue, q + " is not a valid code: no leading, trailing or repeated whitespace"
	}
	name := d.name
	if name == "" {
		name = "value"
	}
	return codeValue, q + " is not a valid FHIR " + name + " (pattern " + d.pat.src + ")"
}

// timeWithoutZone reports whether s looks like a dateTime whose time has
// no timezone: "2020-11-11T10:58:14.768528".
func timeWithoutZone(s string) bool {
	i := strings.IndexByte(s, 'T')
	return i > 0 && !strings.ContainsAny(s[i:], "Z+-")
}

// isBase64 reports whether s is standard base64 (RFC 4648 §4, padded),
// ignoring whitespace.
func isBase64(s string) bool {
	n, pad := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			continue
		case c == '=':
			pad++
		case pad > 0:
			return false // data after padding
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
		default:
			return false
		}
		n++
	}
	return n%4 == 0 && pad <= 2
}

// validCalendarDate checks the day of a date, dateTime or instant that
// already matches its pattern ("Dates SHALL be valid dates").
func validCalendarDate(s string) bool {
	if len(s) < 10 {
		return true
	}
	year, month, day := atoi(s[:4]), atoi(s[5:7]), atoi(s[8:10])
	return day <= daysIn(year, month)
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
