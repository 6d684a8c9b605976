package fhir

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unsafe"
)

const (
	defaultMaxBytes  = 64 << 20
	defaultMaxDepth  = 64
	defaultMaxValues = 1 << 18
)

// withDefaults fills zero (or negative) limits and caps MaxDepth.
func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = defaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	if l.MaxValues <= 0 {
		l.MaxValues = defaultMaxValues
	}
	l.MaxDepth = min(l.MaxDepth, maxDepthCap)
	return l
}

// Parse reads one FHIR R4 resource of any type from JSON and validates it.
// An invalid input gives a *ValidationError listing every issue found.
func Parse(data []byte, lim Limits) (*Resource, error) {
	r, _, err := parse(bytes.Clone(data), lim)
	return r, err
}

// ParseBundle is Parse for input that must be a Bundle.
func ParseBundle(data []byte, lim Limits) (*Bundle, error) {
	return parseBundle(bytes.Clone(data), lim)
}

// ReadBundle reads at most lim.MaxBytes from r and parses a Bundle; longer
// input is rejected with a "too-costly" issue. Errors from r are returned
// wrapped, as they are (not a *ValidationError).
//
// The input is held in memory once: in one buffer of the size r announces
// when r has a Size() int64 method (bytes.Reader, or a request body with a
// Content-Length), which becomes Bundle.Raw; without one, it is read in
// chunks that are then copied into one buffer (so it is briefly held twice).
// Validation holds one entry's parse tree at a time (Limits.MaxValues).
func ReadBundle(r io.Reader, lim Limits) (*Bundle, error) {
	lim = lim.withDefaults()
	data, err := readInput(r, lim)
	if err != nil {
		return nil, err
	}
	return parseBundle(data, lim)
}

// readInput reads at most lim.MaxBytes+1 bytes of r (one byte more than allowed
// tells "too large" from "exactly the limit"); lim has its defaults.
func readInput(r io.Reader, lim Limits) ([]byte, error) {
	n := lim.MaxBytes
	if n < math.MaxInt64 {
		n++
	}
	data, err := readAll(r, n)
	if err != nil {
		return nil, fmt.Errorf("fhir: reading bundle: %w", err)
	}
	return data, nil
}

// parseBundle is ParseBundle on a buffer it owns.
func parseBundle(raw []byte, lim Limits) (*Bundle, error) {
	r, t, err := parse(raw, lim)
	if err != nil {
		return nil, err
	}
	if r.Type != "Bundle" {
		c := &collector{}
		c.add(t.root.get("resourceType").off, severityError, codeInvalid, "",
			"resourceType is '"+quote(r.Type)+"'; a Bundle is required")
		return nil, c.result(t.src)
	}
	return bundleOf(r, t), nil
}

// tree is a validated document: its root and, for a Bundle, its entries as
// they were streamed.
type tree struct {
	src    string
	root   *node
	stream *bundleStream
}

// parse validates raw, which it keeps as Resource.Raw (the caller must not
// change it afterwards), and returns the resource and its tree. A Bundle's
// entries are validated one at a time as they are read; any other resource
// whose top-level "entry" was streamed that way (before its resourceType was
// known) is parsed again as a whole.
func parse(raw []byte, lim Limits) (*Resource, *tree, error) {
	lim = lim.withDefaults()
	sch, err := loadSchema()
	if err != nil {
		return nil, nil, err
	}
	if int64(len(raw)) > lim.MaxBytes {
		return nil, nil, tooLarge(lim.MaxBytes)
	}
	// The parse tree's strings are slices of src: one copy of the input, never
	// changed while it is in use (raw is this package's until parse returns).
	src := unsafe.String(unsafe.SliceData(raw), len(raw))
	t, err := validate(sch, src, lim, true)
	if t != nil && t.stream.array != nil && t.root.text("resourceType") != "Bundle" {
		t, err = validate(sch, src, lim, false)
	}
	if err != nil {
		return nil, nil, err
	}
	return &Resource{Type: strings.Clone(t.root.text("resourceType")), ID: strings.Clone(t.root.text("id")), Raw: raw}, t, nil
}

// validate parses and validates src, streaming a top-level "entry" array if
// stream is set. The tree is returned whenever src is well-formed JSON.
func validate(sch *schema, src string, lim Limits, stream bool) (*tree, error) {
	c := &collector{}
	p := newParser(src, lim, c)
	if stream {
		p.stream = newBundleStream(sch)
	}
	root := p.parse()
	if root == nil {
		return nil, c.result(src)
	}
	t := &tree{src: src, root: root, stream: p.stream}
	if t.stream == nil {
		t.stream = &bundleStream{}
	}
	if t.stream.array != nil && root.text("resourceType") != "Bundle" {
		return t, nil // to be parsed again without streaming
	}
	c.merge(t.stream.issues)
	w := &walker{sch: sch, issues: c, stream: t.stream}
	w.document(root)
	return t, c.result(src)
}

func tooLarge(limit int64) error {
	return &ValidationError{Issues: []Issue{{Severity: severityFatal, Code: codeTooCostly,
		Message: "input exceeds " + strconv.FormatInt(limit, 10) + " bytes (Limits.MaxBytes); split it or raise the limit"}}}
}
