package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
	"github.com/medledger/medledger/node/p2p"
	"github.com/medledger/medledger/storage"
)

func ctxT(t *testing.T) context.Context { return nodetest.Ctx(t) }

func wantDenied(t *testing.T, err error, reason string) *api.Denied {
	t.Helper()
	var d *api.Denied
	if !errors.As(err, &d) || d.Reason != reason {
		t.Fatalf("got %v, want an access denied for %q", err, reason)
	}
	return d
}

// TestKeyReleaseEndToEnd is the access story through four real hospital nodes: ingest
// at ada, consent, reads at bayside, denials, forged and replayed grants, revocation,
// emergency access, a non-member peer, a validator down and back — and no PHI in
// the logs or in any chain store afterwards.
func TestKeyReleaseEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	hn := nodetest.StartConsortium(t, 4)
	ada, bayside, city := hn.Nodes[0], hn.Nodes[1], hn.Nodes[2]
	bundle := nodetest.Sample(t)
	patient, err := crypto.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	pid := consent.PatientIDOf(patient.Public())

	// Invalid FHIR changes nothing.
	if _, err := ada.Ingest(ctxT(t), pid, strings.NewReader(`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"x"}]}`)); err == nil {
		t.Fatal("invalid FHIR was ingested")
	}
	if recs, _ := ada.Records(ctxT(t), pid); len(recs) != 0 {
		t.Fatalf("a rejected ingest left records: %v", recs)
	}

	rec, err := ada.Ingest(ctxT(t), pid, bytes.NewReader(bundle))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Patient != pid || len(rec.Custodians) != 1 || rec.Custodians[0] != "ada" {
		t.Fatalf("registered record: %+v", rec)
	}

	t.Run("api refusals change nothing", func(t *testing.T) { apiRefusals(t, hn, pid, rec.ID) })

	// No consent: denied on the chain, no key.
	_, err = bayside.Read(ctxT(t), rec.ID, "TREAT")
	wantDenied(t, err, consent.ReasonNoConsent)

	grant := nodetest.AsPatient(t, ada, patient, consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: pid, Policy: consent.Policy{
		Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"bayside"}, Purposes: []consent.Purpose{"TREAT"}}}}}})

	acc, err := bayside.Read(ctxT(t), rec.ID, "TREAT")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(acc.Bundle, bundle) {
		t.Fatal("bayside read a Bundle that differs from the one ingested")
	}
	if acc.Decision.Consent != consent.ConsentID(grant.ID) || acc.Decision.Requester != "bayside" {
		t.Fatalf("decision: %+v", acc.Decision)
	}
	baysideGrant := acc.Decision.ID

	// The wrong purpose and a hospital the consent does not name are denied.
	_, err = bayside.Read(ctxT(t), rec.ID, "HRESCH")
	wantDenied(t, err, consent.ReasonPurposeNotPermitted)
	_, err = city.Read(ctxT(t), rec.ID, "TREAT")
	wantDenied(t, err, consent.ReasonActorNotPermitted)

	// City forges a grant ID, and replays bayside's grant: refused, no key.
	adaPeer := ada.Host().ID()
	for _, g := range []string{"00000000000000000000000000000000", string(baysideGrant)} {
		resp, err := city.Host().RequestKey(ctxT(t), adaPeer, p2p.ReleaseRequest{Grant: g})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code == 0 || len(resp.Wrapped) != 0 {
			t.Fatalf("grant %s released to city: %+v", g, resp)
		}
	}

	// The custodian submitted a receipt for bayside's release.
	waitFor(t, "a key-release receipt", func() bool {
		var g consent.GrantInfo
		res, _, err := ada.Chain().Query("/grant/"+string(baysideGrant), nil)
		return err == nil && res.Code == 0 && jsonInto(res.Value, &g) && len(g.Receipts) == 1 && g.Receipts[0].Custodian == "ada"
	})

	// A revocation committed before the request wins, and the old grant gets no key.
	nodetest.AsPatient(t, city, patient, consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: consent.ConsentID(grant.ID)}})
	_, err = bayside.Read(ctxT(t), rec.ID, "TREAT")
	wantDenied(t, err, consent.ReasonRevoked)
	_, err = bayside.Fetch(ctxT(t), baysideGrant)
	wantDenied(t, err, consent.CodeNotGranted.String())

	// Emergency access: granted and flagged.
	acc, err = city.Emergency(ctxT(t), rec.ID, "unconscious-patient")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(acc.Bundle, bundle) || acc.Decision.Emergency != "unconscious-patient" {
		t.Fatalf("emergency access: %+v", acc.Decision)
	}
	if _, err := city.Emergency(ctxT(t), rec.ID, "curiosity"); err == nil {
		t.Fatal("an emergency without a coded reason was accepted")
	}

	// A peer that is not a registered member: ada's gater drops it once it has
	// proven its key, so it gets no blocks and no keys.
	stranger := strangerHost(t, adaPeer)
	_ = stranger.Connect(ctxT(t), ada.Host().AddrInfo()) // the dialer's side may complete the handshake
	if _, err := stranger.RequestKey(ctxT(t), adaPeer, p2p.ReleaseRequest{Grant: string(baysideGrant)}); err == nil {
		t.Fatal("a non-member got a key-release answer")
	}
	root, err := cid.Decode(rec.CID)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	if _, err := stranger.Fetch(short, root); err == nil {
		t.Fatal("a non-member fetched the record's ciphertext")
	}
	cancel()
	if ada.Host().ConnectedTo(stranger.ID()) {
		t.Fatal("ada keeps a connection with a non-member")
	}

	// A hospital the members vote in is admitted: allowlists follow the registry.
	newcomer, err := crypto.GenerateHospital()
	if err != nil {
		t.Fatal(err)
	}
	nh := hostWithKey(t, newcomer.Node, adaPeer)
	for _, voter := range hn.Nodes[:3] {
		if _, err := voter.VoteHospital(ctxT(t), consent.Hospital{ID: "newcomer", Name: "Newcomer Clinic", Power: 10,
			Operator: newcomer.Operator.Public(), Node: newcomer.Node.Public(), Wrap: newcomer.Wrap.Public()}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "ada to admit the newly registered hospital", func() bool {
		_ = nh.Connect(ctxT(t), ada.Host().AddrInfo())
		time.Sleep(100 * time.Millisecond)
		return ada.Host().ConnectedTo(nh.ID())
	})

	// Metrics count what happened, with outcomes only.
	metrics := httpGet(t, ada.APIURL()+"/metrics")
	for _, want := range []string{`medledger_key_releases_total{outcome="released"}`, `medledger_key_releases_total{outcome="unauthorized"}`, `medledger_records_ingested_total 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("ada's /metrics lacks %s", want)
		}
	}

	// A non-custodian validator stops: reads still work; it restarts and catches up.
	hn.StopNode(3)
	nodetest.AsPatient(t, ada, patient, consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: pid, Policy: consent.Policy{
		Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"bayside"}}}}}})
	if acc, err = bayside.Read(ctxT(t), rec.ID, "TREAT"); err != nil || !bytes.Equal(acc.Bundle, bundle) {
		t.Fatalf("read with a validator down: %v", err)
	}
	hn.StartNode(3)
	hn.WaitHeight(bayside.Chain().Height())
	h := bayside.Chain().Height()
	hn.WaitHeight(h + 1)
	want, _ := bayside.Chain().AppHashAt(h)
	if got, _ := hn.Nodes[3].Chain().AppHashAt(h); !bytes.Equal(got, want) {
		t.Fatal("the restarted validator disagrees on the app hash")
	}

	// No PHI in the logs, the chain's stores or the tx index.
	hn.Stop()
	terms := phiTerms(t, bundle)
	logs := hn.Logs.String()
	for _, term := range terms {
		if strings.Contains(logs, term) {
			t.Errorf("the logs contain PHI %q", term)
		}
	}
	for _, h := range hn.Homes {
		scanChainStores(t, h.Path(home.ChainDir), terms)
	}
	if !strings.Contains(logs, `"key released"`) {
		t.Error("the logs do not record key releases") // the scan looked at real logs
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// strangerHost is a libp2p host with a fresh key that no registry names.
func strangerHost(t *testing.T, dial ...peer.ID) *p2p.Host {
	t.Helper()
	key, err := crypto.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return hostWithKey(t, key, dial...)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// hostWithKey is a libp2p host on a node key that would dial the given peers.
func hostWithKey(t *testing.T, key *crypto.SigningKey, dial ...peer.ID) *p2p.Host {
	t.Helper()
	priv, err := key.Ed25519PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.OpenMemory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// It would dial the members itself: only their side can refuse it.
	h, err := p2p.New(t.Context(), p2p.Config{NodeKey: priv, Store: store, Members: p2p.NewAllowlist(dial...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); store.Close() })
	return h
}

func jsonInto(b []byte, v any) bool { return json.Unmarshal(b, v) == nil }

func phiTerms(t *testing.T, bundle []byte) []string {
	t.Helper()
	terms, err := fhir.PHITerms(bundle)
	if err != nil || len(terms) < 3 {
		t.Fatalf("PHI terms: %v (%d)", err, len(terms))
	}
	return terms
}

// scanChainStores looks for PHI in every file under dir and in every key and value of
// every LevelDB database there (CometBFT's block store, state, tx index, and the app's
// store), whose files may be compressed.
func scanChainStores(t *testing.T, dir string, terms []string) {
	t.Helper()
	dbs := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasSuffix(path, ".db") {
			db, err := leveldb.OpenFile(path, &opt.Options{ReadOnly: true})
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			defer db.Close()
			dbs++
			it := db.NewIterator(nil, nil)
			defer it.Release()
			for it.Next() {
				for _, term := range terms {
					if bytes.Contains(it.Key(), []byte(term)) || bytes.Contains(it.Value(), []byte(term)) {
						t.Errorf("%s holds PHI %q", path, term)
					}
				}
			}
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, term := range terms {
				if bytes.Contains(b, []byte(term)) {
					t.Errorf("%s holds PHI %q", path, term)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if dbs < 4 {
		t.Fatalf("scanned %d databases under %s, want the block store, state, tx index and app store", dbs, dir)
	}
}

// apiRefusals sends the real API malformed and unauthorised requests: each gets an
// OperationOutcome with its status, and the chain state stays as it was.
func apiRefusals(t *testing.T, hn *nodetest.Consortium, pid consent.PatientID, rec consent.RecordID) {
	ada := hn.Nodes[0]
	tokens, err := node.ReadTokens(hn.Homes[0])
	if err != nil {
		t.Fatal(err)
	}
	state := func() string {
		recs, _ := ada.Records(ctxT(t), pid)
		cons, _ := ada.Consents(ctxT(t), pid)
		res, _, _ := ada.Chain().Query("/decisions/"+string(pid), nil)
		return fmt.Sprint(len(recs), len(cons), string(res.Value))
	}
	before := state()
	_, pub := mustKey(t)
	stranger := consent.PatientIDOf(pub)
	badSig := base64.StdEncoding.EncodeToString(make([]byte, 64))
	consentJSON := `{"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/` + string(pid) + `"},"policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTOUT"}]}}`
	for _, c := range []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"malformed FHIR", "POST", "/fhir/Bundle?patient=" + string(pid), tokens["admin"], `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"Patient/1"}]}`, 400},
		{"not JSON", "POST", "/fhir/Bundle?patient=" + string(pid), tokens["admin"], `{"resourceType":`, 400},
		{"malformed patient", "POST", "/fhir/Bundle?patient=alice", tokens["admin"], `{}`, 400},
		{"malformed patient search", "GET", "/fhir/DocumentReference?patient=" + string(stranger)[:20], tokens["clinician"], "", 400},
		{"missing token", "GET", "/fhir/DocumentReference?patient=" + string(pid), "", "", 401},
		{"wrong token", "GET", "/fhir/DocumentReference?patient=" + string(pid), "not-a-token", "", 401},
		{"wrong role", "GET", "/records/" + string(rec) + "?purpose=TREAT", tokens["privacy-officer"], "", 403},
		{"bad purpose", "GET", "/records/" + string(rec) + "?purpose=SHOPPING", tokens["clinician"], "", 400},
		{"bad signature", "POST", "/fhir/Consent", "", `{"resourceType":"Parameters","parameter":[{"name":"resource","resource":` + consentJSON +
			`},{"name":"body","valueBase64Binary":"oA=="},{"name":"signature","valueBase64Binary":"` + badSig + `"}]}`, 400},
		// A Consent with an extension the chain cannot enforce: refused, not enforced without it (issue 10, finding 2).
		{"consent extension", "POST", "/fhir/Consent/$prepare", "", strings.Replace(consentJSON, `"status":"active"`, `"status":"active","extension":[{"url":"http://example.org/location","valueString":"ward 7"}]`, 1), 400},
		{"nested modifierExtension", "POST", "/fhir/Consent", "", `{"resourceType":"Parameters","parameter":[{"name":"resource","resource":` +
			strings.Replace(consentJSON, `"status":"active"`, `"status":"active","provision":{"provision":[{"type":"deny","modifierExtension":[{"url":"http://example.org/x","valueBoolean":true}]}]}`, 1) +
			`},{"name":"body","valueBase64Binary":"oA=="},{"name":"signature","valueBase64Binary":"` + badSig + `"}]}`, 400},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), c.method, ada.APIURL()+c.path, strings.NewReader(c.body))
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if c.body != "" {
			req.Header.Set("Content-Type", "application/fhir+json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var oo struct {
			ResourceType string            `json:"resourceType"`
			Issue        []json.RawMessage `json:"issue"`
		}
		err = json.NewDecoder(resp.Body).Decode(&oo)
		resp.Body.Close()
		if resp.StatusCode != c.status || err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
			t.Errorf("%s: %d %s (decode %v), want %d with an OperationOutcome", c.name, resp.StatusCode, oo.ResourceType, err, c.status)
		}
	}
	if after := state(); after != before {
		t.Errorf("refused requests changed the chain state:\nbefore %s\nafter  %s", before, after)
	}
}

func mustKey(t *testing.T) (*crypto.SigningKey, []byte) {
	t.Helper()
	k, err := crypto.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return k, k.Public()
}
