package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/medledger/medledger/consent"
)

// handleStream registers a live stream at pattern for callers with access a: no
// request deadline (a stream lasts), but it ends when the session does; a session
// holds at most maxStreams open (429 beyond).
func (s *Server) handleStream(pattern string, a access, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		se, err := s.admit(r, a)
		if err == nil {
			err = se.openStream()
		}
		if err == nil {
			defer se.closeStream()
			err = h(w, r, se)
		}
		if err != nil {
			s.fail(w, r, err)
		}
	})
}

// events is GET /app/api/events: the events about the session's patient as they are
// committed, as Server-Sent Events ("audit", data the event's JSON, id its log index),
// each within one block of its commit. A comment every heartbeat keeps the connection
// open; the stream ends when the page goes, the session ends or the node stops.
func (s *Server) events(w http.ResponseWriter, r *http.Request, se *session) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel() // ends the Backend's Follow
	live, err := s.b.Follow(ctx, consent.AuditFilter{Patient: se.patient})
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream has no end to bound; not every writer has deadlines
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	out := &sseWriter{w: w, rc: rc}
	if out.comment("medledger: your access log, live") != nil {
		return nil // the page is gone
	}
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-se.ended():
			return nil
		case e, ok := <-live:
			if !ok || out.event(e) != nil {
				return nil
			}
		case <-tick.C:
			if !s.sessions.alive(se) || out.comment("heartbeat") != nil {
				return nil
			}
		}
	}
}

// officerStream is GET /audit-app/api/stream: the access log's events as they are
// committed — the API's GET /audit/stream, called with the officer's token (and the
// page's Last-Event-ID, so a reconnecting page misses nothing). The officer's page
// refreshes its review queue when an emergency access or a review arrives. The
// stream ends when the page goes, the session ends or the node stops.
func (s *Server) officerStream(w http.ResponseWriter, r *http.Request, se *session) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go s.endWithSession(ctx, cancel, se)
	r = r.WithContext(ctx)
	req, err := s.apiRequest(r, se, http.MethodGet, "/audit/stream", nil)
	if err != nil {
		return err
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	s.cfg.API.ServeHTTP(w, req)
	return nil
}

// endWithSession calls cancel once se is no longer live: at once when it is ended,
// replaced or found expired, else at the next heartbeat that finds it expired; it
// returns when ctx ends.
func (s *Server) endWithSession(ctx context.Context, cancel context.CancelFunc, se *session) {
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-se.ended():
			cancel()
			return
		case <-tick.C:
			if !s.sessions.alive(se) {
				cancel()
				return
			}
		}
	}
}

// sseWriter writes Server-Sent Events, flushing each.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *sseWriter) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sseWriter) event(e consent.AuditEvent) error {
	data, err := json.Marshal(e) // one line: JSON strings escape newlines
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(s.w, "event: audit\nid: %d\ndata: %s\n\n", e.Index, data); err != nil {
		return err
	}
	return s.rc.Flush()
}
