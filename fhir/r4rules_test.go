package fhir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The narrative rules as the HL7 validator applies them, parsed as XML.
func TestNarrativeXHTML(t *testing.T) {
	pat := func(div string) string {
		return `{"resourceType":"Patient","text":{"status":"generated","div":"` + div + `"}}`
	}
	const x = `<div xmlns=\"http://www.w3.org/1999/xhtml\">`
	const p = "Patient.text.div"
	deep := x + strings.Repeat("<span>", 300) + "a" + strings.Repeat("</span>", 300) + "</div>"
	runRules(t, []ruleCase{
		{"doctype with an external entity", pat(`<!DOCTYPE div [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>` + x + `&xxe;</div>`), p, "invalid", "DOCTYPE"},
		{"doctype inside", pat(x + `<!DOCTYPE html>a</div>`), p, "invalid", "DOCTYPE"},
		{"entity reference", pat(x + `a&nbsp;b</div>`), p, "invalid", "not well-formed"},
		{"undeclared entity", pat(x + `&xxe;</div>`), p, "invalid", "not well-formed"},
		{"predefined and numeric references", pat(x + `a&#160;b &amp; &lt; &gt; &quot; &apos; &#x2014;</div>`), "", "", ""},
		{"processing instruction", pat(x + `<?xml-stylesheet href=\"x.css\"?>a</div>`), p, "invalid", "processing instructions"},
		{"xml declaration first", pat(`<?xml version=\"1.0\"?>` + x + `a</div>`), p, "invalid", "processing instructions"},
		{"no namespace", pat(`<div>a</div>`), p, "invalid", "XHTML namespace"},
		{"other namespace", pat(`<div xmlns=\"urn:x\">a</div>`), p, "invalid", "XHTML namespace"},
		{"inner element in another namespace", pat(x + `<p xmlns=\"urn:x\">a</p></div>`), p, "invalid", "not in the XHTML namespace"},
		{"svg", pat(x + `a<svg/></div>`), p, "invalid", "<svg> is not allowed"},
		{"style element", pat(x + `a<style>p{}</style></div>`), p, "invalid", "<style> is not allowed"},
		{"link element", pat(x + `a<link href=\"x.css\"/></div>`), p, "invalid", "<link> is not allowed"},
		{"unknown attribute", pat(x + `<p data-x=\"1\">a</p></div>`), p, "invalid", "'data-x' is not allowed on <p>"},
		{"attribute of another element", pat(x + `<p href=\"x\">a</p></div>`), p, "invalid", "'href' is not allowed on <p>"},
		{"xlink", pat(x + `<a xmlns:xlink=\"http://www.w3.org/1999/xlink\" xlink:href=\"x\">a</a></div>`), p, "invalid", "is not allowed on <a>"},
		{"style attribute", pat(x + `<p style=\"color: red; border: 1px solid\">a</p></div>`), "", "", ""},
		{"style loading a url", pat(x + `<p style=\"background: URL( http://e.example/t.png )\">a</p></div>`), p, "invalid", "must not load or run"},
		{"style expression", pat(x + `<p style=\"width: expression(alert(1))\">a</p></div>`), p, "invalid", "must not load or run"},
		{"data url link", pat(x + `<a href=\"data:text/html,x\">a</a></div>`), p, "invalid", "data: URL"},
		{"data url image", pat(x + `<img src=\"data:image/png;base64,AAAA\" alt=\"x\"/></div>`), "", "", ""},
		{"vbscript", pat(x + `<a href=\" vbscript:x\">a</a></div>`), p, "invalid", "javascript: or vbscript:"},
		{"lists, tables, lang", pat(x + `<table class=\"grid\"><tr><td colspan=\"2\">a</td></tr></table><ul><li xml:lang=\"fr\" lang=\"fr\">b</li></ul></div>`), "", "", ""},
		{"image only", pat(x + `<img src=\"#a\" alt=\"\"/></div>`), "", "", ""},
		{"txt-2 no content", pat(x + ` <br/> <p> </p></div>`), p, "invalid", "txt-2"},
		{"self-closed div", pat(`<div xmlns=\"http://www.w3.org/1999/xhtml\"/>`), p, "invalid", "txt-2"},
		{"two roots", pat(x + `a</div>` + x + `b</div>`), p, "invalid", "single <div>"},
		{"text after", pat(x + `a</div>b`), p, "invalid", "single <div>"},
		{"mismatched tags", pat(x + `<b>a</i></div>`), p, "invalid", "not well-formed"},
		{"cdata is text", pat(x + `<![CDATA[a < b]]></div>`), "", "", ""},
		{"too deep", pat(deep), p, "invalid", "deeper than 256"},
		{"in a bundle entry", `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b","resource":` + pat(x+`<iframe src=\"x\"/></div>`) + `}]}`,
			"Bundle.entry[0].resource.text.div", "invalid", "<iframe> is not allowed"},
	})
}

