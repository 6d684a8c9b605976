package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/medledger/medledger/node/api"
)

func TestUnrouted(t *testing.T) {
	e := newEnv(t, api.Config{})
	tests := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nope", http.StatusNotFound, "not-found", ""},
		{"GET", "/fhir/Patient/1", http.StatusNotFound, "not-found", ""},
		{"GET", "/records/" + strings.Repeat("ab", 16) + "/extra", http.StatusNotFound, "not-found", ""},
		{"DELETE", "/fhir/metadata", http.StatusMethodNotAllowed, "not-supported", "GET, HEAD"},
		{"POST", "/fhir/DocumentReference", http.StatusMethodNotAllowed, "not-supported", "GET, HEAD"},
		{"PUT", "/fhir/Consent", http.StatusMethodNotAllowed, "not-supported", "GET, HEAD, POST"},
		{"GET", "/fhir/Bundle", http.StatusMethodNotAllowed, "not-supported", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			res := e.do(req{method: tt.method, path: tt.path, role: api.RoleAdmin})
			wantOutcome(t, res, tt.status, tt.code)
			if got := res.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
}

// TestPanic: a panic is a 500 that says nothing of its cause; the log has it.
func TestPanic(t *testing.T) {
	e := newEnv(t, api.Config{})
	e.f.panicOn = "Records"
	res := e.do(req{method: "GET", path: "/fhir/DocumentReference?patient=" + alice, role: api.RoleClinician})
	wantOutcome(t, res, http.StatusInternalServerError, "exception")
	if bytes.Contains(res.body, []byte("boom")) {
		t.Errorf("the response reveals the panic: %s", res.body)
	}
	if !strings.Contains(e.logs.String(), "boom") {
		t.Errorf("the log does not have the panic")
	}
	e.f.panicOn = ""
	if res := e.do(req{method: "GET", path: "/healthz"}); res.status != http.StatusOK {
		t.Errorf("after a panic: %d", res.status)
	}
}

// TestLogs: one line per request with method, route pattern, status and duration;
// never a token, a body or a query string.
func TestLogs(t *testing.T) {
	e := newEnv(t, api.Config{})
	id := e.ingest()
	e.grantAlice()
	e.do(req{method: "GET", path: "/records/" + string(id) + "?purpose=TREAT", role: api.RoleClinician})
	e.do(req{method: "POST", path: "/fhir/Bundle?patient=" + alice, role: api.RoleClinician,
		body: strings.NewReader(`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"Patient/Jane-Doe-1970","resource":{"resourceType":"Patient","id":"Jane-Doe-1970"}}]}`)})
	e.do(req{method: "GET", path: "/nope?patient=" + alice})
	e.do(req{method: "GET", path: "/fhir/DocumentReference?patient=" + alice, token: "wrong-token"})

	logs := e.logs.String()
	var routes []string
	for line := range strings.Lines(logs) {
		var l struct {
			Msg, Method, Route string
			Status             int
			Duration           float64
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if l.Msg == "api: request" {
			routes = append(routes, l.Route)
			if l.Method == "" || l.Status == 0 || l.Duration == 0 {
				t.Errorf("incomplete log line: %s", line)
			}
		}
	}
	want := "POST /fhir/Bundle,GET /records/{id},POST /fhir/Bundle,unrouted,GET /fhir/DocumentReference"
	if strings.Join(routes, ",") != want {
		t.Errorf("routes logged %v, want %s", routes, want)
	}
	secrets := []string{"Clemente", "Kreiger", "Jane-Doe", "?patient", "wrong-token"}
	for _, tok := range e.tokens {
		secrets = append(secrets, tok)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
}
