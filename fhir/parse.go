package fhir

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
)

const (
	defaultMaxBytes = 64 << 20
	defaultMaxDepth = 64
)

// withDefaults fills zero (or negative) limits and caps MaxDepth.
func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = defaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	l.MaxDepth = min(l.MaxDepth, maxDepthCap)
	return l
}

// Parse reads one FHIR R4 resource of any type from JSON and validates it.
// An invalid input gives a *ValidationError listing every issue found.
func Parse(data []byte, lim Limits) (*Resource, error) {
	r, _, err := parse(data, lim)
	return r, err
}

// ParseBundle is Parse for input that must be a Bundle.
func ParseBundle(data []byte, lim Limits) (*Bundle, error) {
	r, root, err := parse(data, lim)
	if err != nil {
		return nil, err
	}
	if r.Type != "Bundle" {
		c := &collector{}
		c.add(root.get("resourceType").off, severityError, codeInvalid, "",
			"resourceType is '"+quote(r.Type)+"'; a Bundle is required")
		return nil, c.result(string(data))
	}
	return bundleOf(r, root), nil
}

// ReadBundle reads at most lim.MaxBytes from r and parses a Bundle; longer
// input is rejected with a "too-costly" issue. Errors from r are returned
// wrapped, as they are (not a *ValidationError).
func ReadBundle(r io.Reader, lim Limits) (*Bundle, error) {
	lim = lim.withDefaults()
	n := lim.MaxBytes
	if n < math.MaxInt64 {
		n++ // one byte more than allowed tells "too large" from "exactly the limit"
	}
	data, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, fmt.Errorf("fhir: reading bundle: %w", err)
	}
	return ParseBundle(data, lim)
}

// parse validates data and returns the resource and its tree.
func parse(data []byte, lim Limits) (*Resource, *node, error) {
	lim = lim.withDefaults()
	sch, err := loadSchema()
	if err != nil {
		return nil, nil, err
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, nil, tooLarge(lim.MaxBytes)
	}
	src := string(data)
	c := &collector{}
	root := newParser(src, lim.MaxDepth, c).parse()
	if root != nil {
		w := &walker{sch: sch, issues: c}
		w.document(root)
	}
	if err := c.result(src); err != nil {
		return nil, nil, err
	}
	return &Resource{Type: root.text("resourceType"), ID: root.text("id"), Raw: bytes.Clone(data)}, root, nil
}

func tooLarge(limit int64) error {
	return &ValidationError{Issues: []Issue{{Severity: severityFatal, Code: codeTooCostly,
		Message: "input exceeds " + strconv.FormatInt(limit, 10) + " bytes (Limits.MaxBytes); split it or raise the limit"}}}
}
