package fhir

import "time"

// checkPeriod enforces per-1: "If present, start SHALL have a lower value
// than end", i.e. the FHIRPath expression
//
//	start.hasValue().not() or end.hasValue().not() or (start <= end)
//
// FHIRPath compares date/time values precision by precision; when one
// value stops before the other and they agree as far as both go
// ("2023-06-21" against "2023-06-21T06:20:00Z") the comparison is empty,
// the whole expression is empty, and the invariant is not satisfied.
func checkPeriod(w *walker, n *node) {
	start, end := n.get("start"), n.get("end")
	if start == nil || end == nil || start.kind != kindString || end.kind != kindString {
		return
	}
	a, okA := parseDateTime(start.str)
	b, okB := parseDateTime(end.str)
	if !okA || !okB {
		return // the pattern check has reported it
	}
	switch cmp, known := a.compare(b); {
	case !known:
		w.report(n.off, codeInvariant, "per-1: start '"+quote(start.str)+"' and end '"+quote(end.str)+
			"' cannot be ordered at their precisions (same day, one without a time); give both the same precision")
	case cmp > 0:
		w.report(n.off, codeInvariant, "per-1: start '"+quote(start.str)+"' is after end '"+quote(end.str)+"'")
	}
}

// dateTime is a parsed FHIR date, dateTime or instant.
type dateTime struct {
	year, month, day int // month and day 0 when absent
	precision        int // 1 year, 2 month, 3 day, 4 time
	t                time.Time
}

// parseDateTime reads a value that matches the dateTime pattern.
func parseDateTime(s string) (dateTime, bool) {
	var d dateTime
	if len(s) < 4 || !allDigits(s[:4]) {
		return d, false
	}
	d.year, d.precision = atoi(s[:4]), 1
	if len(s) >= 7 && s[4] == '-' && allDigits(s[5:7]) {
		d.month, d.precision = atoi(s[5:7]), 2
	}
	if len(s) >= 10 && d.precision == 2 && s[7] == '-' && allDigits(s[8:10]) {
		d.day, d.precision = atoi(s[8:10]), 3
	}
	if len(s) > 10 && d.precision == 3 {
		t, err := time.Parse("2006-01-02T15:04:05.999999999Z07:00", leapSecond(s))
		if err != nil {
			return d, false
		}
		d.t, d.precision = t, 4
	}
	return d, true
}

// leapSecond turns second 60 into 59.999999999 so that time.Parse accepts
// it; the schema allows it and ordering is unaffected.
func leapSecond(s string) string {
	if len(s) >= 19 && s[17:19] == "60" {
		rest := s[19:]
		for len(rest) > 0 && (rest[0] == '.' || isDigit(rest[0])) {
			rest = rest[1:]
		}
		return s[:17] + "59.999999999" + rest
	}
	return s
}

// compare orders a and b the way FHIRPath does; known is false when the
// result is empty (different precisions, equal as far as both go).
func (a dateTime) compare(b dateTime) (cmp int, known bool) {
	if a.precision == 4 && b.precision == 4 {
		return a.t.Compare(b.t), true
	}
	av := [3]int{a.year, a.month, a.day}
	bv := [3]int{b.year, b.month, b.day}
	for i := 0; i < min(a.precision, b.precision, 3); i++ {
		if av[i] != bv[i] {
			if av[i] < bv[i] {
				return -1, true
			}
			return 1, true
		}
	}
	return 0, a.precision == b.precision
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// atoi converts a short run of ASCII digits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s) && i < 9; i++ {
		if !isDigit(s[i]) {
			return n
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}
