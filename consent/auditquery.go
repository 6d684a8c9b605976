package consent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// AuditFilter selects audit events, newest first: an event is listed if it matches
// every field that is set.
type AuditFilter struct {
	Patient PatientID `json:"patient,omitempty"`
	// Hospital matches the hospital that acted, a custodian of the record, or the
	// recipient of a released key.
	Hospital HospitalID `json:"hospital,omitempty"`
	Kind     AuditKind  `json:"kind,omitempty"`
	From     int64      `json:"from,omitempty"`   // block time ≥ From (Unix seconds)
	To       int64      `json:"to,omitempty"`     // block time ≤ To (Unix seconds)
	Before   uint64     `json:"before,omitempty"` // index < Before: the cursor, a page's Next
	Limit    int        `json:"limit,omitempty"`  // events per page: default 50, at most 500
}

// AuditPage is a page of audit events, newest first. If Next is set, older events may
// match: ask again with Before = Next. A page may hold fewer than Limit events while
// Next is set, when a query scanned its budget (MaxAuditScan index entries).
type AuditPage struct {
	Events []AuditEvent `json:"events"`
	Next   uint64       `json:"next,omitempty"`
}

// Page sizes and the work one query may do.
const (
	DefaultAuditLimit = 50
	MaxAuditLimit     = 500
	MaxAuditScan      = 10000 // index entries one query reads at most
)

func (f *AuditFilter) validate() error {
	switch {
	case f.Patient != "" && !f.Patient.Valid():
		return reject(CodeInvalid, "patient must be 64 lowercase hex digits")
	case f.Hospital != "" && !f.Hospital.Valid():
		return reject(CodeInvalid, "hospital %q is not a hospital ID", Truncate(string(f.Hospital), 40))
	case f.Kind != "" && !IsAuditKind(f.Kind):
		return reject(CodeInvalid, "kind %q is not one of %v", Truncate(string(f.Kind), 40), auditKinds)
	case f.Limit < 0 || f.Limit > MaxAuditLimit:
		return reject(CodeInvalid, "limit must be 1-%d (0: %d)", MaxAuditLimit, DefaultAuditLimit)
	case f.From < 0 || f.To < 0 || (f.To != 0 && f.From > f.To):
		return reject(CodeInvalid, "time range from %d to %d is empty or negative", f.From, f.To)
	}
	if f.Limit == 0 {
		f.Limit = DefaultAuditLimit
	}
	return nil
}

func (f *AuditFilter) match(e *AuditEvent) bool {
	return (f.Patient == "" || e.Patient == f.Patient) &&
		(f.Kind == "" || e.Kind == f.Kind) &&
		(f.Hospital == "" || slices.Contains(e.hospitals(), f.Hospital)) &&
		(f.From == 0 || e.Time >= f.From) &&
		(f.To == 0 || e.Time <= f.To)
}

// index returns the key prefix of the index to scan: the patient's, else the
// hospital's, else the kind's; "" for the whole log.
func (f *AuditFilter) index() string {
	switch {
	case f.Patient != "":
		return keyAuditPatient + string(f.Patient) + "/"
	case f.Hospital != "":
		return keyAuditHospital + string(f.Hospital) + "/"
	case f.Kind != "":
		return keyAuditKind + string(f.Kind) + "/"
	}
	return ""
}

// AuditEvents lists the events that match f, newest first. Its work is bounded: a
// binary search for each time bound (block time never decreases, so neither does an
// event's time with its index), then at most MaxAuditScan entries of one index,
// reading only the events whose kind may match.
func AuditEvents(r Reader, f AuditFilter) (*AuditPage, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	lo, hi, err := f.bounds(r)
	if err != nil {
		return nil, err
	}
	p := &pager{r: r, f: &f, page: &AuditPage{Events: []AuditEvent{}}, last: hi}
	if lo < hi {
		if err := p.run(lo, hi); err != nil {
			return nil, err
		}
	}
	if p.stopped && p.last > lo {
		p.page.Next = p.last
	}
	return p.page, nil
}

// bounds returns the range [lo, hi) of indexes that the cursor and time range allow.
func (f *AuditFilter) bounds(r Reader) (lo, hi uint64, err error) {
	head, err := loadLogHead(r)
	if err != nil {
		return 0, 0, err
	}
	hi = head.Size
	if f.Before != 0 {
		hi = min(hi, f.Before)
	}
	if f.To != 0 && f.To < math.MaxInt64 {
		if hi, err = firstAtOrAfter(r, hi, f.To+1); err != nil {
			return 0, 0, err
		}
	}
	if f.From != 0 {
		lo, err = firstAtOrAfter(r, hi, f.From)
	}
	return lo, hi, err
}

