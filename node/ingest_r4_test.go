package node_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
)

// TestIngestRefusesWhatR4Forbids is issue 10's findings 3 and 4 through a real
// hospital node's API: a narrative with a DOCTYPE and an external entity, a
// <script> in a plain string, a string of 1.26 million characters and a searchset
// (with a repeated link relation, and without) are each refused with a 4xx
// OperationOutcome naming the path, and leave no block in the store, no DEK file
// and no record on the chain; searches for the patient answer 200 with an empty
// searchset until a valid record is ingested.
func TestIngestRefusesWhatR4Forbids(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hospital node")
	}
	hn := nodetest.StartConsortium(t, 1)
	ada := hn.Nodes[0]
	tokens, err := node.ReadTokens(hn.Homes[0])
	if err != nil {
		t.Fatal(err)
	}
	_, pid := nodetest.NewPatient(t)
	call := func(method, path, token, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, ada.APIURL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/fhir+json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	searchTotal := func(typ string) int {
		t.Helper()
		status, body := call("GET", "/fhir/"+typ+"?patient="+string(pid), tokens["clinician"], "")
		var b struct {
			ResourceType, Type string
			Total              *int
		}
		if err := json.Unmarshal(body, &b); status != http.StatusOK || err != nil || b.Type != "searchset" || b.Total == nil {
			t.Fatalf("GET /fhir/%s?patient=: %d %s, want 200 and a searchset with a total", typ, status, body)
		}
		return *b.Total
	}
	state := func() string {
		t.Helper()
		blocks := 0
		keys, err := ada.Store().Blockstore().AllKeysChan(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for range keys {
			blocks++
		}
		deks, _ := os.ReadDir(hn.Homes[0].Path(home.DEKDir))
		recs, _ := ada.Records(t.Context(), pid)
		return strings.Join([]string{"blocks " + strconv.Itoa(blocks), "DEK files " + strconv.Itoa(len(deks)), "records " + strconv.Itoa(len(recs))}, ", ")
	}

	if n := searchTotal("DocumentReference"); n != 0 {
		t.Fatalf("a new patient has %d records", n)
	}
	if n := searchTotal("Consent"); n != 0 {
		t.Fatalf("a new patient has %d consents", n)
	}
	if status, _ := call("GET", "/fhir/DocumentReference?patient=not-a-patient", tokens["clinician"], ""); status != http.StatusBadRequest {
		t.Errorf("a malformed patient parameter: %d, want 400", status)
	}
	before := state()

	patient := func(elements string) string {
		return `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b",` +
			`"resource":{"resourceType":"Patient","id":"p1",` + elements + `}}]}`
	}
	searchset, err := os.ReadFile(filepath.Join("..", "testdata", "fhir", "invalid", "searchset-as-record.json"))
	if err != nil {
		t.Fatal(err)
	}
	validSearchset := strings.Replace(string(searchset), `"relation": "next", "url": "https://evil`, `"relation": "last", "url": "https://evil`, 1)
	for _, c := range []struct{ name, body, code, path string }{
		{"DOCTYPE and external entity in the narrative",
			patient(`"text":{"status":"generated","div":"<!DOCTYPE div [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><div xmlns=\"http://www.w3.org/1999/xhtml\">&xxe;</div>"}`),
			"invalid", "Bundle.entry[0].resource.text.div"},
		{"script in a plain string", patient(`"name":[{"family":"Chalmers<script>alert(1)</script>"}]`), "invalid", "Bundle.entry[0].resource.name[0].family"},
		{"a string of 1.26 million characters", patient(`"name":[{"text":"` + strings.Repeat("a", 1_260_000) + `"}]`), "too-long", "Bundle.entry[0].resource.name[0].text"},
		{"searchset with a repeated link relation", string(searchset), "invalid", "Bundle.link[2].relation"},
		{"searchset as a record", validSearchset, "value", "Bundle.type"},
	} {
		status, body := call("POST", "/fhir/Bundle?patient="+string(pid), tokens["admin"], c.body)
		var oo struct {
			ResourceType string
			Issue        []struct {
				Code       string
				Expression []string
			}
		}
		json.Unmarshal(body, &oo)
		named := false
		for _, is := range oo.Issue {
			named = named || is.Code == c.code && len(is.Expression) == 1 && is.Expression[0] == c.path
		}
		if status != http.StatusBadRequest || oo.ResourceType != "OperationOutcome" || !named {
			t.Errorf("%s: %d %.300s\nwant 400 and an OperationOutcome with a %s issue at %s", c.name, status, body, c.code, c.path)
		}
		if after := state(); after != before {
			t.Fatalf("%s: the refused ingest changed the node: before %s, after %s", c.name, before, after)
		}
	}
	if n := searchTotal("DocumentReference"); n != 0 {
		t.Fatalf("after the refusals the patient has %d records", n)
	}

	// The same Bundle without the forbidden content is stored and registered.
	status, body := call("POST", "/fhir/Bundle?patient="+string(pid), tokens["admin"], patient(`"name":[{"family":"Chalmers","text":"< 7.0 & a<b"}]`))
	if status != http.StatusCreated {
		t.Fatalf("a valid Bundle: %d %s", status, body)
	}
	if after := state(); after == before {
		t.Errorf("a stored record changed nothing the test counts: %s", after)
	}
	if n := searchTotal("DocumentReference"); n != 1 {
		t.Errorf("after one ingest the search has total %d, want 1", n)
	}
	if recs, _ := ada.Records(t.Context(), pid); len(recs) != 1 || recs[0].Patient != pid {
		t.Errorf("records on the chain: %+v", recs)
	}
}
