package fhir

import "strings"

// checkXHTML applies the narrative rules (txt-1, txt-2) as far as they
// matter for safety: the content is a <div> element, and it carries no
// active content — no script, iframe, object, embed or form elements, no
// event-handler attributes (onclick=…) and no javascript: URLs. It returns
// "" when the narrative is acceptable, else the problem.
func checkXHTML(s string) string {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "<div") || len(t) < 5 || !strings.ContainsRune(" \t\r\n>/", rune(t[4])) {
		return "narrative must be a single <div> element (found '" + quote(t[:min(len(t), 20)]) + "')"
	}
	if !strings.HasSuffix(t, "</div>") && !strings.HasSuffix(t, "/>") {
		return "narrative must end with </div>"
	}
	lower := strings.ToLower(t)
	for _, bad := range []string{"<script", "<iframe", "<object", "<embed", "<form"} {
		if i := strings.Index(lower, bad); i >= 0 && endsName(lower, i+len(bad)) {
			return "narrative must not contain <" + bad[1:] + "> (active content is not allowed)"
		}
	}
	if strings.Contains(lower, "javascript:") {
		return "narrative must not contain javascript: URLs"
	}
	if attr := eventHandler(lower); attr != "" {
		return "narrative must not carry event-handler attributes ('" + quote(attr) + "')"
	}
	return ""
}

// endsName reports whether an element name ends at s[i].
func endsName(s string, i int) bool {
	return i >= len(s) || strings.ContainsRune(" \t\r\n>/", rune(s[i]))
}

// eventHandler returns the first on…= attribute inside a tag, or "".
// s is lower case.
func eventHandler(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] != '<' {
			continue
		}
		end, attr := scanTag(s, i+1)
		if attr != "" {
			return attr
		}
		i = end
	}
	return ""
}

// scanTag reads the tag starting after '<' at i, skipping quoted values,
// and returns where it ends and the first event-handler attribute name.
func scanTag(s string, i int) (end int, handler string) {
	var quoteCh byte
	for j := i; j < len(s); j++ {
		c := s[j]
		switch {
		case quoteCh != 0:
			if c == quoteCh {
				quoteCh = 0
			}
		case c == '"' || c == '\'':
			quoteCh = c
		case c == '>':
			return j, ""
		case (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '/') && strings.HasPrefix(s[j+1:], "on"):
			k := j + 1
			for k < len(s) && (s[k] >= 'a' && s[k] <= 'z' || s[k] == '-' || s[k] == ':') {
				k++
			}
			rest := strings.TrimLeft(s[k:], " \t\r\n")
			if k > j+3 && strings.HasPrefix(rest, "=") {
				return j, s[j+1 : k]
			}
		}
	}
	return len(s), ""
}