// pager fills a page, newest first, within its work budget.
type pager struct {
	r       Reader
	f       *AuditFilter
	page    *AuditPage
	scanned int
	last    uint64 // the last index considered
	stopped bool   // the page is full or the budget spent
}

// run considers the indexes in [lo, hi), newest first, from the filter's index or, with
// no filter on patient, hospital or kind, from the log itself.
func (p *pager) run(lo, hi uint64) error {
	prefix := p.f.index()
	if prefix == "" {
		for i := hi; i > lo && !p.stopped; i-- {
			if err := p.visit(i-1, ""); err != nil {
				return err
			}
		}
		return nil
	}
	end := prefix + newestFirst(lo) + "\x00" // just past lo's key, which sorts last
	return scanRange(p.r, prefix+newestFirst(hi-1), end, func(k string, v []byte) (bool, error) {
		i, err := parseNewestFirst(k[len(prefix):])
		if err != nil {
			return false, err
		}
		if err := p.visit(i, AuditKind(v)); err != nil {
			return false, err
		}
		return !p.stopped, nil
	})
}

// visit considers the event at index i, whose kind the index entry gives (if known).
func (p *pager) visit(i uint64, kind AuditKind) error {
	p.scanned++
	p.last = i
	if kind == "" || p.f.Kind == "" || kind == p.f.Kind {
		e, err := eventAt(p.r, i)
		if err != nil {
			return err
		}
		if p.f.match(e) {
			p.page.Events = append(p.page.Events, *e)
		}
	}
	p.stopped = len(p.page.Events) >= p.f.Limit || p.scanned >= MaxAuditScan
	return nil
}

// firstAtOrAfter returns the first index below n whose event's time is ≥ t, or n.
func firstAtOrAfter(r Reader, n uint64, t int64) (uint64, error) {
	lo, hi := uint64(0), n
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, err := eventAt(r, mid)
		if err != nil {
			return 0, err
		}
		if e.Time >= t {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

func eventAt(r Reader, i uint64) (*AuditEvent, error) {
	leaf, err := r.Get([]byte(leafKey(i)))
	if err != nil {
		return nil, err
	}
	if leaf == nil {
		return nil, fmt.Errorf("consent: audit event %d is missing: state is corrupt", i)
	}
	var e AuditEvent
	if err := decMode.Unmarshal(leaf, &e); err != nil {
		return nil, fmt.Errorf("consent: audit event %d: %w", i, err)
	}
	return &e, nil
}

// scanRange visits the keys in [start, end) in order; fn returns false to stop.
func scanRange(r Reader, start, end string, fn func(key string, value []byte) (bool, error)) error {
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	return scanBytes(r, []byte(start), e, fn)
}

// auditQuery answers the /audit/ query paths (see Query).
func auditQuery(r Reader, arg string, data []byte) (any, error) {
	what, rest, _ := strings.Cut(arg, "/")
	nums, err := parseUints(rest)
	if err != nil {
		return nil, err
	}
	switch {
	case what == "head" && len(nums) == 0:
		return LogHead(r)
	case what == "root" && len(nums) == 1 && nums[0] <= math.MaxInt64:
		return LogRootAt(r, Height(nums[0]))
	case what == "event" && len(nums) == 1:
		return GetLogEntry(r, nums[0])
	case what == "inclusion" && (len(nums) == 1 || len(nums) == 2):
		size := uint64(0)
		if len(nums) == 2 {
			size = nums[1]
			if size == 0 {
				return nil, reject(CodeNotFound, "the empty log includes nothing")
			}
		}
		return ProveInclusion(r, nums[0], size)
	case what == "consistency" && len(nums) == 2:
		return ProveConsistency(r, nums[0], nums[1])
	case what == "events" && len(nums) == 0:
		var f AuditFilter
		if len(bytes.TrimSpace(data)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&f); err != nil {
				return nil, reject(CodeInvalid, "audit filter (JSON in the query data): %s", Truncate(err.Error(), 120))
			}
		}
		return AuditEvents(r, f)
	}
	return nil, reject(CodeUnknownQuery, "unknown query path /audit/%s", Truncate(arg, 80))
}

// parseUints parses "a/b/…" as decimal numbers ("" is none).
func parseUints(s string) ([]uint64, error) {
	if s == "" {
		return nil, nil
	}
	var out []uint64
	for _, p := range strings.Split(s, "/") {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return nil, reject(CodeInvalid, "%q is not a decimal number", Truncate(p, 24))
		}
		out = append(out, n)
	}
	return out, nil
}