// No markup in strings other than the narrative; "<" as text stays text.
func TestMarkupInStrings(t *testing.T) {
	name := func(s string) string { return `{"resourceType":"Patient","name":[{"text":"` + s + `"}]}` }
	const p = "Patient.name[0].text"
	runRules(t, []ruleCase{
		{"script", name(`Peter<script>alert(1)</script>`), p, "invalid", "markup '<script>'"},
		{"uppercase script", name(`<SCRIPT src=x></SCRIPT>`), p, "invalid", "markup"},
		{"link", name(`see <a href=\"https://e.example\">here</a>`), p, "invalid", "markup '<a href="},
		{"end tag", name(`a</b> c`), p, "invalid", "markup"},
		{"self-closed", name(`a<br/>b`), p, "invalid", "markup"},
		{"comment", name(`a<!-- b -->`), p, "invalid", "markup"},
		{"doctype", name(`<!DOCTYPE x>`), p, "invalid", "markup"},
		{"processing instruction", name(`<?php x ?>`), p, "invalid", "markup"},
		{"after a non-tag", name(`a < b <i>c</i>`), p, "invalid", "markup '<i>'"},
		{"less than a number", name(`< 7.0`), "", "", ""},
		{"less or equal", name(`<=5 mmol/L`), "", "", ""},
		{"comparison", name(`a<b`), "", "", ""},
		{"comparison with spaces", name(`x <y and z`), "", "", ""},
		{"bang", name(`wow<!`), "", "", ""},
		{"angle quotes", name(`<< 5 >>`), "", "", ""},
		{"markdown", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"note":[{"text":"**b** <img src=x onerror=y>"}]}`,
			"Observation.note[0].text", "invalid", "markup '<img "},
		{"code", `{"resourceType":"Observation","status":"final","code":{"coding":[{"code":"<b>"}]}}`, "Observation.code.coding[0].code", "invalid", "markup"},
		{"comparator code", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1,"comparator":"<="}}`, "", "", ""},
	})
}

// FHIR strings are at most 1024*1024 characters; base64Binary is not bounded.
func TestStringLimit(t *testing.T) {
	name := func(s string) string { return `{"resourceType":"Patient","name":[{"text":"` + s + `"}]}` }
	runRules(t, []ruleCase{
		{"at the limit", name(strings.Repeat("a", maxStringChars)), "", "", ""},
		{"characters, not bytes", name(strings.Repeat("é", maxStringChars)), "", "", ""},
		{"over", name(strings.Repeat("a", 1_260_000)), "Patient.name[0].text", "too-long", "1260000 characters"},
		{"over by one", name(strings.Repeat("é", maxStringChars+1)), "Patient.name[0].text", "too-long", "SHALL NOT exceed 1 MB"},
		{"narrative", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">` +
			strings.Repeat("a", maxStringChars) + `</div>"}}`, "Patient.text.div", "too-long", "characters"},
		{"base64Binary", `{"resourceType":"Patient","photo":[{"data":"` + strings.Repeat("QUJD", maxStringChars/4+1) + `"}]}`, "", "", ""},
	})
	_, err := Parse([]byte(name(strings.Repeat("a", maxStringChars+1))), Limits{})
	if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge) {
		t.Errorf("a long string: got %v, want ErrInvalid (not ErrTooLarge: no Limits bound was hit)", err)
	}
}

