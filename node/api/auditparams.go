package api

import (
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samber/lo"

	"github.com/medledger/medledger/consent"
)

// The query parameters of the audit endpoints. A parameter the endpoint does not know
// is refused, not ignored: an audit query that silently dropped a misspelt filter
// would answer a broader question than the one asked.

// auditQuery returns r's query after checking that it names only known parameters,
// each at most once except those in repeatable.
func auditQuery(r *http.Request, known, repeatable []string) (url.Values, error) {
	q := r.URL.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch {
		case !slices.Contains(known, k):
			return nil, badRequest("not-supported", "", "unknown parameter '%s'; this search takes: %s", consent.Truncate(k, 40), strings.Join(known, ", "))
		case len(q[k]) > 1 && !slices.Contains(repeatable, k):
			return nil, badRequest("invalid", "", "give '%s' once", k)
		}
	}
	return q, nil
}

// optPatient reads an optional patient: a patient ID or Patient/{id}.
func optPatient(q url.Values, name string) (consent.PatientID, error) {
	v := q.Get(name)
	if v == "" {
		return "", nil
	}
	id := strings.TrimPrefix(v, "Patient/")
	if !consent.PatientID(id).Valid() {
		return "", badRequest("value", "", "%s '%s' is not a patient ID: 64 lowercase hex digits (the patient's Ed25519 public key)", name, consent.Truncate(v, 80))
	}
	return consent.PatientID(id), nil
}

// optHospital reads an optional hospital: a hospital ID or Organization/{id}.
func optHospital(q url.Values, name string) (consent.HospitalID, error) {
	v := q.Get(name)
	if v == "" {
		return "", nil
	}
	id := strings.TrimPrefix(v, "Organization/")
	if !consent.HospitalID(id).Valid() {
		return "", badRequest("value", "", "%s '%s' is not a hospital ID (lowercase letters, digits and '-', up to 32), or Organization/{hospital ID}", name, consent.Truncate(v, 80))
	}
	return consent.HospitalID(id), nil
}

// optKind reads an optional audit event kind: one the chain logs.
func optKind(q url.Values, name string) (consent.AuditKind, error) {
	v := q.Get(name)
	if v == "" {
		return "", nil
	}
	if !consent.IsAuditKind(consent.AuditKind(v)) {
		return "", badRequest("value", "", "%s '%s' is not one of: %s", name, consent.Truncate(v, 40), joinKinds())
	}
	return consent.AuditKind(v), nil
}

func joinKinds() string { return joinCodes(consent.AuditKinds()) }

// joinCodes lists codes for a message: "a, b, c".
func joinCodes[S ~string](codes []S) string {
	return strings.Join(lo.Map(codes, func(c S, _ int) string { return string(c) }), ", ")
}

// optCount reads an optional page size: 1 to consent.MaxAuditLimit (0: the chain's
// default).
func optCount(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > consent.MaxAuditLimit {
		return 0, badRequest("value", "", "%s must be a number from 1 to %d (default %d)", name, consent.MaxAuditLimit, consent.DefaultAuditLimit)
	}
	return n, nil
}

// optCursor reads an optional page cursor: a previous page's next index (≥ 1).
func optCursor(q url.Values, name string) (uint64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, badRequest("value", "", "%s must be the cursor a previous page gave (a log index, 1 or more)", name)
	}
	return n, nil
}

// timeRange is a set of block times, in Unix seconds, as the date parameters narrow it.
type timeRange struct{ from, to int64 }

func anyTime() timeRange { return timeRange{from: math.MinInt64, to: math.MaxInt64} }

// narrow applies one FHIR date search value: an optional prefix (eq, the default; ge,
// gt, le, lt) and a date: YYYY, YYYY-MM, YYYY-MM-DD (in UTC) or a dateTime with seconds
// and a zone. A date denotes the whole period it names: date=2026-01-15 is that day,
// le2026-01 the end of January.
func (t *timeRange) narrow(name, v string) error {
	prefix, value := "eq", v
	if len(v) >= 2 && isLower(v[0]) && isLower(v[1]) {
		prefix, value = v[:2], v[2:]
	}
	lo, hi, ok := interval(value)
	if !ok {
		return badRequest("value", "", "%s '%s' is not a FHIR date: YYYY, YYYY-MM, YYYY-MM-DD (UTC) or YYYY-MM-DDThh:mm:ss with Z or ±hh:mm, "+
			"after an optional prefix ge, gt, le, lt or eq", name, consent.Truncate(v, 40))
	}
	switch prefix {
	case "eq":
		t.from, t.to = max(t.from, lo), min(t.to, hi)
	case "ge":
		t.from = max(t.from, lo)
	case "gt":
		t.from = max(t.from, hi+1)
	case "le":
		t.to = min(t.to, hi)
	case "lt":
		t.to = min(t.to, lo-1)
	default:
		return badRequest("not-supported", "", "%s prefix '%s' is not supported; use ge, gt, le, lt or eq", name, prefix)
	}
	return nil
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

// interval is the block-time seconds [lo, hi] a FHIR date or dateTime denotes.
func interval(v string) (lo, hi int64, ok bool) {
	var layout string
	var next func(time.Time) time.Time
	switch len(v) {
	case 4:
		layout, next = "2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
	case 7:
		layout, next = "2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	case 10:
		layout, next = "2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	default:
		if !strings.Contains(v, "T") {
			return 0, 0, false
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, 0, false
		}
		lo, hi = t.Unix(), t.Unix()
		if t.Nanosecond() != 0 { // an instant inside a second: no whole second equals it
			lo++
		}
		return lo, hi, true
	}
	t, err := time.Parse(layout, v)
	if err != nil {
		return 0, 0, false
	}
	return t.Unix(), next(t).Unix() - 1, true
}

// apply sets f's From and To, or says the range holds no block time.
func (t timeRange) apply(f *consent.AuditFilter, what string) error {
	if t.from > t.to || t.to < 1 {
		return badRequest("value", "", "the %s range is empty: no block time is in it", what)
	}
	f.From = max(t.from, 0)
	if t.to != math.MaxInt64 {
		f.To = t.to
	}
	return nil
}
