package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
)

const (
	alice = "6a50a417ca262e8a7553ac8b7d8c620cebefbf4cfa0ef9d440d4fc492a3b8632" // consenttest.NewKey("alice")
	// syntheaFile is a small Synthea patient Bundle (224 KB).
	syntheaFile = "../../testdata/fhir/synthea/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
)

func synthea(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(syntheaFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ingest posts the Synthea bundle for alice and returns the record ID.
func (e *env) ingest() consent.RecordID {
	e.t.Helper()
	res := e.do(req{method: "POST", path: "/fhir/Bundle?patient=" + alice, role: api.RoleClinician, body: bytes.NewReader(synthea(e.t))})
	wantResource(e.t, res, http.StatusCreated, "DocumentReference")
	var d struct{ ID string }
	decode(e.t, res.body, &d)
	return consent.RecordID(d.ID)
}

func TestMetadata(t *testing.T) {
	e := newEnv(t, api.Config{})
	res := e.do(req{method: "GET", path: "/fhir/metadata"})
	wantResource(t, res, http.StatusOK, "CapabilityStatement")
	var cs struct {
		Status, Kind, FHIRVersion string
		Format                    []string
		Software                  struct{ Name, Version string }
		Implementation            struct{ Description string }
		Rest                      []struct {
			Resource []struct {
				Type        string
				Interaction []struct{ Code string }
			}
		}
	}
	decode(t, res.body, &cs)
	if cs.Status != "active" || cs.Kind != "instance" || cs.FHIRVersion != "4.0.1" || strings.Join(cs.Format, ",") != "json" ||
		cs.Software.Name != "medledger" || cs.Software.Version != "v0.0.0-test" ||
		!strings.Contains(cs.Implementation.Description, "Bayside General") {
		t.Errorf("CapabilityStatement: %+v", cs)
	}
	var got []string
	for _, r := range cs.Rest[0].Resource {
		for _, i := range r.Interaction {
			got = append(got, r.Type+":"+i.Code)
		}
	}
	if want := "Bundle:create DocumentReference:search-type Consent:create Consent:search-type AuditEvent:read AuditEvent:search-type"; strings.Join(got, " ") != want {
		t.Errorf("interactions %v, want %s", got, want)
	}
}

// TestAuth: the token decides, by its role, per endpoint.
func TestAuth(t *testing.T) {
	e := newEnv(t, api.Config{})
	id := e.ingest()
	search := "/fhir/DocumentReference?patient=" + alice
	tests := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"no token", req{method: "GET", path: search}, http.StatusUnauthorized, "login"},
		{"unknown token", req{method: "GET", path: search, token: "not-a-token"}, http.StatusUnauthorized, "login"},
		{"a token's hash as token", req{method: "GET", path: search, token: api.HashToken(e.tokens[api.RoleAdmin])}, http.StatusUnauthorized, "login"},
		{"privacy officer ingests", req{method: "POST", path: "/fhir/Bundle?patient=" + alice, role: api.RolePrivacyOfficer, body: strings.NewReader("{}")}, http.StatusForbidden, "forbidden"},
		{"admin reads a record", req{method: "GET", path: "/records/" + string(id) + "?purpose=TREAT", role: api.RoleAdmin}, http.StatusForbidden, "forbidden"},
		{"privacy officer breaks the glass", req{method: "POST", path: "/records/" + string(id) + "/$emergency-access?reason=life-threatening", role: api.RolePrivacyOfficer}, http.StatusForbidden, "forbidden"},
	}
	before := e.f.mutations()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(tt.r)
			wantOutcome(t, res, tt.status, tt.code)
			if tt.status == http.StatusUnauthorized && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", res.header.Get("WWW-Authenticate"))
			}
		})
	}
	if e.f.mutations() != before {
		t.Errorf("a refused request reached the backend")
	}
	for _, role := range []api.Role{api.RoleClinician, api.RolePrivacyOfficer, api.RoleAdmin} {
		if res := e.do(req{method: "GET", path: search, role: role}); res.status != http.StatusOK {
			t.Errorf("%s: search got %d", role, res.status)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := api.HashToken("t")
	tests := []struct {
		name string
		cfg  api.Config
	}{
		{"unknown role", api.Config{Tokens: []api.Token{{Role: "root", SHA256: ok}}}},
		{"token, not hash", api.Config{Tokens: []api.Token{{Role: api.RoleAdmin, SHA256: "t"}}}},
		{"uppercase hash", api.Config{Tokens: []api.Token{{Role: api.RoleAdmin, SHA256: strings.ToUpper(ok)}}}},
		{"same token twice", api.Config{Tokens: []api.Token{{Role: api.RoleAdmin, SHA256: ok}, {Role: api.RoleClinician, SHA256: ok}}}},
	}
	for _, tt := range tests {
		if _, err := api.New(newFake(t), tt.cfg); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	tok, err := api.NewToken()
	if err != nil || len(tok) != 43 {
		t.Errorf("NewToken: %q, %v", tok, err)
	}
}

func TestIngest(t *testing.T) {
	e := newEnv(t, api.Config{})
	res := e.do(req{method: "POST", path: "/fhir/Bundle?patient=" + alice, role: api.RoleClinician,
		contentType: "application/json; charset=utf-8", body: bytes.NewReader(synthea(t))})
	wantResource(t, res, http.StatusCreated, "DocumentReference")
	var d struct {
		ID, Status string
		Subject    struct{ Reference string }
		Custodian  struct{ Reference string }
		Identifier []struct{ System, Value string }
		Category   []struct {
			Coding []struct{ System, Code string }
		}
		Content []struct {
			Attachment struct{ ContentType, URL string }
		}
	}
	decode(t, res.body, &d)
	if loc := res.header.Get("Location"); loc != "/records/"+d.ID || len(d.ID) != 32 {
		t.Errorf("Location %q for record %q", loc, d.ID)
	}
	if d.Status != "current" || d.Subject.Reference != "Patient/"+alice || d.Custodian.Reference != "Organization/bayside" ||
		d.Identifier[0].System != "urn:ietf:rfc:3986" || !strings.HasPrefix(d.Identifier[0].Value, "ipfs://bafy") ||
		d.Content[0].Attachment.URL != "/records/"+d.ID || d.Content[0].Attachment.ContentType != "application/fhir+json" ||
		len(d.Category) == 0 || d.Category[0].Coding[0].System != "http://hl7.org/fhir/resource-types" {
		t.Errorf("DocumentReference: %s", res.body)
	}
	if n := len(must(e.f.chain.Records(alice))); n != 1 || len(e.f.bundles) != 1 {
		t.Errorf("%d records registered, %d stored, want 1", n, len(e.f.bundles))
	}
}

// TestIngestRefused: bad requests are answered with an OperationOutcome and store
// nothing.
func TestIngestRefused(t *testing.T) {
	e := newEnv(t, api.Config{MaxBody: 64 << 10})
	invalid := `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"Patient/1","resource":{"resourceType":"Patient","id":"1"}}]}`
	tests := []struct {
		name       string
		r          req
		status     int
		code, path string
	}{
		{"invalid FHIR", req{body: strings.NewReader(invalid)}, http.StatusBadRequest, "value", "Bundle.entry[0]"},
		{"not JSON", req{body: strings.NewReader(`{"resourceType":"Bundle",`)}, http.StatusBadRequest, "structure", ""},
		{"not a Bundle", req{body: strings.NewReader(`{"resourceType":"Patient","id":"1"}`)}, http.StatusBadRequest, "invalid", ""},
		{"XML", req{contentType: "application/fhir+xml", body: strings.NewReader("<Bundle/>")}, http.StatusUnsupportedMediaType, "not-supported", ""},
		{"no content type", req{contentType: "text/plain", body: strings.NewReader("{}")}, http.StatusUnsupportedMediaType, "not-supported", ""},
		{"latin-1", req{contentType: "application/fhir+json; charset=iso-8859-1", body: strings.NewReader("{}")}, http.StatusUnsupportedMediaType, "not-supported", ""},
		{"too large", req{body: bytes.NewReader(synthea(t))}, http.StatusRequestEntityTooLarge, "too-costly", ""},
		{"too large, streamed", req{body: iotest.HalfReader(bytes.NewReader(synthea(t)))}, http.StatusRequestEntityTooLarge, "too-costly", ""},
		{"no patient", req{path: "/fhir/Bundle", body: strings.NewReader("{}")}, http.StatusBadRequest, "required", ""},
		{"patient not a key", req{path: "/fhir/Bundle?patient=f001", body: strings.NewReader("{}")}, http.StatusBadRequest, "value", ""},
		{"patient uppercase", req{path: "/fhir/Bundle?patient=" + strings.ToUpper(alice), body: strings.NewReader("{}")}, http.StatusBadRequest, "value", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.method, tt.r.role = "POST", api.RoleClinician
			if tt.r.path == "" {
				tt.r.path = "/fhir/Bundle?patient=" + alice
			}
			oo := wantOutcome(t, e.do(tt.r), tt.status, tt.code)
			if tt.path != "" && (len(oo.Issue[0].Expression) == 0 || oo.Issue[0].Expression[0] != tt.path) {
				t.Errorf("issue %+v, want the path %s", oo.Issue[0], tt.path)
			}
		})
	}
	if n := len(must(e.f.chain.Records(alice))); n != 0 || len(e.f.bundles) != 0 {
		t.Errorf("%d records registered, %d stored, want none", n, len(e.f.bundles))
	}
}

func TestSearchRecords(t *testing.T) {
	e := newEnv(t, api.Config{})
	id := e.ingest()
	ok(t, e.f.chain.Erase(aliceKey, id))
	second := e.ingest()

	res := e.do(req{method: "GET", path: "/fhir/DocumentReference?patient=Patient/" + alice, role: api.RolePrivacyOfficer})
	wantResource(t, res, http.StatusOK, "Bundle")
	var b struct {
		Type  string
		Total int
		Entry []struct {
			FullURL  string
			Resource struct{ ResourceType, ID, Status string }
		}
	}
	decode(t, res.body, &b)
	if b.Type != "searchset" || b.Total != 2 || len(b.Entry) != 2 {
		t.Fatalf("searchset: %s", res.body)
	}
	status := map[string]string{}
	for _, en := range b.Entry {
		status[en.Resource.ID] = en.Resource.Status
		if !strings.HasPrefix(en.FullURL, e.srv.URL+"/fhir/DocumentReference/") || en.Resource.ResourceType != "DocumentReference" {
			t.Errorf("entry %+v", en)
		}
	}
	if status[string(id)] != "entered-in-error" || status[string(second)] != "current" {
		t.Errorf("statuses %v", status)
	}

	bob := strings.Repeat("0b", 32)
	// A patient with no records (here: one the chain knows nothing of) is an empty
	// searchset, as FHIR search answers, not 404 (issue 10, finding 4).
	wantEmptySearch(t, e.do(req{method: "GET", path: "/fhir/DocumentReference?patient=" + bob, role: api.RoleClinician}))
	wantEmptySearch(t, e.do(req{method: "GET", path: "/fhir/DocumentReference?patient=Patient/" + bob, role: api.RoleClinician}))
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/DocumentReference?patient=" + bob[:10], role: api.RoleClinician}), http.StatusBadRequest, "value")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/DocumentReference", role: api.RoleClinician}), http.StatusBadRequest, "required")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/DocumentReference?patient=" + alice + "&patient=" + bob, role: api.RoleClinician}), http.StatusBadRequest, "required")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/DocumentReference?patient=Patient/f001", role: api.RoleClinician}), http.StatusBadRequest, "value")
}