// The Bundle invariants that depend on its type (bdl-1..5) and its links.
func TestBundleTypeRules(t *testing.T) {
	const u1 = "urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b"
	res := `"resource":{"resourceType":"Patient","id":"a"}`
	req := `"request":{"method":"POST","url":"Patient"}`
	bundle := func(typ, extra string, entries ...string) string {
		return `{"resourceType":"Bundle","type":"` + typ + `"` + extra + `,"entry":[` + strings.Join(entries, ",") + `]}`
	}
	entry := func(parts ...string) string { return `{"fullUrl":"` + u1 + `",` + strings.Join(parts, ",") + `}` }
	link := func(rels ...string) string {
		var ls []string
		for _, r := range rels {
			ls = append(ls, `{"relation":"`+r+`","url":"https://e.example/fhir/Patient?page=`+r+`"}`)
		}
		return `,"link":[` + strings.Join(ls, ",") + `]`
	}
	runRules(t, []ruleCase{
		{"transaction", bundle("transaction", "", entry(res, req)), "", "", ""},
		{"searchset", bundle("searchset", `,"total":1`+link("self", "next", "last"), entry(res, `"search":{"mode":"match"}`)), "", "", ""},
		{"bdl-1 total", bundle("collection", `,"total":1`, entry(res)), "Bundle.total", "invariant", "bdl-1"},
		{"bdl-2 search", bundle("collection", "", entry(res, `"search":{"mode":"match"}`)), "Bundle.entry[0]", "invariant", "bdl-2"},
		{"bdl-3 no request", bundle("transaction", "", entry(res)), "Bundle.entry[0]", "invariant", "bdl-3: every entry of a transaction"},
		{"bdl-3 request", bundle("collection", "", entry(res, req)), "Bundle.entry[0]", "invariant", "bdl-3: entry.request is only"},
		{"bdl-4 response", bundle("collection", "", entry(res, `"response":{"status":"201"}`)), "Bundle.entry[0]", "invariant", "bdl-4"},
		{"bdl-4 no response", bundle("batch-response", "", entry(res)), "Bundle.entry[0]", "invariant", "bdl-4: every entry"},
		{"bdl-5", bundle("collection", "", `{"fullUrl":"`+u1+`"}`), "Bundle.entry[0]", "invariant", "bdl-5"},
		{"type named last", `{"resourceType":"Bundle","entry":[` + entry(res) + `],"type":"transaction"}`, "Bundle.entry[0]", "invariant", "bdl-3"},
		{"repeated next", bundle("searchset", link("self", "next", "next"), entry(res, `"search":{"mode":"match"}`)), "Bundle.link[2].relation", "invalid", "also used by link[1]"},
		{"prev and previous", bundle("searchset", link("previous", "prev"), entry(res, `"search":{"mode":"match"}`)), "Bundle.link[1].relation", "invalid", "'prev' is also used by link[0]"},
		{"repeated other relation", bundle("collection", link("alternate", "alternate"), entry(res)), "", "", ""},
	})
}

