package fhir

import (
	"bytes"
	"io"
	"slices"
	"strings"
)

// RecordBundleTypes are the Bundle types medledger stores as a health record:
// the kinds of Bundle that carry a patient's data as its sender holds it. A
// collection or a document is a record as such; Synthea and most exports send
// a transaction or a batch (of POSTs), which is stored as sent, never executed.
// The others are answers or envelopes, not records: a searchset or history is a
// server's answer to a query, a batch-response or transaction-response the
// answer to a request, a message a messaging envelope.
var RecordBundleTypes = []string{"collection", "document", "transaction", "batch"}

// ReadRecord is ReadBundle for a Bundle to be stored as a health record: valid
// R4, and of one of RecordBundleTypes, else a *ValidationError whose issue
// names Bundle.type.
func ReadRecord(r io.Reader, lim Limits) (*Bundle, error) {
	lim = lim.withDefaults()
	data, err := readInput(r, lim)
	if err != nil {
		return nil, err
	}
	return parseRecord(data, lim)
}

// ParseRecord is ReadRecord on a byte slice (which it copies).
func ParseRecord(data []byte, lim Limits) (*Bundle, error) {
	return parseRecord(bytes.Clone(data), lim)
}

func parseRecord(raw []byte, lim Limits) (*Bundle, error) {
	r, t, err := parse(raw, lim)
	if err != nil {
		return nil, err
	}
	if err := recordIssue(r, t); err != nil {
		return nil, err
	}
	return bundleOf(r, t), nil
}

// recordIssue refuses a resource that is not a Bundle of a record's type.
func recordIssue(r *Resource, t *tree) error {
	c := &collector{}
	switch typ := t.root.get("type"); {
	case r.Type != "Bundle":
		c.add(t.root.get("resourceType").off, severityError, codeInvalid, "",
			"resourceType is '"+quote(r.Type)+"'; a Bundle is required")
	case typ == nil || typ.kind != kindString: // cannot be: a valid Bundle has a type
		c.add(t.root.off, severityError, codeRequired, "Bundle", "missing required element 'type'")
	case !slices.Contains(RecordBundleTypes, typ.str):
		c.add(typ.off, severityError, codeValue, "Bundle.type",
			"a "+quote(typ.str)+" Bundle cannot be stored as a record ("+recordTypeReason(typ.str)+
				"); a record is a "+orList(RecordBundleTypes)+" Bundle")
	}
	return c.result(t.src)
}

func recordTypeReason(typ string) string {
	switch typ {
	case "searchset", "history":
		return "it is a server's answer to a query"
	case "batch-response", "transaction-response":
		return "it is a server's answer to a request"
	case "message":
		return "it is a messaging envelope"
	}
	return "not a record type"
}

// orList joins "a", "b", "c" as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
