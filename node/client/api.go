package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/medledger/medledger/consent"
)

// API reads what a node scopes by role through its HTTP API, with a bearer token:
// a patient's consents, the access log's events and entries, the accounting of
// disclosures, the emergency review queue. (CometBFT's RPC, which Client uses, answers
// only the chain's public reads: consent.PublicQuery.)
type API struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewAPI is the API at base (e.g. http://127.0.0.1:8080) with a bearer token.
func NewAPI(base, token string) (*API, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: API address %q: use http://host:port", base)
	}
	if token == "" {
		return nil, errors.New("client: the API needs a bearer token")
	}
	return &API{base: u, token: token, http: &http.Client{}}, nil
}

// APIError is an answer other than 2xx: its status and the OperationOutcome's first
// issue.
type APIError struct {
	Status int
	Code   string // the issue's type (e.g. "forbidden", "not-found")
	Text   string // its diagnostics
}

func (e *APIError) Error() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return "the API refused the token (401): " + e.Text
	case http.StatusForbidden:
		return "the token's role may not read this (403): " + e.Text
	}
	return fmt.Sprintf("API %d %s: %s", e.Status, e.Code, e.Text)
}

// Get reads path?query as JSON into v.
func (a *API) Get(ctx context.Context, path string, query url.Values, v any) error {
	b, err := a.GetBytes(ctx, path, query)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("client: API %s: %w", path, err)
	}
	return nil
}

// GetBytes reads path?query as it comes (e.g. CSV).
func (a *API) GetBytes(ctx context.Context, path string, query url.Values) ([]byte, error) {
	resp, err := a.do(ctx, http.MethodGet, path, query, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// Body is a request body of a known length and content type.
type Body struct {
	Type   string // e.g. "application/fhir+json"
	Size   int64  // sent as Content-Length
	Reader io.Reader
}

// Post sends body to path?query and reads the JSON answer into v.
func (a *API) Post(ctx context.Context, path string, query url.Values, body Body, v any) error {
	resp, err := a.do(ctx, http.MethodPost, path, query, http.Header{"Content-Type": {body.Type}}, &body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("client: API %s: %w", path, err)
	}
	return nil
}

// do sends method path?query (with body, if not nil) with the token and extra
// headers; a non-2xx answer is an *APIError.
func (a *API) do(ctx context.Context, method, path string, query url.Values, header http.Header, body *Body) (*http.Response, error) {
	u := *a.base
	u.Path += path
	u.RawQuery = query.Encode()
	var r io.Reader
	if body != nil {
		r = body.Reader
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, fmt.Errorf("client: API %s: %w", path, err)
	}
	if body != nil {
		req.ContentLength = body.Size
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: API %s does not answer: %w", a.base.Host, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, apiError(resp)
}

func apiError(resp *http.Response) *APIError {
	var oo struct {
		Issue []struct {
			Code        string `json:"code"`
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Status: resp.StatusCode, Text: http.StatusText(resp.StatusCode)}
	if json.Unmarshal(b, &oo) == nil && len(oo.Issue) > 0 {
		e.Code, e.Text = oo.Issue[0].Code, oo.Issue[0].Diagnostics
	}
	return e
}

// LogEntry is the access log's event at index with its leaf bytes (GET
// /audit/log/{index}: privacy officer or admin). Unverified: see auditor.Verifier.VerifyEvent.
func (a *API) LogEntry(ctx context.Context, index uint64) (*consent.LogEntry, error) {
	var e consent.LogEntry
	if err := a.Get(ctx, "/audit/log/"+strconv.FormatUint(index, 10), nil, &e); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, ae.Text)
		}
		return nil, err
	}
	return &e, nil
}

// Follow reads the access log's events as they are committed (GET /audit/stream, any
// staff role) and calls fn with each, in log order, until ctx ends (then it returns
// nil) or the stream does. after, if not nil, resumes after that log index: the events
// since come first (Last-Event-ID).
func (a *API) Follow(ctx context.Context, query url.Values, after *uint64, fn func(consent.AuditEvent) error) error {
	h := http.Header{}
	if after != nil {
		h.Set("Last-Event-ID", strconv.FormatUint(*after, 10))
	}
	h.Set("Accept", "text/event-stream")
	resp, err := a.do(ctx, http.MethodGet, "/audit/stream", query, h, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		case line == "" && len(data) > 0:
			var e consent.AuditEvent
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("client: audit stream: %w", err)
			}
			data = data[:0]
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("client: audit stream: %w", err)
	}
	return errors.New("client: the audit stream ended (the node stopped?)")
}