// A record is a collection, document, transaction or batch Bundle.
func TestRecordBundleTypes(t *testing.T) {
	const entry = `{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b","resource":{"resourceType":"Patient","id":"a"}`
	bodies := map[string]string{
		"collection":           entry + `}`,
		"transaction":          entry + `,"request":{"method":"POST","url":"Patient"}}`,
		"batch":                entry + `,"request":{"method":"POST","url":"Patient"}}`,
		"searchset":            entry + `,"search":{"mode":"match"}}`,
		"history":              entry + `,"request":{"method":"PUT","url":"Patient/a"},"response":{"status":"200"}}`,
		"batch-response":       entry + `,"response":{"status":"201"}}`,
		"transaction-response": entry + `,"response":{"status":"201"}}`,
		"message":              `{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2c","resource":{"resourceType":"MessageHeader","eventCoding":{"code":"x"},"source":{"endpoint":"http://e.example"}}}`,
	}
	for typ, e := range bodies {
		src := []byte(`{"resourceType":"Bundle","type":"` + typ + `","entry":[` + e + `]}`)
		if _, err := ParseBundle(src, Limits{}); err != nil {
			t.Fatalf("%s: not a valid Bundle: %v", typ, err)
		}
		b, err := ParseRecord(src, Limits{})
		ok := typ == "collection" || typ == "transaction" || typ == "batch"
		if ok {
			if err != nil || b.BundleType != typ {
				t.Errorf("%s as a record: got %v, want it accepted", typ, err)
			}
			continue
		}
		got := issuesOf(t, err)
		if !hasIssue(got, "Bundle.type", "value", "cannot be stored as a record") || got[0].Line != 1 || got[0].Column != 33 {
			t.Errorf("%s as a record: got%s\nwant one value issue at Bundle.type, 1:33", typ, describe(got))
		}
	}
	doc := `{"resourceType":"Bundle","type":"document","identifier":{"system":"urn:ietf:rfc:3986","value":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2d"},"timestamp":"2024-01-01T00:00:00Z","entry":[` +
		`{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2e","resource":{"resourceType":"Composition","status":"final","type":{"text":"x"},"date":"2024","author":[{"display":"x"}],"title":"x"}}]}`
	if _, err := ReadRecord(bytes.NewReader([]byte(doc)), Limits{}); err != nil {
		t.Errorf("a document as a record: %v", err)
	}
	if _, err := ParseRecord([]byte(`{"resourceType":"Patient"}`), Limits{}); err == nil {
		t.Error("a Patient as a record: accepted")
	}
	for name, data := range readDir(t, "synthea") {
		if _, err := ParseRecord(data, Limits{}); err != nil {
			t.Errorf("%s as a record: %v", name, err)
		}
	}
}

// The cases added to testdata/fhir/invalid for issue 10 (finding 3): each refused
// at the path named.
func TestIngestFindings(t *testing.T) {
	tests := []struct{ file, path, code, msg string }{
		{"narrative-doctype-entity.json", "Patient.text.div", "invalid", "DOCTYPE"},
		{"string-script.json", "Patient.name[0].given[0]", "invalid", "markup '<script>'"},
		{"string-script.json", "Patient.address[0].text", "invalid", "markup '<a href="},
		{"searchset-as-record.json", "Bundle.link[2].relation", "invalid", "'next' is also used by link[1]"},
	}
	for _, tc := range tests {
		data, err := os.ReadFile(filepath.Join(testdata, "invalid", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(data, Limits{})
		got := issuesOf(t, err)
		checkIssueShape(t, got)
		if !hasIssue(got, tc.path, tc.code, tc.msg) {
			t.Errorf("%s: got%s\nwant %s at %s with %q", tc.file, describe(got), tc.code, tc.path, tc.msg)
		}
	}
	// Without its repeated link the searchset is valid R4, and still no record.
	data, _ := os.ReadFile(filepath.Join(testdata, "invalid", "searchset-as-record.json"))
	data = bytes.Replace(data, []byte(`"relation": "next", "url": "https://evil`), []byte(`"relation": "last", "url": "https://evil`), 1)
	if _, err := ParseBundle(data, Limits{}); err != nil {
		t.Fatalf("the searchset without its repeated link: %v", err)
	}
	_, err := ParseRecord(data, Limits{})
	if got := issuesOf(t, err); !hasIssue(got, "Bundle.type", "value", "a searchset Bundle cannot be stored as a record") {
		t.Errorf("a searchset as a record: got%s", describe(got))
	}
}

// The repository's corpus (its Synthea bundles, Consents and AuditEvents) still
// validates, and every Synthea bundle is a record. (No test reads the consortium's
// shared folder: what tests use is copied into testdata.)
func TestCorpusAccepted(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testdata, "*", "*.json"))
	if len(files) == 0 {
		t.Fatalf("no FHIR corpus at %s", testdata)
	}
	n := 0
	for _, f := range files {
		sub := filepath.Base(filepath.Dir(f))
		if sub != "synthea" && sub != "consent" && sub != "auditevent" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if sub == "synthea" {
			_, err = ParseRecord(data, Limits{})
		} else {
			_, err = Parse(data, Limits{})
		}
		if err != nil {
			t.Errorf("%s/%s: %v", sub, filepath.Base(f), err)
		}
	}
	t.Logf("%d corpus files accepted", n)
}
