package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
)

// sseBlock is one block of a Server-Sent Events stream: its fields, and its comment
// lines.
type sseBlock struct {
	event, id, data string
	comments        []string
}

// sseStream reads a live GET /audit/stream.
type sseStream struct {
	t      *testing.T
	res    *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// openStream starts GET path with role's token (and headers), and reads up to the
// stream's opening comment: by then the API has subscribed to the backend.
func (e *env) openStream(path string, role api.Role, header http.Header) *sseStream {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.t.Cleanup(cancel)
	hr, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+e.tokens[role])
	for k, v := range header {
		hr.Header[k] = v
	}
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		e.t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &sseStream{t: e.t, res: res, r: bufio.NewReader(res.Body), cancel: cancel}
	if b := s.next(); len(b.comments) != 1 || b.comments[0] != "medledger audit events" {
		e.t.Fatalf("first block %+v, want the opening comment", b)
	}
	return s
}

// next reads one block (up to a blank line).
func (s *sseStream) next() sseBlock {
	s.t.Helper()
	var b sseBlock
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("stream ended (%v) inside or before a block: %+v", err, b)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return b
		}
		if c, ok := strings.CutPrefix(line, ": "); ok {
			b.comments = append(b.comments, c)
			continue
		}
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "event":
			b.event = v
		case "id":
			b.id = v
		case "data":
			b.data += v
		default:
			s.t.Fatalf("unexpected line %q", line)
		}
	}
}

// nextEvent skips heartbeats to the next event and decodes it.
func (s *sseStream) nextEvent() consent.AuditEvent {
	s.t.Helper()
	for {
		b := s.next()
		if b.event == "" {
			continue
		}
		var e consent.AuditEvent
		if b.event != "audit" || json.Unmarshal([]byte(b.data), &e) != nil {
			s.t.Fatalf("block %+v, want an audit event", b)
		}
		if b.id != itoa(e.Index) {
			s.t.Errorf("id %s for event %d", b.id, e.Index)
		}
		return e
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// A patient's accesses arrive live, in order, only theirs; the stream ends when the
// node stops following.
func TestAuditStream(t *testing.T) {
	e := newEnv(t, api.Config{})
	s := e.openStream("/audit/stream?patient="+alice, api.RoleClinician, nil)
	if got := e.f.followedAsked()[0]; got != (consent.AuditFilter{Patient: alice}) {
		t.Errorf("Follow asked %+v, want alice's events", got)
	}
	c := e.f.chain
	must(c.Grant(aliceKey, permits("bayside", "TREAT"))) // alice's
	must(c.Grant(bobKey, permits("bayside", "TREAT")))   // bob's
	e.f.register(t, "ada", alice, recA)                  // alice's
	log := e.f.fullLog(t)
	for _, want := range []consent.AuditEvent{log[0], log[2]} {
		if got := s.nextEvent(); !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	}
	c.Stop() // the node stops
	if line, err := s.r.ReadString('\n'); err == nil {
		t.Errorf("after the backend closed: %q, want the end of the stream", line)
	}
}

// A client that reconnects with Last-Event-ID gets what it missed from the log, in
// order, then the live events, none twice.
func TestAuditStreamResume(t *testing.T) {
	e := newEnv(t, api.Config{})
	seedLog(t, e.f) // alice's events after index 7: 8, 10, 11
	c := e.f.chain
	e.f.at(jan(28, 0))
	e.f.onFollow = func() { // committed while the stream is catching up: sent once
		must(c.Grant(aliceKey, permits("ada", "TREAT")))
	}
	s := e.openStream("/audit/stream?patient="+alice, api.RolePrivacyOfficer, http.Header{"Last-Event-Id": {"7"}})
	must(c.Grant(aliceKey, permits("city", "TREAT")))
	log := e.f.fullLog(t)
	if len(log) != 14 {
		t.Fatalf("%d events, want 14", len(log))
	}
	for _, want := range []consent.AuditEvent{log[8], log[10], log[11], log[12], log[13]} {
		if got := s.nextEvent(); !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	}
}

// An idle stream gets a heartbeat comment; a client going away ends the backend's
// subscription.
func TestAuditStreamHeartbeat(t *testing.T) {
	e := newEnv(t, api.Config{Heartbeat: 20 * time.Millisecond})
	s := e.openStream("/audit/stream?hospital=ada&kind=key-released", api.RoleAdmin, nil)
	if got := e.f.followedAsked()[0]; got != (consent.AuditFilter{Hospital: "ada", Kind: consent.AuditKeyReleased}) {
		t.Errorf("Follow asked %+v", got)
	}
	if b := s.next(); len(b.comments) != 1 || b.comments[0] != "heartbeat" || b.event != "" {
		t.Errorf("idle block %+v, want a heartbeat comment", b)
	}
	s.cancel()
	deadline := time.Now().Add(5 * time.Second)
	for e.f.chain.Following() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the backend's Follow still runs after the client went away")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAuditStreamErrors(t *testing.T) {
	e := newEnv(t, api.Config{})
	tests := []struct {
		path   string
		role   api.Role
		header http.Header
		status int
		code   string
	}{
		{"/audit/stream?kind=bogus", api.RoleClinician, nil, 400, "value"},
		{"/audit/stream?patient=alice", api.RoleClinician, nil, 400, "value"},
		{"/audit/stream?hospital=Bayside%20General", api.RoleClinician, nil, 400, "value"},
		{"/audit/stream?since=1", api.RoleClinician, nil, 400, "not-supported"},
		{"/audit/stream", api.RoleClinician, http.Header{"Last-Event-Id": {"last"}}, 400, "value"},
		{"/audit/stream", "", nil, 401, "login"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			hr, _ := http.NewRequest("GET", e.srv.URL+tt.path, nil)
			if tt.role != "" {
				hr.Header.Set("Authorization", "Bearer "+e.tokens[tt.role])
			}
			for k, v := range tt.header {
				hr.Header[k] = v
			}
			res, err := e.srv.Client().Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body strings.Builder
			if _, err := bufio.NewReader(res.Body).WriteTo(&body); err != nil {
				t.Fatal(err)
			}
			wantOutcome(t, response{status: res.StatusCode, header: res.Header, body: []byte(body.String())}, tt.status, tt.code)
		})
	}
	if res := e.do(req{method: "HEAD", path: "/audit/stream", role: api.RoleClinician}); res.status != http.StatusMethodNotAllowed {
		t.Errorf("HEAD: %d, want 405", res.status)
	}
	if n := e.f.count("Follow"); n != 0 {
		t.Errorf("bad streams subscribed %d times", n)
	}
}
