package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medledger/medledger/consent"
)

// maxBacklog bounds the events a reconnecting stream replays (Last-Event-ID): a client
// further behind reads the log page by page from /audit/events instead.
const maxBacklog = 5000

// stream is GET /audit/stream?patient=&hospital=&kind=: the access log's events as they
// are committed, as Server-Sent Events (one "audit" event per log event: id its index,
// data its JSON), each within one block of its commit (Backend.Follow). A comment every
// heartbeat keeps the connection open. A client that reconnects with Last-Event-ID
// first gets the events it missed, in log order, then the live ones, none twice. The
// stream ends when the client goes or the node stops.
func (s *server) stream(heartbeat time.Duration) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method == http.MethodHead { // a stream has no end to measure: no HEAD
			w.Header().Set("Allow", "GET")
			return &problem{status: http.StatusMethodNotAllowed, issue: issue("not-supported", "", "HEAD is not supported here; allowed: GET")}
		}
		q, err := auditQuery(r, []string{"patient", "hospital", "kind"}, nil)
		if err != nil {
			return err
		}
		f, err := auditFilter(q, "hospital", "", "")
		if err != nil {
			return err
		}
		last, resume, err := lastEventID(r)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel() // ends the Backend's Follow
		live, err := s.b.Follow(ctx, f)
		if err != nil {
			return err
		}
		var backlog []consent.AuditEvent
		if resume { // after subscribing, so that nothing falls between the two
			if backlog, err = s.missed(ctx, f, last); err != nil {
				return err
			}
		}
		out := newSSE(w)
		if err := out.open(); err != nil {
			return nil // the client is gone
		}
		sent := sentTracker{last: last, any: resume}
		for _, e := range backlog {
			if err := out.send(&sent, e); err != nil {
				return nil
			}
		}
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case e, ok := <-live:
				if !ok {
					return nil
				}
				if err := out.send(&sent, e); err != nil {
					return nil
				}
			case <-tick.C:
				if err := out.comment("heartbeat"); err != nil {
					return nil
				}
			}
		}
	}
}

// lastEventID reads the Last-Event-ID header of a reconnecting EventSource: the index
// of the last event it received.
func lastEventID(r *http.Request) (uint64, bool, error) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, badRequest("value", "", "Last-Event-ID '%s' is not an event id this stream sent (a log index)", consent.Truncate(v, 40))
	}
	return n, true, nil
}

// missed returns the events f matches after index last, oldest first.
func (s *server) missed(ctx context.Context, f consent.AuditFilter, last uint64) ([]consent.AuditEvent, error) {
	f.Limit, f.Before = consent.MaxAuditLimit, 0
	var out []consent.AuditEvent
	for {
		page, err := s.b.AuditEvents(ctx, f)
		if err != nil {
			return nil, err
		}
		done := page.Next == 0 || page.Next <= last+1
		for _, e := range page.Events {
			if e.Index <= last {
				done = true
				break
			}
			out = append(out, e)
		}
		if len(out) > maxBacklog {
			return nil, badRequest("too-costly", "", "more than %d events since Last-Event-ID %d: read them from GET /audit/events, then reconnect without Last-Event-ID", maxBacklog, last)
		}
		if done {
			slices.Reverse(out)
			return out, nil
		}
		if f.Before != 0 && page.Next >= f.Before {
			return nil, fmt.Errorf("api: the access log's pages do not advance (next %d after before %d)", page.Next, f.Before)
		}
		f.Before = page.Next
	}
}

// sentTracker remembers the last index sent, so no event goes out twice.
type sentTracker struct {
	last uint64
	any  bool
}

// sse writes Server-Sent Events, flushing each.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newSSE(w http.ResponseWriter) *sse { return &sse{w: w, rc: http.NewResponseController(w)} }

// open sends the headers and a first comment, with no write deadline: a stream lasts.
func (s *sse) open() error {
	_ = s.rc.SetWriteDeadline(time.Time{}) // not every writer has deadlines; none is fine
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("X-Accel-Buffering", "no") // tell proxies not to hold events back
	s.w.WriteHeader(http.StatusOK)
	return s.comment("medledger audit events")
}

func (s *sse) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.rc.Flush()
}

// send writes e as an "audit" event, unless it was sent already.
func (s *sse) send(t *sentTracker, e consent.AuditEvent) error {
	if t.any && e.Index <= t.last {
		return nil
	}
	data, err := json.Marshal(e) // one line: JSON strings escape newlines
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(s.w, "event: audit\nid: %d\ndata: %s\n\n", e.Index, data); err != nil {
		return err
	}
	t.last, t.any = e.Index, true
	return s.rc.Flush()
}
