package web

import (
	"net/http"
	"net/url"
	"strconv"
)

// The privacy officer's endpoints call the node's API with the token the officer
// signed in with, so the page can do exactly what that token may do there, answered
// by the API's own checks and errors. A search travels in the POST body (never in
// the page's URLs) and becomes the API call's query inside this process.

// callAPI serves r's caller the API's answer to method path?query, made with the
// officer's token.
func (s *Server) callAPI(w http.ResponseWriter, r *http.Request, se *session, method, path string, query url.Values) error {
	req, err := s.apiRequest(r, se, method, path, query)
	if err != nil {
		return err
	}
	s.cfg.API.ServeHTTP(w, req)
	return nil
}

// apiRequest is the API request method path?query, made in r's context with the
// officer's token.
func (s *Server) apiRequest(r *http.Request, se *session, method, path string, query url.Values) (*http.Request, error) {
	target := path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(r.Context(), method, target, http.NoBody)
	if err != nil {
		return nil, badInput("The request names something the node cannot look up.")
	}
	req.Host, req.RemoteAddr, req.TLS = r.Host, r.RemoteAddr, r.TLS
	req.Header.Set("Authorization", "Bearer "+se.token)
	return req, nil
}

// search is what the officer's page searches the access log by; empty fields match
// anything.
type search struct {
	Patient  string `json:"patient"`
	Hospital string `json:"hospital"`
	Kind     string `json:"kind"`
	From     string `json:"from"` // a date (YYYY-MM-DD) or RFC 3339 time
	To       string `json:"to"`
	Before   uint64 `json:"before"` // the page cursor: a page's next
	Limit    int    `json:"limit"`
}

// set adds name=value to q unless value is empty.
func set(q url.Values, name, value string) {
	if value != "" {
		q.Set(name, value)
	}
}

// officerEvents is POST /audit-app/api/events with a search: one page of the access
// log (GET /audit/events).
func (s *Server) officerEvents(w http.ResponseWriter, r *http.Request, se *session) error {
	var f search
	if err := readJSON(w, r, &f); err != nil {
		return err
	}
	q := url.Values{}
	set(q, "patient", f.Patient)
	set(q, "hospital", f.Hospital)
	set(q, "kind", f.Kind)
	set(q, "from", f.From)
	set(q, "to", f.To)
	if f.Before != 0 {
		q.Set("before", strconv.FormatUint(f.Before, 10))
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return s.callAPI(w, r, se, http.MethodGet, "/audit/events", q)
}

// officerExport is POST /audit-app/api/export with a search: the matching events as
// FHIR AuditEvents (GET /fhir/AuditEvent, one page of at most Limit).
func (s *Server) officerExport(w http.ResponseWriter, r *http.Request, se *session) error {
	var f search
	if err := readJSON(w, r, &f); err != nil {
		return err
	}
	q := url.Values{}
	set(q, "patient", f.Patient)
	set(q, "agent", f.Hospital)
	set(q, "kind", f.Kind)
	if f.From != "" {
		q.Add("date", "ge"+f.From)
	}
	if f.To != "" {
		q.Add("date", "le"+f.To)
	}
	if f.Before != 0 {
		q.Set("_cursor", strconv.FormatUint(f.Before, 10))
	}
	if f.Limit != 0 {
		q.Set("_count", strconv.Itoa(f.Limit))
	}
	return s.callAPI(w, r, se, http.MethodGet, "/fhir/AuditEvent", q)
}

// officerEmergencies is GET /audit-app/api/emergencies: the review queue, unreviewed
// first (GET /audit/emergencies).
func (s *Server) officerEmergencies(w http.ResponseWriter, r *http.Request, se *session) error {
	return s.callAPI(w, r, se, http.MethodGet, "/audit/emergencies", nil)
}

type review struct {
	Grant   string `json:"grant"`
	Outcome string `json:"outcome"`
}

// officerReview is POST /audit-app/api/review {grant, outcome}: the review, signed by
// this hospital and committed (POST /audit/emergencies/{grant}/$review).
func (s *Server) officerReview(w http.ResponseWriter, r *http.Request, se *session) error {
	var in review
	if err := readJSON(w, r, &in); err != nil {
		return err
	}
	if !idPattern.MatchString(in.Grant) {
		return badInput("That is not an emergency access's ID.")
	}
	return s.callAPI(w, r, se, http.MethodPost, "/audit/emergencies/"+in.Grant+"/$review", url.Values{"outcome": {in.Outcome}})
}

type accountingFor struct {
	Patient string `json:"patient"`
	Format  string `json:"format"`
}

// officerAccounting is POST /audit-app/api/accounting {patient, format}: a patient's
// accounting of disclosures (GET /audit/accounting).
func (s *Server) officerAccounting(w http.ResponseWriter, r *http.Request, se *session) error {
	var in accountingFor
	if err := readJSON(w, r, &in); err != nil {
		return err
	}
	q := url.Values{"patient": {in.Patient}}
	set(q, "format", in.Format)
	return s.callAPI(w, r, se, http.MethodGet, "/audit/accounting", q)
}

// hospitals is GET /audit-app/api/hospitals: the chain's registry, IDs and names.
func (s *Server) hospitals(w http.ResponseWriter, r *http.Request, _ *session) error {
	hs, err := s.names(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, hs)
}