// wantEmptySearch: a search that matches nothing answers 200 with a searchset of
// total 0 and no entries.
func wantEmptySearch(t *testing.T, res response) {
	t.Helper()
	wantResource(t, res, http.StatusOK, "Bundle")
	var b struct {
		Type  string
		Total *int
		Link  []struct{ Relation, URL string }
		Entry []json.RawMessage
	}
	decode(t, res.body, &b)
	if b.Type != "searchset" || b.Total == nil || *b.Total != 0 || len(b.Entry) != 0 || len(b.Link) != 1 || b.Link[0].Relation != "self" {
		t.Errorf("want an empty searchset with total 0 and a self link, got %s", res.body)
	}
}

// The search's fullUrls resolve: one record and one consent by ID.
func TestGetByID(t *testing.T) {
	e := newEnv(t, api.Config{})
	id := e.ingest()
	res := e.do(req{method: "GET", path: "/fhir/DocumentReference/" + string(id), role: api.RolePrivacyOfficer})
	wantResource(t, res, http.StatusOK, "DocumentReference")
	var doc struct{ ID string }
	decode(t, res.body, &doc)
	if doc.ID != string(id) {
		t.Fatalf("DocumentReference %s, want %s", doc.ID, id)
	}
	cid := e.grantAlice()
	res = e.do(req{method: "GET", path: "/fhir/Consent/" + string(cid), role: api.RoleClinician})
	wantResource(t, res, http.StatusOK, "Consent")
	decode(t, res.body, &doc)
	if doc.ID != string(cid) {
		t.Fatalf("Consent %s, want %s", doc.ID, cid)
	}
	missing := strings.Repeat("ab", 16)
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/DocumentReference/" + missing, role: api.RoleClinician}), http.StatusNotFound, "not-found")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/Consent/" + missing, role: api.RoleClinician}), http.StatusNotFound, "not-found")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/DocumentReference/nope", role: api.RoleClinician}), http.StatusBadRequest, "value")
	wantOutcome(t, e.do(req{method: "GET", path: "/fhir/Consent/" + string(cid)}), http.StatusUnauthorized, "login")
}

