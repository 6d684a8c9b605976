package fhir

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// The schema compiles, and every pattern it uses compiles for Go.
func TestSchemaCompiles(t *testing.T) {
	s, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.resources); n != 146 {
		t.Errorf("got %d resource types, want 146", n)
	}
	if s.defs["Observation"].props["valueBoolean"].def.name != "boolean" ||
		s.defs["Extension"].props["valueBase64Binary"].def.name != "base64Binary" ||
		s.defs["Extension"].props["valueDateTime"].def.name != "dateTime" {
		t.Error("inline choice schemas are not named after their primitive")
	}
}

// ECMA's \s covers Unicode spaces; the translated regexps must too.
func TestTranslateECMA(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{`^\S*$`, "a\u00a0b", false},
		{`^\S*$`, "a\u2028b", false},
		{`^\S*$`, "a\ufeffb", false},
		{`^\S*$`, "a\u200bb", true}, // zero-width space is not ECMA whitespace
		{`^\S*$`, "", true},
		{`^[ \r\n\t\S]+$`, "a b\tc\r\nd", true},
		{`^[ \r\n\t\S]+$`, "a\u000bb", false},
		{`^[ \r\n\t\S]+$`, "a\u3000b", false},
		{`^[^\s]+(\s[^\s]+)*$`, "a\u00a0b", true},
		{`^[^\s]+(\s[^\s]+)*$`, "a\u00a0\u00a0b", false},
		{`^(\s*([0-9a-zA-Z\+/=]){4}\s*)+$`, "Zm9v\u00a0YmFy", true},
		{`^[A-Za-z0-9\-\.]{1,64}$`, "a-b.c", true},
		{`^[A-Za-z0-9\-\.]{1,64}$`, "a_b", false},
		{`^[0]|([1-9][0-9]*)$`, "-5", true}, // anchored as written
	}
	for _, tc := range tests {
		p, err := compilePattern(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.re.MatchString(tc.s); got != tc.want {
			t.Errorf("%s on %q: got %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// The hand-written matchers agree with the translated regexps.
func TestFastPatterns(t *testing.T) {
	alphabet := []rune{'a', 'Z', '0', '-', '.', '_', ' ', '\t', '\n', '\r', '\v', '\f', 0xa0, 0x2028, 0xfeff, 0x200b, 'é', '/'}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, src := range []string{`^[ \r\n\t\S]+$`, `^\S*$`, `^[^\s]+(\s[^\s]+)*$`, `^[A-Za-z0-9\-\.]{1,64}$`} {
		p, err := compilePattern(src)
		if err != nil || p.fast == nil {
			t.Fatalf("%s: no fast matcher (%v)", src, err)
		}
		for i := 0; i < 20000; i++ {
			var b strings.Builder
			for n := rng.IntN(70); n > 0; n-- {
				b.WriteRune(alphabet[rng.IntN(len(alphabet))])
			}
			s := b.String()
			if fast, slow := p.fast(s), p.re.MatchString(s); fast != slow {
				t.Fatalf("%s on %q: fast %v, regexp %v", src, s, fast, slow)
			}
		}
	}
}
