package fhir

import "encoding/json"

// SearchSet is an R4 Bundle of type searchset: a search's answer. Total is nil where
// it is unknown (one page of a longer result); an empty result has total 0.
type SearchSet struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []BundleLink  `json:"link,omitempty"`
	Entry        []BundleEntry `json:"entry,omitempty"`
}

// BundleLink is a Bundle.link: self, next, ...
type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// BundleEntry is a Bundle.entry; Search is set in a searchset.
type BundleEntry struct {
	FullURL  string       `json:"fullUrl,omitempty"`
	Resource any          `json:"resource"`
	Search   *EntrySearch `json:"search,omitempty"`
}

// EntrySearch is a Bundle.entry.search.
type EntrySearch struct {
	Mode string `json:"mode"`
}

// NewSearchSet is an empty searchset with its self link and no total.
func NewSearchSet(self string) *SearchSet {
	return &SearchSet{ResourceType: "Bundle", Type: "searchset", Link: []BundleLink{{Relation: "self", URL: self}}}
}

// SetTotal sets the number of matches of the whole search.
func (b *SearchSet) SetTotal(n int) { b.Total = &n }

// AddMatch appends resource, found at fullURL, as a match.
func (b *SearchSet) AddMatch(fullURL string, resource any) {
	b.Entry = append(b.Entry, BundleEntry{FullURL: fullURL, Resource: resource, Search: &EntrySearch{Mode: "match"}})
}

// AddLink appends a link of relation rel (say "next").
func (b *SearchSet) AddLink(rel, url string) {
	b.Link = append(b.Link, BundleLink{Relation: rel, URL: url})
}

// Parameters is an R4 Parameters resource: an operation's input or output.
type Parameters struct {
	ResourceType string      `json:"resourceType"`
	Parameter    []Parameter `json:"parameter,omitempty"`
}

// Parameter is a Parameters.parameter with the value types medledger uses.
type Parameter struct {
	Name              string          `json:"name"`
	ValueBase64Binary string          `json:"valueBase64Binary,omitempty"`
	ValueString       string          `json:"valueString,omitempty"`
	ValueCode         string          `json:"valueCode,omitempty"`
	Resource          json.RawMessage `json:"resource,omitempty"`
}