// grantAlice commits alice's consent on the chain: she permits bayside for TREAT.
func (e *env) grantAlice() consent.ConsentID {
	return must(e.f.chain.Grant(aliceKey, permits("bayside", "TREAT")))
}

func TestRead(t *testing.T) {
	e := newEnv(t, api.Config{})
	id := e.ingest()
	path := "/records/" + string(id)

	t.Run("no consent", func(t *testing.T) {
		oo := wantOutcome(t, e.do(req{method: "GET", path: path + "?purpose=TREAT", role: api.RoleClinician}), http.StatusForbidden, "forbidden")
		if d := oo.Issue[0].Details; d == nil || d.Text != "no-consent" {
			t.Errorf("details %+v, want the reason no-consent", d)
		}
	})
	cid := e.grantAlice()
	t.Run("granted", func(t *testing.T) {
		res := e.do(req{method: "GET", path: path + "?purpose=TREAT", role: api.RoleClinician})
		if res.status != http.StatusOK || !bytes.Equal(res.body, synthea(t)) {
			t.Fatalf("status %d, %d bytes; want 200 and the Bundle byte for byte", res.status, len(res.body))
		}
		if g := res.header.Get("X-Medledger-Grant"); len(g) != 32 {
			t.Errorf("X-Medledger-Grant %q", g)
		}
		if c := res.header.Get("X-Medledger-Consent"); c != string(cid) {
			t.Errorf("X-Medledger-Consent %q, want %s", c, cid)
		}
		if ct, cc := res.header.Get("Content-Type"), res.header.Get("Cache-Control"); ct != "application/fhir+json" || cc != "no-store" {
			t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
		}
	})
	t.Run("purpose not permitted", func(t *testing.T) {
		oo := wantOutcome(t, e.do(req{method: "GET", path: path + "?purpose=HPAYMT", role: api.RoleClinician}), http.StatusForbidden, "forbidden")
		if d := oo.Issue[0].Details; d == nil || d.Text != "purpose-not-permitted" || d.Coding[0].Code != "purpose-not-permitted" {
			t.Errorf("details %+v, want the reason purpose-not-permitted", d)
		}
		if !strings.Contains(oo.Issue[0].Diagnostics, "decision ") {
			t.Errorf("diagnostics %q name no decision", oo.Issue[0].Diagnostics)
		}
	})
	ok(t, e.f.chain.Revoke(aliceKey, cid))
	t.Run("revoked", func(t *testing.T) {
		oo := wantOutcome(t, e.do(req{method: "GET", path: path + "?purpose=TREAT", role: api.RoleClinician}), http.StatusForbidden, "forbidden")
		if d := oo.Issue[0].Details; d == nil || d.Text != "revoked" {
			t.Errorf("details %+v, want the reason revoked", d)
		}
	})

	unknown := consent.RecordID(strings.Repeat("ab", 16))
	rejected := consent.RecordID(strings.Repeat("cd", 16))
	erased := consent.RecordID(strings.Repeat("ef", 16))
	e.f.fail[unknown] = fmt.Errorf("%w: record %s", api.ErrNotFound, unknown) // the node knows it not
	// rejected is unknown to the chain: it refuses the request.
	e.f.register(t, "ada", alice, erased)
	ok(t, e.f.chain.Erase(aliceKey, erased))
	notCurrent := consent.RecordID(strings.Repeat("12", 16))
	e.f.fail[notCurrent] = &api.Unavailable{Reason: "not-current", Detail: "no custodian could release the key now", RetryAfter: 2 * time.Second}
	t.Run("no custodian current", func(t *testing.T) {
		res := e.do(req{method: "GET", path: "/records/" + string(notCurrent) + "?purpose=TREAT", role: api.RoleClinician})
		oo := wantOutcome(t, res, http.StatusServiceUnavailable, "transient")
		if d := oo.Issue[0].Details; d == nil || d.Text != "not-current" {
			t.Errorf("details %+v, want the reason not-current", d)
		}
		if ra := res.header.Get("Retry-After"); ra != "2" {
			t.Errorf("Retry-After %q, want 2", ra)
		}
	})
	tests := []struct {
		name   string
		path   string
		status int
		code   string
	}{
		{"no purpose", path, http.StatusBadRequest, "required"},
		{"unknown purpose", path + "?purpose=FUN", http.StatusBadRequest, "value"},
		{"lowercase purpose", path + "?purpose=treat", http.StatusBadRequest, "value"},
		{"emergency purpose", path + "?purpose=ETREAT", http.StatusBadRequest, "business-rule"},
		{"two purposes", path + "?purpose=TREAT&purpose=HPAYMT", http.StatusBadRequest, "required"},
		{"record ID too short", "/records/abc?purpose=TREAT", http.StatusBadRequest, "value"},
		{"record ID uppercase", "/records/" + strings.ToUpper(string(id)) + "?purpose=TREAT", http.StatusBadRequest, "value"},
		{"unknown record", "/records/" + string(unknown) + "?purpose=TREAT", http.StatusNotFound, "not-found"},
		{"unknown to the chain", "/records/" + string(rejected) + "?purpose=TREAT", http.StatusNotFound, "not-found"},
		// The chain decides a read of an erased record as a denial (reason erased),
		// and refuses break-glass access to it outright (code erased): 403, and 410.
		{"erased", "/records/" + string(erased) + "?purpose=TREAT", http.StatusForbidden, "forbidden"},
	}
	t.Run("emergency access to an erased record", func(t *testing.T) {
		wantOutcome(t, e.do(req{method: "POST", path: "/records/" + string(erased) + "/$emergency-access?reason=life-threatening",
			role: api.RoleClinician}), http.StatusGone, "deleted")
	})
	t.Run("HEAD", func(t *testing.T) {
		before := e.f.mutations()
		res := e.do(req{method: "HEAD", path: path + "?purpose=TREAT", role: api.RoleClinician})
		if res.status != http.StatusMethodNotAllowed || res.header.Get("Allow") != "GET" || e.f.mutations() != before {
			t.Errorf("HEAD: status %d, Allow %q; want 405, GET, and no access request", res.status, res.header.Get("Allow"))
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.f.mutations()
			wantOutcome(t, e.do(req{method: "GET", path: tt.path, role: api.RoleClinician}), tt.status, tt.code)
			if tt.status == http.StatusBadRequest && e.f.mutations() != before {
				t.Errorf("a malformed request reached the backend")
			}
		})
	}
}

