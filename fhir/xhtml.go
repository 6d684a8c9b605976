package fhir

import (
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// The narrative rules (R4 narrative.html, txt-1 and txt-2) as the HL7 validator
// applies them (its XhtmlValidator): Narrative.div is one well-formed XML element,
// a <div> that declares the XHTML namespace; every element is in that namespace
// and one of the basic HTML 4 formatting elements, <a>, <img>, tables and lists;
// every attribute is one of the generic or table attributes, an element-specific
// one (a.href, img.src, …), a namespace declaration, xml:lang or xml:space; there
// is no DOCTYPE or other declaration, no processing instruction and no entity but
// the five XML predefines and numeric character references (no DTD is read); and
// the div has some non-whitespace content (text or an image).
//
// Beyond the validator, for safety: a URL attribute may not use the javascript:
// or vbscript: scheme, data: only for an img's src (data:image/…), and a style
// attribute may not load or run anything (url(, @import, expression(,
// javascript:). The style attribute itself is allowed (txt-1).

// xhtmlNS is the namespace the narrative's elements must be in.
const xhtmlNS = "http://www.w3.org/1999/xhtml"

// xmlNS is the namespace of the xml: prefix (xml:lang, xml:space).
const xmlNS = "http://www.w3.org/XML/1998/namespace"

// narrativeElements are the elements a narrative may hold.
var narrativeElements = setOf(
	"p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i", "strong",
	"small", "big", "tt", "dfn", "q", "var", "abbr", "acronym", "cite", "blockquote", "hr", "address",
	"bdo", "kbd", "sub", "sup", "ul", "ol", "li", "dl", "dt", "dd", "pre", "table", "caption",
	"colgroup", "col", "thead", "tr", "tfoot", "tbody", "th", "td", "code", "samp", "img", "map", "area")

// narrativeAttributes may be on any narrative element.
var narrativeAttributes = setOf(
	"title", "style", "class", "id", "lang", "dir", "accesskey", "tabindex",
	"span", "width", "align", "valign", "char", "charoff", "abbr", "axis", "headers", "scope", "rowspan", "colspan")

// narrativeElementAttributes are allowed on one element each: "element.attribute".
var narrativeElementAttributes = setOf(
	"a.href", "a.name", "a.charset", "a.type", "a.hreflang", "a.rel", "a.rev", "a.shape", "a.coords",
	"img.src", "img.border", "img.alt", "img.longdesc", "img.height", "img.width", "img.usemap", "img.ismap",
	"div.xmlns", "blockquote.cite", "q.cite", "map.name", "area.shape", "area.coords", "area.href",
	"area.nohref", "area.alt", "table.summary", "table.width", "table.border", "table.frame", "table.rules",
	"table.cellspacing", "table.cellpadding", "pre.space", "td.nowrap")

// urlAttributes are the attributes whose values are URLs.
var urlAttributes = setOf("a.href", "area.href", "img.src", "img.longdesc", "blockquote.cite", "q.cite")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// errNarrative is a narrative that breaks a rule; its text is the issue message.
type errNarrative string

func (e errNarrative) Error() string { return string(e) }

// checkXHTML applies the narrative rules to s, parsing it with encoding/xml in
// strict mode without entity definitions. It returns "" when the narrative is
// acceptable, else the first problem.
func checkXHTML(s string) string {
	n := narrative{dec: xml.NewDecoder(strings.NewReader(s))}
	n.dec.Strict = true // and no Entity map: only &lt; &gt; &amp; &apos; &quot; and &#…;
	if err := n.read(); err != nil {
		var bad errNarrative
		var syn *xml.SyntaxError
		switch {
		case errors.As(err, &bad):
			return string(bad)
		case errors.As(err, &syn) && syn.Msg == "unexpected EOF":
			return "narrative is not well-formed XHTML: it must end with </div>"
		case errors.As(err, &syn):
			return "narrative is not well-formed XHTML (line " + strconv.Itoa(syn.Line) + " of the div): " + quote(syn.Msg)
		default:
			return "narrative is not well-formed XHTML: " + quote(err.Error())
		}
	}
	return ""
}

// maxNarrativeDepth bounds the nesting of a narrative's elements.
const maxNarrativeDepth = 256

// narrative reads one Narrative.div token by token.
type narrative struct {
	dec     *xml.Decoder
	depth   int
	done    bool // the root </div> was read
	content bool // some non-whitespace text or an image
}

func (n *narrative) read() error {
	for {
		tok, err := n.dec.Token()
		if err == io.EOF {
			if !n.done {
				return errNarrative("narrative must end with </div>")
			}
			if !n.content {
				return errNarrative("txt-2: the narrative must have some non-whitespace content (text or an image)")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if err := n.token(tok); err != nil {
			return err
		}
	}
}

func (n *narrative) token(tok xml.Token) error {
	switch tok := tok.(type) {
	case xml.StartElement:
		if n.done {
			return errNarrative("narrative must be a single <div> element; found <" + quote(tok.Name.Local) + "> after it")
		}
		if err := checkElement(tok, n.depth == 0); err != nil {
			return err
		}
		n.content = n.content || tok.Name.Local == "img"
		if n.depth++; n.depth > maxNarrativeDepth {
			return errNarrative("narrative nests elements deeper than " + strconv.Itoa(maxNarrativeDepth))
		}
	case xml.EndElement:
		n.depth--
		n.done = n.depth == 0
	case xml.CharData:
		blank := strings.TrimLeft(string(tok), " \t\r\n") == ""
		if !blank && n.depth == 0 {
			return errNarrative("narrative must be a single <div> element; found text outside it ('" + quote(strings.TrimSpace(string(tok))) + "')")
		}
		n.content = n.content || !blank
	case xml.Comment:
		if n.depth == 0 {
			return errNarrative("narrative must be a single <div> element; found a comment outside it")
		}
	case xml.ProcInst:
		return errNarrative("narrative must not contain processing instructions (<?" + quote(tok.Target) + " …?>)")
	case xml.Directive:
		return errNarrative("narrative must not contain a DOCTYPE, entity declaration or other <!…> declaration (found '<!" + quote(string(tok)) + ">')")
	}
	return nil
}

// checkElement checks one element's name, namespace and attributes; root is the
// top-level element, which must be a <div> declaring the XHTML namespace.
func checkElement(e xml.StartElement, root bool) error {
	name := e.Name.Local
	switch {
	case root && (name != "div" || e.Name.Space != xhtmlNS || !declaresXHTML(e)):
		return errNarrative("narrative must be a single <div> element in the XHTML namespace: <div xmlns=\"" + xhtmlNS + "\">")
	case e.Name.Space != xhtmlNS:
		return errNarrative("element <" + quote(name) + "> is not in the XHTML namespace (" + quote(e.Name.Space) + ")")
	case !narrativeElements[name]:
		return errNarrative("element <" + quote(name) + "> is not allowed in a narrative (txt-1: basic HTML formatting, <a>, <img>, lists and tables only; no script, form, iframe, object or embed)")
	}
	for _, a := range e.Attr {
		if err := checkAttribute(name, a); err != nil {
			return err
		}
	}
	return nil
}

func declaresXHTML(e xml.StartElement) bool {
	for _, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == "xmlns" {
			return a.Value == xhtmlNS
		}
	}
	return false
}

// checkAttribute checks attribute a of element el.
func checkAttribute(el string, a xml.Attr) error {
	local, key := a.Name.Local, el+"."+a.Name.Local
	switch {
	case a.Name.Space == "xmlns" || a.Name.Space == "" && local == "xmlns":
		return nil // a namespace declaration; the elements' namespace is checked
	case a.Name.Space == xmlNS && (local == "lang" || local == "space"):
		return nil
	case a.Name.Space != "" || !narrativeAttributes[local] && !narrativeElementAttributes[key]:
		msg := "attribute '" + quote(attrName(a.Name)) + "' is not allowed on <" + quote(el) + "> in a narrative"
		if strings.HasPrefix(strings.ToLower(local), "on") {
			msg += " (event-handler attributes are active content)"
		}
		return errNarrative(msg)
	case urlAttributes[key]:
		return checkURL(key, a.Value)
	case local == "style":
		return checkStyle(el, a.Value)
	}
	return nil
}

func attrName(n xml.Name) string {
	switch n.Space {
	case "":
		return n.Local
	case xmlNS:
		return "xml:" + n.Local
	}
	return n.Space + ":" + n.Local
}

// checkURL refuses URLs that run code, and data: URLs other than an img's image.
func checkURL(key, u string) error {
	v := strings.ToLower(strings.Map(func(r rune) rune {
		if r <= ' ' {
			return -1 // browsers ignore whitespace and controls inside a scheme
		}
		return r
	}, u))
	switch {
	case strings.HasPrefix(v, "javascript:") || strings.HasPrefix(v, "vbscript:"):
		return errNarrative(key + " must not use a javascript: or vbscript: URL (active content)")
	case strings.HasPrefix(v, "data:") && !(key == "img.src" && strings.HasPrefix(v, "data:image/")):
		return errNarrative(key + " must not be a data: URL (only an img's src may be data:image/…)")
	}
	return nil
}

// checkStyle refuses a style attribute that loads or runs anything: the narrative
// may be styled only by what it contains (txt-1: "internally contained style").
func checkStyle(el, style string) error {
	v := strings.ToLower(strings.Join(strings.Fields(style), ""))
	for _, bad := range []string{"url(", "@import", "expression(", "javascript:", "behavior:", "-moz-binding"} {
		if strings.Contains(v, bad) {
			return errNarrative("the style of <" + quote(el) + "> must not load or run anything ('" + bad + "')")
		}
	}
	return nil
}
