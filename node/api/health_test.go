package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/medledger/medledger/node/api"
)

func (f *fake) Health() api.Health {
	h := int64(f.chain.Height())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.health.Status == "" {
		return api.Health{Status: api.StatusOK, Height: h, Peers: 3, PeerHeight: h, LatestBlockAge: 0.2}
	}
	return f.health
}

func (f *fake) setHealth(h api.Health) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health = h
}

// TestHealthz: 200 only when the node is ok; otherwise 503 with Retry-After. Either
// way the body names the hospital and chain and carries the facts and the reason.
func TestHealthz(t *testing.T) {
	e := newEnv(t, api.Config{})
	tests := []struct {
		health api.Health
		status int
	}{
		{api.Health{Status: api.StatusOK, Height: 12, Peers: 3, PeerHeight: 12, LatestBlockAge: 0.25}, http.StatusOK},
		{api.Health{Status: api.StatusUnavailable, Height: 3, CatchingUp: true, Peers: 3, PeerHeight: 40, LatestBlockAge: 61.5,
			Reason: "catching up by block sync (height 3, peers report 40)"}, http.StatusServiceUnavailable},
		{api.Health{Status: api.StatusFailed, Height: 9, Peers: 3, PeerHeight: 30, LatestBlockAge: 4,
			Reason: "chain: consensus failure: no space left on device"}, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		e.f.setHealth(tt.health)
		res := e.do(req{method: "GET", path: "/healthz"})
		var got api.Health
		decode(t, res.body, &got)
		want := tt.health
		want.Hospital, want.ChainID = "bayside", "medledger-test"
		if res.status != tt.status || got != want {
			t.Errorf("%s: got %d %+v, want %d %+v", tt.health.Status, res.status, got, tt.status, want)
		}
		if retry := res.header.Get("Retry-After"); (tt.status == http.StatusOK) != (retry == "") {
			t.Errorf("%s: Retry-After %q", tt.health.Status, retry)
		}
		for _, key := range []string{`"status"`, `"hospital"`, `"chain_id"`, `"height"`, `"catching_up"`, `"peers"`, `"latest_block_age_seconds"`} {
			if !bytes.Contains(res.body, []byte(key)) {
				t.Errorf("%s: body lacks %s: %s", tt.health.Status, key, res.body)
			}
		}
	}
}

// TestFailedNodeServesNoRecords: a failed node refuses ingest, reads and break-glass
// with 503 and the reason, before asking its backend anything; an unavailable one
// still serves them (its requests are decided on the chain).
func TestFailedNodeServesNoRecords(t *testing.T) {
	e := newEnv(t, api.Config{})
	id := e.ingest()
	e.f.setHealth(api.Health{Status: api.StatusUnavailable, Reason: "behind its peers"})
	if res := e.do(req{method: "GET", path: "/records/" + string(id) + "?purpose=TREAT", role: api.RoleClinician}); res.status == http.StatusServiceUnavailable {
		t.Fatalf("an unavailable node refused a read: %s", res.body)
	}
	e.f.setHealth(api.Health{Status: api.StatusFailed, Reason: "chain: consensus failure: disk full"})
	before := e.f.mutations()
	for _, r := range []req{
		{method: "POST", path: "/fhir/Bundle?patient=" + alice, role: api.RoleClinician, body: bytes.NewReader(synthea(t))},
		{method: "GET", path: "/records/" + string(id) + "?purpose=TREAT", role: api.RoleClinician},
		{method: "POST", path: "/records/" + string(id) + "/$emergency-access?reason=PATIENT-UNCONSCIOUS", role: api.RoleClinician},
	} {
		res := e.do(r)
		oo := wantOutcome(t, res, http.StatusServiceUnavailable, "transient")
		if !strings.Contains(oo.Issue[0].Diagnostics, "disk full") || res.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %+v (Retry-After %q); want the reason and a Retry-After", r.method, r.path, oo.Issue, res.header.Get("Retry-After"))
		}
	}
	if got := e.f.mutations(); got != before {
		t.Errorf("a failed node called its backend %d times", got-before)
	}
}
