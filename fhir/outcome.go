package fhir

import (
	"encoding/json"
	"errors"
	"strings"
)

// Extensions the HL7 validator uses to carry an issue's position.
const (
	extLine   = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line"
	extColumn = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col"
)

type outcomeJSON struct {
	ResourceType string        `json:"resourceType"`
	Issue        []outcomeItem `json:"issue"`
}

type outcomeItem struct {
	Extension   []outcomeExt `json:"extension,omitempty"`
	Severity    string       `json:"severity"`
	Code        string       `json:"code"`
	Diagnostics string       `json:"diagnostics,omitempty"`
	Expression  []string     `json:"expression,omitempty"`
}

type outcomeExt struct {
	URL          string `json:"url"`
	ValueInteger int    `json:"valueInteger"`
}

// OperationOutcome builds a FHIR R4 OperationOutcome JSON document, valid
// against the R4 schema, with one issue per Issue: Message becomes
// diagnostics, Path the expression, Line and Column the HL7 validator's
// issue-line/issue-col extensions. Unknown severities become "error",
// unknown codes "processing"; with no issues the outcome says so with one
// informational issue, as R4 requires.
func OperationOutcome(issues ...Issue) []byte {
	out := outcomeJSON{ResourceType: "OperationOutcome"}
	for _, is := range issues {
		out.Issue = append(out.Issue, outcomeIssue(is))
	}
	if len(out.Issue) == 0 {
		out.Issue = []outcomeItem{{Severity: "information", Code: "informational", Diagnostics: "no issues"}}
	}
	b, err := json.Marshal(out)
	if err != nil { // cannot happen: only strings and ints
		return []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}`)
	}
	return b
}

func outcomeIssue(is Issue) outcomeItem {
	it := outcomeItem{Severity: is.Severity, Code: is.Code}
	if !issueSeverity(it.Severity) {
		it.Severity = severityError
	}
	if !issueType(it.Code) {
		it.Code = "processing"
	}
	if d := cleanText(is.Message); d != "" {
		it.Diagnostics = d
	}
	if p := cleanText(is.Path); p != "" {
		it.Expression = []string{p}
	}
	if is.Line > 0 && is.Column > 0 {
		it.Extension = []outcomeExt{{extLine, is.Line}, {extColumn, is.Column}}
	}
	return it
}

// cleanText makes s a valid FHIR string: no control characters or
// whitespace other than space, valid UTF-8, no markup (defuseMarkup), trimmed.
func cleanText(s string) string {
	s = defuseMarkup(s)
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || isECMASpace(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

func issueSeverity(s string) bool {
	switch s {
	case "fatal", "error", "warning", "information":
		return true
	}
	return false
}

// issueType reports whether code is in the R4 IssueType code system.
func issueType(code string) bool {
	switch code {
	case "invalid", "structure", "required", "value", "invariant", "security", "login",
		"unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
		"duplicate", "multiple-matches", "not-found", "deleted", "too-long", "code-invalid",
		"extension", "too-costly", "business-rule", "conflict", "transient", "lock-error",
		"no-store", "exception", "timeout", "incomplete", "throttled", "informational":
		return true
	}
	return false
}

// OutcomeFromError maps an error to issues: a *ValidationError gives its
// issues; any other error one issue with code "exception" whose message is
// the error's text. A nil error gives none.
func OutcomeFromError(err error) []Issue {
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return append([]Issue(nil), ve.Issues...)
	}
	return []Issue{{Severity: severityError, Code: "exception", Message: err.Error()}}
}
