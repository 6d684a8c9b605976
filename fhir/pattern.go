package fhir

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// pattern is a schema "pattern" compiled for Go. The schema's patterns are
// ECMA-262 regular expressions; they parse unchanged as Go (RE2) syntax,
// but ECMA's \s and \S include Unicode spaces (U+00A0, U+2028, U+FEFF…)
// where RE2's cover ASCII only, so the classes are rewritten before
// compiling. The most frequent patterns also get a hand-written matcher
// (fast), which must agree with the regexp (see TestFastPatterns).
type pattern struct {
	src  string
	re   *regexp.Regexp
	fast func(string) bool
}

func (p *pattern) match(s string) bool {
	if p.fast != nil {
		return p.fast(s)
	}
	return p.re.MatchString(s)
}

func compilePattern(src string) (*pattern, error) {
	goSrc, err := translateECMA(src)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", src, err)
	}
	re, err := regexp.Compile(goSrc)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", src, err)
	}
	return &pattern{src: src, re: re, fast: fastMatcher(src)}, nil
}

// fastMatcher returns a matcher for the patterns of string, uri, code and id.
func fastMatcher(src string) func(string) bool {
	switch src {
	case `^[ \r\n\t\S]+$`:
		return isFHIRString
	case `^\S*$`:
		return hasNoSpace
	case `^[^\s]+(\s[^\s]+)*$`:
		return isCode
	case `^[A-Za-z0-9\-\.]{1,64}$`:
		return isID
	}
	return nil
}

// ecmaSpaceRanges lists ECMA-262's WhiteSpace and LineTerminator code
// points, which \s matches.
func ecmaSpaceRanges() []runeRange {
	return []runeRange{
		{'\t', '\r'}, {' ', ' '}, {0xa0, 0xa0}, {0x1680, 0x1680},
		{0x2000, 0x200a}, {0x2028, 0x2029}, {0x202f, 0x202f},
		{0x205f, 0x205f}, {0x3000, 0x3000}, {0xfeff, 0xfeff},
	}
}

func isECMASpace(r rune) bool {
	switch {
	case r < 0x80:
		return r == ' ' || (r >= '\t' && r <= '\r')
	case r == 0xa0, r == 0x1680, r == 0xfeff, r == 0x3000, r == 0x205f, r == 0x202f:
		return true
	}
	return r >= 0x2000 && (r <= 0x200a || r == 0x2028 || r == 0x2029)
}

// isFHIRString matches ^[ \r\n\t\S]+$: non-empty, and no whitespace other
// than space, CR, LF and tab.
func isFHIRString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 {
			return s != "" && allRunes(s[i:], func(r rune) bool {
				return r == ' ' || r == '\r' || r == '\n' || r == '\t' || !isECMASpace(r)
			})
		} else if c == '\v' || c == '\f' {
			return false
		}
	}
	return s != ""
}

// hasNoSpace matches ^\S*$.
func hasNoSpace(s string) bool {
	return allRunes(s, func(r rune) bool { return !isECMASpace(r) })
}

// isCode matches ^[^\s]+(\s[^\s]+)*$: tokens separated by single spaces.
func isCode(s string) bool {
	prevSpace := true
	for _, r := range s {
		sp := isECMASpace(r)
		if sp && prevSpace {
			return false
		}
		prevSpace = sp
	}
	return !prevSpace
}

// isID matches ^[A-Za-z0-9\-\.]{1,64}$.
func isID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func allRunes(s string, ok func(rune) bool) bool {
	for _, r := range s {
		if !ok(r) {
			return false
		}
	}
	return true
}

// runeRange is an inclusive range of code points.
type runeRange struct{ lo, hi rune }

// translateECMA rewrites an ECMA-262 pattern into RE2 syntax: \s and \S,
// inside or outside a character class, become explicit classes with
// ECMA's meaning. Everything else the schema uses means the same in both.
func translateECMA(src string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		switch c := src[i]; {
		case c == '\\' && i+1 < len(src):
			switch src[i+1] {
			case 's':
				b.WriteString(classString(ecmaSpaceRanges()))
			case 'S':
				b.WriteString(classString(complement(ecmaSpaceRanges())))
			default:
				b.WriteString(src[i : i+2])
			}
			i++
		case c == '[':
			set, n, err := parseClass(src[i:])
			if err != nil {
				return "", err
			}
			b.WriteString(classString(set))
			i += n - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// parseClass reads the character class at the start of s and returns the
// code points it matches and its length in bytes.
func parseClass(s string) ([]runeRange, int, error) {
	i, negate := 1, false
	if strings.HasPrefix(s, "[^") {
		i, negate = 2, true
	}
	var set []runeRange
	for first := true; i < len(s); first = false {
		if s[i] == ']' && !first {
			if negate {
				set = complement(set)
			}
			return normalize(set), i + 1, nil
		}
		lo, items, n, err := classAtom(s[i:])
		if err != nil {
			return nil, 0, err
		}
		i += n
		if items != nil {
			set = append(set, items...)
			continue
		}
		if i+1 < len(s) && s[i] == '-' && s[i+1] != ']' {
			hi, more, n2, err := classAtom(s[i+1:])
			if err != nil || more != nil || hi < lo {
				return nil, 0, fmt.Errorf("bad range in class %q", s)
			}
			set = append(set, runeRange{lo, hi})
			i += 1 + n2
			continue
		}
		set = append(set, runeRange{lo, lo})
	}
	return nil, 0, fmt.Errorf("unterminated class in %q", s)
}

// classAtom reads one class member: a literal, an escape, or \s / \S / \d
// (returned as a set).
func classAtom(s string) (rune, []runeRange, int, error) {
	if s[0] != '\\' {
		r, n := utf8.DecodeRuneInString(s)
		return r, nil, n, nil
	}
	if len(s) < 2 {
		return 0, nil, 0, fmt.Errorf("trailing backslash")
	}
	switch c := s[1]; c {
	case 's':
		return 0, ecmaSpaceRanges(), 2, nil
	case 'S':
		return 0, complement(ecmaSpaceRanges()), 2, nil
	case 'd':
		return 0, []runeRange{{'0', '9'}}, 2, nil
	case 'n':
		return '\n', nil, 2, nil
	case 'r':
		return '\r', nil, 2, nil
	case 't':
		return '\t', nil, 2, nil
	case 'f':
		return '\f', nil, 2, nil
	case 'v':
		return '\v', nil, 2, nil
	default:
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return 0, nil, 0, fmt.Errorf("unsupported escape \\%c in class", c)
		}
		return rune(c), nil, 2, nil
	}
}

func normalize(set []runeRange) []runeRange {
	set = slices.Clone(set)
	slices.SortFunc(set, func(a, b runeRange) int { return int(a.lo - b.lo) })
	var out []runeRange
	for _, r := range set {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func complement(set []runeRange) []runeRange {
	var out []runeRange
	next := rune(0)
	for _, r := range normalize(set) {
		if r.lo > next {
			out = append(out, runeRange{next, r.lo - 1})
		}
		next = r.hi + 1
	}
	if next <= 0x10ffff {
		out = append(out, runeRange{next, 0x10ffff})
	}
	return out
}

// classString writes set as an RE2 class of \x{…} ranges.
func classString(set []runeRange) string {
	var b strings.Builder
	b.WriteByte('[')
	for _, r := range set {
		b.WriteString(`\x{` + strconv.FormatInt(int64(r.lo), 16) + `}`)
		if r.hi != r.lo {
			b.WriteString(`-\x{` + strconv.FormatInt(int64(r.hi), 16) + `}`)
		}
	}
	b.WriteByte(']')
	return b.String()
}
