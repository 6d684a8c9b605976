package fhir

import (
	"errors"
	"strconv"
)

// Sentinel errors. A *ValidationError matches ErrInvalid under errors.Is,
// and also ErrTooLarge when the input broke a Limits bound.
var (
	// ErrInvalid: the input is not a valid FHIR R4 resource; the
	// *ValidationError says where and why. Fix the input and resend it.
	ErrInvalid = errors.New("fhir: invalid resource")
	// ErrTooLarge: the input exceeds Limits.MaxBytes, MaxDepth or MaxValues.
	// Split the input or raise the limit.
	ErrTooLarge = errors.New("fhir: input exceeds limits")
	// ErrSchema: the embedded R4 schema could not be loaded. This is a
	// build defect, not an input problem; no input can be validated.
	ErrSchema = errors.New("fhir: embedded R4 schema unusable")
)

// Limits bound what Parse accepts. Zero (or negative) fields get defaults.
type Limits struct {
	MaxBytes int64 // default 64 MiB
	MaxDepth int   // default 64 (JSON nesting); values above 10000 act as 10000
	// MaxValues bounds the JSON values (objects, arrays, strings, numbers,
	// literals) held in memory at once: those of the whole input, except that a
	// Bundle's entries are validated one at a time, so for a Bundle it bounds
	// each entry plus the Bundle's own elements. Default 262144 (1<<18), about
	// 25 MB of parse tree; the largest Synthea entry has about 1200 values.
	MaxValues int
}

// Issue is one validation problem, shaped like an OperationOutcome.issue.
type Issue struct {
	// Severity is "fatal" when the input could not be read as a resource at
	// all (malformed JSON, limits exceeded), else "error".
	Severity string
	// Code is a FHIR issue-type code: "structure", "invalid", "required",
	// "value", "invariant", "too-long" or "too-costly".
	Code string
	// Path is a FHIRPath-style expression naming the element, with JSON
	// property names and array indexes: "Bundle.entry[3].resource.code".
	// It is empty for problems with the document as a whole.
	Path string
	// Line and Column locate the problem in the input (1-based, columns
	// count characters); 0 when unknown.
	Line, Column int
	// Message is one line: what is wrong and, where useful, what is allowed.
	Message string
}

// ValidationError is returned by Parse and friends when the input is not
// valid; it holds every issue found (at most maxIssues), ordered by their
// position in the input.
type ValidationError struct{ Issues []Issue }

// Error gives the first issue as "fhir: PATH: MESSAGE", plus " (and N more)".
func (e *ValidationError) Error() string {
	if len(e.Issues) == 0 {
		return ErrInvalid.Error()
	}
	first := e.Issues[0]
	s := "fhir: "
	if first.Path != "" {
		s += first.Path + ": "
	}
	s += first.Message
	if n := len(e.Issues) - 1; n > 0 {
		s += " (and " + strconv.Itoa(n) + " more)"
	}
	return s
}

// Is reports whether target is ErrInvalid, or ErrTooLarge for an input that
// broke a Limits bound.
func (e *ValidationError) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return true
	case ErrTooLarge:
		for _, is := range e.Issues {
			if is.Code == codeTooCostly {
				return true
			}
		}
	}
	return false
}

// Resource is a parsed, validated resource. Raw holds the exact input bytes:
// sign, hash or store those, never a re-marshalled form.
type Resource struct {
	Type string // resourceType
	ID   string // id, "" when absent
	Raw  []byte // the exact input bytes
}

// Bundle is a parsed, validated Bundle.
type Bundle struct {
	Resource
	BundleType string  // Bundle.type
	Entries    []Entry // one per Bundle.entry, in order
}

// Entry names one Bundle.entry: its fullUrl and its resource's type and id
// (empty when the entry has no resource or the resource has no id).
type Entry struct{ FullURL, Type, ID string }

// Issue severities and the issue-type codes this package reports.
const (
	severityFatal = "fatal"
	severityError = "error"

	codeStructure = "structure"  // malformed JSON, unknown property, wrong JSON type
	codeInvalid   = "invalid"    // empty values, bad narrative, duplicates, dangling references
	codeRequired  = "required"   // a required element is missing
	codeValue     = "value"      // a value breaks its pattern, code list or shape
	codeInvariant = "invariant"  // a FHIR invariant (per-1, ras-2) fails
	codeTooLong   = "too-long"   // an id longer than 64 characters
	codeTooCostly = "too-costly" // Limits exceeded
)

// maxIssues caps the issues collected for one input.
const maxIssues = 100
