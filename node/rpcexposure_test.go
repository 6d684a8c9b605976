package node_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

// TestNoSideDoorThroughRPC: an anonymous client of a hospital node's CometBFT RPC
// gets none of what the API scopes by role — a patient's records and consents, access
// decisions, the emergency queue, the access log's events and pages — while the node's
// own API answers the same data to a token of the right role (401 without one, 403 for
// the wrong role); the chain's public reads (registry, height, the log's head, roots and
// proofs, hash parts) still answer over the RPC.
func TestNoSideDoorThroughRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs on a 4-hospital network")
	}
	t.Parallel()
	net := shared.Get(t)
	ada, bayside := net.Nodes[0], net.Nodes[1]
	ctx := nodetest.Ctx(t)
	patient, pid := nodetest.NewPatient(t)
	rec, err := ada.Ingest(ctx, pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	granted := nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "bayside"))
	access, err := bayside.Read(ctx, rec.ID, "TREAT")
	if err != nil {
		t.Fatal(err)
	}
	grant := access.Decision.ID
	if _, err := bayside.Emergency(ctx, rec.ID, consent.EmergencyReasons()[0]); err != nil {
		t.Fatal(err)
	}
	head, err := ada.LogHead()
	if err != nil {
		t.Fatal(err)
	}

	rpc, err := rpchttp.New(net.RPC(0), "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	query := func(path string, data []byte) (uint32, string, []byte) {
		t.Helper()
		res, err := rpc.ABCIQuery(ctx, path, data)
		if err != nil {
			t.Fatalf("RPC abci_query %s: %v", path, err)
		}
		return res.Response.Code, res.Response.Codespace, res.Response.Value
	}

	// Refused over the RPC, though the node's own reads find each.
	filter, _ := json.Marshal(consent.AuditFilter{Patient: pid})
	for _, q := range []struct {
		path string
		data []byte
	}{
		{"/consents/" + string(pid), nil},
		{"/consent/" + string(granted.ID), nil},
		{"/record/" + string(rec.ID), nil},
		{"/records/" + string(pid), nil},
		{"/grant/" + string(grant), nil},
		{"/decisions/" + string(pid), nil},
		{"/emergency-queue", nil},
		{"/emergencies", nil},
		{"/release/" + string(grant) + "/bayside", nil},
		{"/audit/events", filter},
		{"/audit/events", nil},
		{"/audit/event/0", nil},
		{"audit/event/0", nil},
	} {
		code, space, value := query(q.path, q.data)
		if code != abci.CodeNotPublic || space != abci.QueryCodespace || len(value) != 0 {
			t.Errorf("RPC %s: code %d codespace %q, %d bytes; want refused", q.path, code, space, len(value))
		}
		own, _, err := ada.Chain().Query(q.path, q.data)
		if err != nil || own.Code != 0 || len(own.Value) == 0 {
			t.Errorf("the node's own %s: code %d %s, %v; want an answer", q.path, own.Code, own.Log, err)
		}
	}

	// Public over the RPC.
	for _, path := range []string{"/hospitals", "/hospital/ada", "/height", "/audit/head",
		fmt.Sprintf("/audit/root/%d", head.Height), "/audit/inclusion/0", fmt.Sprintf("/audit/consistency/1/%d", head.Size),
		abci.HashPartsPath + strconv.FormatInt(int64(head.Height), 10)} {
		if code, _, value := query(path, nil); code != 0 || len(value) == 0 {
			t.Errorf("RPC %s: code %d, %d bytes; want an answer", path, code, len(value))
		}
	}

	// The API answers the same data to the right role only.
	tokens, err := node.ReadTokens(net.Homes[0])
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, role string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ada.APIURL()+path, nil)
		if role != "" {
			req.Header.Set("Authorization", "Bearer "+tokens[role])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		path, role string // role: one the API accepts
		wrong      string // one it refuses ("": every staff role may)
		want       string // in the answer
	}{
		{"/consents?patient=" + string(pid), "clinician", "", string(granted.ID)},
		{"/fhir/Consent?patient=" + string(pid), "clinician", "", string(granted.ID)},
		{"/fhir/DocumentReference/" + string(rec.ID), "clinician", "", string(rec.ID)},
		{"/fhir/DocumentReference?patient=" + string(pid), "privacy-officer", "", string(rec.ID)},
		{"/audit/events?patient=" + string(pid), "privacy-officer", "clinician", string(grant)},
		{"/audit/emergencies", "privacy-officer", "clinician", `"emergency"`},
		{"/audit/log/0", "privacy-officer", "clinician", `"leaf"`},
		{"/audit/accounting?patient=" + string(pid) + "&format=json", "admin", "clinician", `"disclosures"`},
	} {
		if status, body := get(c.path, c.role); status != http.StatusOK || !strings.Contains(body, c.want) {
			t.Errorf("API %s as %s: %d %.200s; want 200 with %s", c.path, c.role, status, body, c.want)
		}
		if status, _ := get(c.path, ""); status != http.StatusUnauthorized {
			t.Errorf("API %s without a token: %d, want 401", c.path, status)
		}
		if c.wrong != "" {
			if status, _ := get(c.path, c.wrong); status != http.StatusForbidden {
				t.Errorf("API %s as %s: %d, want 403", c.path, c.wrong, status)
			}
		}
	}
	// Bad input to the chain-form reads: an OperationOutcome, nothing else.
	for path, want := range map[string]int{
		"/audit/log/x": http.StatusBadRequest,
		fmt.Sprintf("/audit/log/%d", head.Size+1000):    http.StatusNotFound,
		"/audit/log/0?size=3":                           http.StatusBadRequest,
		"/consents?patient=nobody":                      http.StatusBadRequest,
		"/consents?patient=" + string(pid) + "&extra=1": http.StatusBadRequest,
	} {
		if status, body := get(path, "admin"); status != want || !strings.Contains(body, "OperationOutcome") {
			t.Errorf("API %s: %d %.200s; want %d with an OperationOutcome", path, status, body, want)
		}
	}
}
