package web_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/web"
)

// TestOfficerStream: the officer's live stream is the API's GET /audit/stream, called
// with the officer's token and the page's Last-Event-ID; without an officer's session
// it is refused; it ends when the session does.
func TestOfficerStream(t *testing.T) {
	const token = "the-officer's-token"
	calls := make(chan *http.Request, 1)
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { // the API's stream, as far as the pages see it
		calls <- r
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, ": open\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	s, err := web.New(identityOnly{}, web.Config{API: stream, Heartbeat: 10 * time.Millisecond,
		Tokens: []api.Token{{Role: api.RolePrivacyOfficer, SHA256: api.HashToken(token)}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	o := newClient(t, srv.URL)
	status, body := o.do(http.MethodGet, "/audit-app/api/stream", nil)
	wantRefused(t, "the stream without a session", status, body, http.StatusUnauthorized)
	status, body = o.do(http.MethodPost, "/audit-app/session", map[string]string{"token": token})
	var who struct{ CSRF string }
	if err := json.Unmarshal([]byte(body), &who); status != http.StatusOK || err != nil {
		t.Fatalf("officer sign-in: %d %s", status, body)
	}
	o.csrf = who.CSRF

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/audit-app/api/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", "41")
	res, err := o.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	select {
	case r := <-calls:
		if r.Method != http.MethodGet || r.URL.Path != "/audit/stream" || r.Header.Get("Authorization") != "Bearer "+token || r.Header.Get("Last-Event-ID") != "41" {
			t.Errorf("the API was called with %s %s, Authorization %q, Last-Event-ID %q", r.Method, r.URL, r.Header.Get("Authorization"), r.Header.Get("Last-Event-ID"))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the officer's stream did not call the API's")
	}
	if line, err := bufio.NewReader(res.Body).ReadString('\n'); err != nil || line != ": open\n" || res.StatusCode != http.StatusOK {
		t.Fatalf("the stream began %d %q, %v", res.StatusCode, line, err)
	}

	if status, body := o.do(http.MethodPost, "/audit-app/session/end", struct{}{}); status/100 != 2 {
		t.Fatalf("sign-out: %d %s", status, body)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, res.Body)
		ended <- err
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Error("the officer's stream is still open 5 s after sign-out")
	}
}
