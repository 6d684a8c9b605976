package fhir

import (
	"strconv"
	"strings"
)

// attachChecks wires the rules beyond the schema to the definitions they
// concern; they run after a definition's properties are validated.
func attachChecks(s *schema) {
	checks := map[string]func(*walker, *node){
		"Bundle":                    checkBundle,
		"Period":                    checkPeriod,
		"Reference":                 checkReference,
		"Extension":                 checkExtension,
		"RiskAssessment_Prediction": checkRAS2,
	}
	for _, name := range sortedKeys(checks) {
		if d := s.defs[name]; d != nil {
			d.check = checks[name]
		}
	}
}

// checkExtension rejects a versioned extension url ("…|4.0.0"): the url
// identifies the extension, and versions are not part of it.
func checkExtension(w *walker, n *node) {
	u := n.get("url")
	if u == nil || u.kind != kindString || !strings.Contains(u.str, "|") {
		return
	}
	w.path.pushKey("url")
	w.report(u.off, codeValue, "extension url '"+quote(u.str)+"' must not contain a version ('|…')")
	w.path.pop()
}

// checkRAS2 enforces ras-2 on RiskAssessment.prediction:
// probability is decimal implies (probability as decimal) <= 100.
func checkRAS2(w *walker, n *node) {
	p := n.get("probabilityDecimal")
	if p == nil || p.kind != kindNumber || compareDecimal(p.str, 100) <= 0 {
		return
	}
	w.report(n.off, codeInvariant, "ras-2: probabilityDecimal "+quote(p.str)+" must be <= 100")
}

// compareDecimal compares the JSON number literal lit with the positive
// integer k exactly (no float rounding, no big exponent arithmetic).
func compareDecimal(lit string, k int) int {
	neg := strings.HasPrefix(lit, "-")
	lit = strings.TrimPrefix(lit, "-")
	mant, exp, _ := strings.Cut(strings.ToLower(lit), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return -1 // zero
	}
	if neg {
		return -1
	}
	// value = 0.D × 10^e with D = digits
	e := len(intPart) - (len(intPart+frac) - len(digits)) + exponent(exp)
	digits = strings.TrimRight(digits, "0")
	ks := strconv.Itoa(k)
	if ke := len(ks); e != ke {
		return sign(e - ke)
	}
	kd := strings.TrimRight(ks, "0")
	return strings.Compare(digits, kd)
}

// exponent parses an exponent, saturating far beyond any useful range.
func exponent(s string) int {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	n := 0
	for i := 0; i < len(s) && n < 1<<30; i++ {
		n = n*10 + int(s[i]-'0')
	}
	if neg {
		return -n
	}
	return n
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}