func TestEmergency(t *testing.T) {
	e := newEnv(t, api.Config{})
	id := e.ingest()
	path := "/records/" + string(id) + "/$emergency-access"
	params := func(reason string) io.Reader {
		return strings.NewReader(`{"resourceType":"Parameters","parameter":[{"name":"reason","valueCode":"` + reason + `"}]}`)
	}
	for _, r := range []req{
		{path: path, body: params("unconscious-patient")},
		{path: path + "?reason=life-threatening"},
		{path: strings.Replace(path, "$", "%24", 1) + "?reason=life-threatening"},
		{path: path + "?reason=life-threatening", body: params("life-threatening")},
	} {
		r.method, r.role = "POST", api.RoleClinician
		res := e.do(r)
		if res.status != http.StatusOK || !bytes.Equal(res.body, synthea(t)) {
			t.Fatalf("%s: status %d; want 200 and the Bundle: %.300s", r.path, res.status, res.body)
		}
		if res.header.Get("X-Medledger-Emergency") == "" || res.header.Get("X-Medledger-Grant") == "" {
			t.Errorf("headers %v", res.header)
		}
	}

	tests := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"no reason", req{path: path}, http.StatusBadRequest, "required"},
		{"unknown reason", req{path: path, body: params("curiosity")}, http.StatusBadRequest, "value"},
		{"unknown reason in the query", req{path: path + "?reason=curiosity"}, http.StatusBadRequest, "value"},
		{"reasons differ", req{path: path + "?reason=life-threatening", body: params("unconscious-patient")}, http.StatusBadRequest, "invalid"},
		{"reason as a string", req{path: path, body: strings.NewReader(`{"resourceType":"Parameters","parameter":[{"name":"reason","valueString":"life-threatening"}]}`)}, http.StatusBadRequest, "required"},
		{"unknown parameter", req{path: path, body: strings.NewReader(`{"resourceType":"Parameters","parameter":[{"name":"why","valueCode":"life-threatening"}]}`)}, http.StatusBadRequest, "not-supported"},
		{"not Parameters", req{path: path, body: strings.NewReader(`{"resourceType":"Basic","code":{"text":"x"}}`)}, http.StatusBadRequest, "invalid"},
		{"bad record ID", req{path: "/records/xyz/$emergency-access?reason=life-threatening"}, http.StatusBadRequest, "value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.f.mutations()
			tt.r.method, tt.r.role = "POST", api.RoleClinician
			wantOutcome(t, e.do(tt.r), tt.status, tt.code)
			if e.f.mutations() != before {
				t.Errorf("a malformed request reached the backend")
			}
		})
	}
}
