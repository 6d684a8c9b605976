// Package demo runs medledger's story end to end on this machine: a consortium of four
// hospital nodes (CometBFT validators running the consent chain, libp2p hosts with
// bitswap and the key-release protocol on 127.0.0.1, leveldb block stores, Tink keys,
// the HTTP API), embedded Synthea data, and a patient with their own key. It narrates
// each step and succeeds only if every step behaves as expected.
package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger"
	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/auditor"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/p2p"
	"github.com/medledger/medledger/node/web"
	"github.com/medledger/medledger/storage"
)

// Config configures a demo run.
type Config struct {
	// Dir is where the hospitals' homes go; a temporary directory (removed after) if
	// empty. It must be empty or absent.
	Dir string
	// Serve keeps the network up after the story, until ctx ends, and prints the API
	// URLs and tokens.
	Serve bool
	// Logs receives the nodes' structured logs (default: discarded).
	Logs io.Writer
}

// Run runs the demo, narrating to w.
func Run(ctx context.Context, w io.Writer, cfg Config) (err error) {
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "medledger-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	// Each record on three hospitals, its key shared 2 of 3 among them (the chain's
	// default custody): no hospital alone can release it, and one down stops no read.
	homes, err := node.Testnet(node.TestnetConfig{Dir: dir, Hospitals: 4, ChainID: "medledger-demo", Custodians: 3, Threshold: 2})
	if err != nil {
		return err
	}
	logs := cfg.Logs
	if logs == nil {
		logs = io.Discard
	}
	s := &story{ctx: ctx, w: w, http: &http.Client{Timeout: time.Minute}, logger: slog.New(slog.NewJSONHandler(logs, nil))}
	defer s.closeAll()
	fmt.Fprintf(w, "medledger demo — four hospitals share encrypted FHIR records under patients' consent\n")
	fmt.Fprintf(w, "homes in %s\n\n", dir)
	for _, h := range homes {
		n, err := s.start(h)
		if err != nil {
			return err
		}
		tokens, err := node.ReadTokens(h)
		if err != nil {
			return err
		}
		s.nodes = append(s.nodes, n)
		s.tokens = append(s.tokens, tokens)
		fmt.Fprintf(w, "  %-8s %-28s validator, custodian, API %s\n", h.Config.ID, h.Config.Name, n.APIURL())
	}
	fmt.Fprintf(w, "  custody  each record on 3 hospitals, its key shared 2 of 3 among them (no hospital keeps it whole)\n")
	if err := s.waitHeight(2); err != nil {
		return err
	}
	s.ada, s.bayside, s.city, s.dunmore = s.nodes[0], s.nodes[1], s.nodes[2], s.nodes[3]
	if s.patient, err = crypto.NewSigningKey(); err != nil {
		return err
	}
	s.pid = consent.PatientIDOf(s.patient.Public())
	fmt.Fprintf(w, "  patient  %s… (an Ed25519 key on the patient's device; the chain knows nothing else)\n\n", s.pid[:16])

	s.step("Ada and Bayside ingest Synthea Bundles (the first is our patient's): validated, encrypted, registered on the chain", s.ingest)
	s.step("An invalid Bundle is rejected with the path of the error; nothing is stored or registered", s.invalid)
	s.step("Bayside asks for the record without consent: denied on the chain, no key", s.noConsent)
	s.step("The patient grants Bayside access for treatment; Bayside reads the record over the API", s.grantAndRead)
	s.step("City, which the consent does not name, is denied; replaying Bayside's grant gets City no key", s.cityDenied)
	s.step("The patient revokes; Bayside's next request is denied in the very next block", s.revoke)
	s.step("A consent with an end date: granted before it, denied after it (block time)", s.endDate)
	s.step("City uses emergency access with a coded reason: granted, flagged for review", s.emergency)
	s.step("Ada, which ingested the record, goes down: Dunmore still reads it from the two other custodians' key shares", s.outage)
	s.step("No block in any store holds plaintext: no name or birth date of any patient", s.scanBlocks)
	s.step("Audit: who accessed the patient's record, when, why, under which consent", s.audit)
	s.step("A privacy officer proves the emergency access against headers the validators signed, and reviews it", s.proveAndReview)
	s.step("The patient's accounting of disclosures (HIPAA §164.528) and FHIR AuditEvents (IHE BALP)", s.accounting)
	if err := s.end(); err != nil {
		return err
	}
	if cfg.Serve {
		fmt.Fprintf(w, "\nThe network keeps running (Ctrl-C stops it). Try:\n")
		for i, n := range s.nodes {
			fmt.Fprintf(w, "  %-8s %s  (clinician token %s)\n", n.ID(), n.APIURL(), s.tokens[i]["clinician"])
		}
		fmt.Fprintf(w, "  curl -H 'Authorization: Bearer <token>' '%s/fhir/DocumentReference?patient=%s'\n", s.bayside.APIURL(), s.pid)
		fmt.Fprintf(w, "\nThe web pages (any browser on this machine; a patient creates or imports a key in the page):\n")
		for i, n := range s.nodes {
			fmt.Fprintf(w, "  %-8s patient %s%s  privacy officer %s%s  (officer token %s)\n", n.ID(),
				n.APIURL(), web.PatientPath, n.APIURL(), web.OfficerPath, s.tokens[i]["privacy-officer"])
		}
		<-ctx.Done()
	}
	return nil
}

type story struct {
	ctx                context.Context
	w                  io.Writer
	http               *http.Client
	nodes              []*node.Node
	tokens             []map[string]string
	logger             *slog.Logger
	closers            []*node.Node // every node started, closed when the demo ends
	ada, bayside, city *node.Node
	dunmore            *node.Node
	patient            *crypto.SigningKey
	pid                consent.PatientID
	record             *consent.Record
	bundle             []byte
	plains             [][]byte
	consentID          consent.ConsentID
	baysideGrant       consent.GrantID
	n, bad             int
}

// start starts a hospital's node from its home.
func (s *story) start(h *home.Home) (*node.Node, error) {
	n, err := node.Start(s.ctx, node.Config{Home: h, Logger: s.logger})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, n)
	return n, nil
}

func (s *story) closeAll() {
	for _, n := range s.closers {
		n.Close()
	}
}

func (s *story) step(title string, f func() error) {
	s.n++
	fmt.Fprintf(s.w, "%d. %s\n", s.n, title)
	if err := f(); err != nil {
		s.bad++
		fmt.Fprintf(s.w, "   ✗ NOT AS EXPECTED: %v\n\n", err)
		return
	}
	fmt.Fprintf(s.w, "   ✓ as expected\n\n")
}

func (s *story) end() error {
	if s.bad > 0 {
		return fmt.Errorf("demo: %d of %d steps did not behave as expected", s.bad, s.n)
	}
	fmt.Fprintf(s.w, "All %d steps behaved as expected.\n", s.n)
	return nil
}

func (s *story) waitHeight(h int64) error {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	for _, n := range s.nodes {
		for n.Chain().Height() < h {
			select {
			case <-ctx.Done():
				return fmt.Errorf("demo: the chain did not reach height %d: %w", h, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

func (s *story) ctxT() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, time.Minute)
}

// submitAsPatient signs body with the patient's key (as their device would) and
// submits it through a node.
func (s *story) submitAsPatient(via *node.Node, body consent.Body) (*api.Committed, error) {
	ctx, cancel := s.ctxT()
	defer cancel()
	b, err := via.NewBody(ctx)
	if err != nil {
		return nil, err
	}
	body.ChainID, body.Nonce, body.Expiry = b.ChainID, b.Nonce, b.Expiry
	tx, err := consent.Sign(body, s.patient)
	if err != nil {
		return nil, err
	}
	return via.SubmitTx(ctx, tx)
}

func (s *story) ingest() error {
	ctx, cancel := s.ctxT()
	defer cancel()
	for i, name := range medledger.SampleBundles {
		plain, err := medledger.SampleData.ReadFile(name)
		if err != nil {
			return err
		}
		s.plains = append(s.plains, plain)
		pid := s.pid
		if i > 0 {
			other, err := crypto.NewSigningKey()
			if err != nil {
				return err
			}
			pid = consent.PatientIDOf(other.Public())
		}
		custodian := s.nodes[i%2] // ada and bayside hold records
		start := time.Now()
		rec, err := custodian.Ingest(ctx, pid, bytes.NewReader(plain))
		if err != nil {
			return fmt.Errorf("bundle %d: %w", i+1, err)
		}
		if i == 0 {
			s.record, s.bundle = rec, plain
		}
		fmt.Fprintf(s.w, "   %-8s record %s  %7d bytes  %2d data classes  height %d  (%s)\n",
			custodian.ID(), rec.ID, len(plain), len(rec.Classes), rec.Height, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (s *story) invalid() error {
	bad, err := medledger.SampleData.ReadFile(medledger.SampleInvalidBundle)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctxT()
	defer cancel()
	before, _ := s.ada.Records(ctx, s.pid)
	status, body, err := s.api(s.ada, "admin", http.MethodPost, "/fhir/Bundle?patient="+string(s.pid), bad)
	if err != nil {
		return err
	}
	if status != http.StatusBadRequest || !strings.Contains(body, `"OperationOutcome"`) {
		return fmt.Errorf("POST /fhir/Bundle answered %d, want 400 with an OperationOutcome", status)
	}
	fmt.Fprintf(s.w, "   POST /fhir/Bundle → %d OperationOutcome: %s\n", status, outcomeText(body))
	after, _ := s.ada.Records(ctx, s.pid)
	if len(after) != len(before) {
		return fmt.Errorf("the patient's records went from %d to %d", len(before), len(after))
	}
	return nil
}

// read fetches the record through hospital n's API for purpose.
func (s *story) read(n *node.Node, purpose string) (int, string, error) {
	return s.api(n, "clinician", http.MethodGet, "/records/"+string(s.record.ID)+"?purpose="+url.QueryEscape(purpose), nil)
}

func (s *story) noConsent() error {
	status, body, err := s.read(s.bayside, "TREAT")
	if err != nil {
		return err
	}
	if status != http.StatusForbidden || !strings.Contains(body, consent.ReasonNoConsent) {
		return fmt.Errorf("GET /records answered %d %s, want 403 no-consent", status, outcomeText(body))
	}
	fmt.Fprintf(s.w, "   GET /records/%s… at bayside → 403: %s\n", s.record.ID[:8], outcomeText(body))
	return nil
}

func (s *story) grantAndRead() error {
	c, err := s.submitAsPatient(s.ada, consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: s.pid, Policy: consent.Policy{
		Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit,
			Actors: []consent.HospitalID{"bayside"}, Purposes: []consent.Purpose{"TREAT"}}}}}})
	if err != nil {
		return err
	}
	s.consentID = consent.ConsentID(c.ID)
	fmt.Fprintf(s.w, "   consent %s committed at height %d: permit bayside, purpose TREAT\n", c.ID, c.Height)
	start := time.Now()
	status, body, grant, err := s.readWithGrant(s.bayside, "TREAT")
	if err != nil {
		return err
	}
	if status != http.StatusOK || body != string(s.bundle) {
		return fmt.Errorf("GET /records answered %d (%d bytes), want 200 with the Bundle", status, len(body))
	}
	s.baysideGrant = grant
	fmt.Fprintf(s.w, "   bayside: request decided on chain, key shares released by the custodians (2 of 3 combined),\n")
	fmt.Fprintf(s.w, "   ciphertext over bitswap, decrypted:\n")
	fmt.Fprintf(s.w, "   %d bytes byte-identical to what ada ingested, in %s (grant %s)\n",
		len(body), time.Since(start).Round(time.Millisecond), grant)
	return nil
}

func (s *story) readWithGrant(n *node.Node, purpose string) (int, string, consent.GrantID, error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, n.APIURL()+"/records/"+string(s.record.ID)+"?purpose="+purpose, nil)
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.tokens[s.index(n)]["clinician"])
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), consent.GrantID(resp.Header.Get("X-Medledger-Grant")), err
}

func (s *story) cityDenied() error {
	status, body, err := s.read(s.city, "TREAT")
	if err != nil {
		return err
	}
	if status != http.StatusForbidden || !strings.Contains(body, consent.ReasonActorNotPermitted) {
		return fmt.Errorf("city's GET /records answered %d %s, want 403 actor-not-permitted", status, outcomeText(body))
	}
	fmt.Fprintf(s.w, "   city → 403: %s\n", outcomeText(body))
	ctx, cancel := s.ctxT()
	defer cancel()
	resp, err := s.city.Host().RequestKey(ctx, s.ada.Host().ID(), p2p.ReleaseRequest{Grant: string(s.baysideGrant)})
	if err != nil {
		return err
	}
	if resp.Code == 0 || len(resp.Wrapped) > 0 {
		return errors.New("ada released bayside's key to city")
	}
	fmt.Fprintf(s.w, "   city replays grant %s to ada → refused: %s\n", s.baysideGrant, resp.Reason)
	return nil
}

func (s *story) revoke() error {
	c, err := s.submitAsPatient(s.city, consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: s.consentID}})
	if err != nil {
		return err
	}
	fmt.Fprintf(s.w, "   revocation committed at height %d\n", c.Height)
	status, body, err := s.read(s.bayside, "TREAT")
	if err != nil {
		return err
	}
	if status != http.StatusForbidden || !strings.Contains(body, consent.ReasonRevoked) {
		return fmt.Errorf("after revocation GET /records answered %d %s, want 403 revoked", status, outcomeText(body))
	}
	var ds []consent.Decision // newest first
	if err := s.query(s.bayside, "/decisions/"+string(s.pid), &ds); err != nil {
		return err
	}
	d := ds[0]
	if d.Requester != "bayside" || d.Granted {
		return fmt.Errorf("the newest decision is %+v, want bayside's denial", d)
	}
	fmt.Fprintf(s.w, "   bayside → 403: %s (decided at height %d, %d block(s) after the revocation)\n", outcomeText(body), d.Height, int64(d.Height)-c.Height)
	if int64(d.Height) > c.Height+1 {
		return fmt.Errorf("the revocation took %d blocks", int64(d.Height)-c.Height)
	}
	ctx, cancel := s.ctxT()
	defer cancel()
	if _, err := s.bayside.Fetch(ctx, s.baysideGrant); err == nil {
		return errors.New("the old grant still released a key after the revocation")
	}
	fmt.Fprintf(s.w, "   bayside's earlier grant %s gets no key any more\n", s.baysideGrant)
	return nil
}

func (s *story) endDate() error {
	end := time.Now().Add(4 * time.Second).Truncate(time.Second)
	c, err := s.submitAsPatient(s.bayside, consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: s.pid, Policy: consent.Policy{
		Base: consent.Deny, End: end.Unix(), Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"bayside"}}}}}})
	if err != nil {
		return err
	}
	fmt.Fprintf(s.w, "   consent %s: permit bayside until %s\n", c.ID, end.UTC().Format(time.TimeOnly))
	status, _, err := s.read(s.bayside, "TREAT")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("before the end date GET /records answered %d", status)
	}
	fmt.Fprintf(s.w, "   before the end: bayside → 200\n")
	select {
	case <-time.After(time.Until(end.Add(1500 * time.Millisecond))):
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	status, body, err := s.read(s.bayside, "TREAT")
	if err != nil {
		return err
	}
	if status != http.StatusForbidden || !strings.Contains(body, consent.ReasonExpired) {
		return fmt.Errorf("after the end date GET /records answered %d %s, want 403 expired", status, outcomeText(body))
	}
	fmt.Fprintf(s.w, "   after the end: bayside → 403: %s\n", outcomeText(body))
	return nil
}

func (s *story) emergency() error {
	status, body, err := s.api(s.city, "clinician", http.MethodPost,
		"/records/"+string(s.record.ID)+"/$emergency-access?reason=unconscious-patient", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK || body != string(s.bundle) {
		return fmt.Errorf("emergency access answered %d %s", status, outcomeText(body))
	}
	var flagged []consent.Decision
	if err := s.query(s.ada, "/emergencies", &flagged); err != nil {
		return err
	}
	if len(flagged) == 0 || flagged[0].Requester != "city" {
		return errors.New("the emergency access is not flagged on the chain")
	}
	fmt.Fprintf(s.w, "   city read the record (%d bytes); flagged for review: %s by %s, reason %s\n",
		len(body), flagged[0].ID, flagged[0].Requester, flagged[0].Emergency)
	return nil
}

// outage stops ada, the hospital that ingested the patient's record and one of its
// three custodians: the patient grants dunmore (not a custodian) access through
// bayside's node, and dunmore reads the record from bayside's and city's key shares,
// the chain going on with three validators of four. Ada then restarts and catches up.
func (s *story) outage() (err error) {
	if err := s.ada.Close(); err != nil {
		return err
	}
	restarted := false
	defer func() { // ada is back for the steps after this one, whatever happened here
		if !restarted {
			if n, rerr := s.start(s.ada.Home()); rerr != nil {
				err = errors.Join(err, fmt.Errorf("restart ada: %w", rerr))
			} else {
				s.ada, s.nodes[0] = n, n
			}
		}
	}()
	fmt.Fprintf(s.w, "   ada stopped: its key share and its copy of the ciphertext are out of reach\n")
	c, err := s.submitAsPatient(s.bayside, consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: s.pid, Policy: consent.Policy{
		Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit,
			Actors: []consent.HospitalID{"dunmore"}, Purposes: []consent.Purpose{"TREAT"}}}}}})
	if err != nil {
		return err
	}
	fmt.Fprintf(s.w, "   consent %s committed at height %d by the three validators up: permit dunmore, purpose TREAT\n", c.ID, c.Height)
	status, body, grant, err := s.readWithGrant(s.dunmore, "TREAT")
	if err != nil {
		return err
	}
	if status != http.StatusOK || body != string(s.bundle) {
		return fmt.Errorf("dunmore's GET /records with ada down answered %d %s, want 200 with the Bundle", status, outcomeText(body))
	}
	var g consent.GrantInfo
	if err := s.query(s.bayside, "/grant/"+string(grant), &g); err != nil {
		return err
	}
	var from []string
	for _, r := range g.Receipts {
		if r.Custodian == "ada" {
			return errors.New("ada, stopped, has a release receipt for dunmore's grant")
		}
		from = append(from, string(r.Custodian))
	}
	if len(from) < 2 {
		return fmt.Errorf("dunmore's grant has %d release receipts, want 2 (bayside's and city's shares)", len(from))
	}
	fmt.Fprintf(s.w, "   dunmore → 200: %d bytes byte-identical, from the key shares of %s (receipts on the chain)\n",
		len(body), strings.Join(from, " and "))
	n, err := s.start(s.ada.Home())
	restarted = true
	if err != nil {
		return fmt.Errorf("restart ada: %w", err)
	}
	s.ada, s.nodes[0] = n, n
	ctx, cancel := s.ctxT()
	defer cancel()
	for {
		status, _, err := s.api(s.ada, "clinician", http.MethodGet, "/healthz", nil)
		if err == nil && status == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ada restarted but is not healthy after a minute: %d %v", status, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Fprintf(s.w, "   ada restarted and caught up (height %d)\n", s.ada.Chain().Height())
	return nil
}

func (s *story) scanBlocks() error {
	var terms []string
	for _, p := range s.plains {
		t, err := fhir.PHITerms(p)
		if err != nil {
			return err
		}
		terms = append(terms, t...)
	}
	blocks := 0
	for _, n := range s.nodes {
		bs, err := allBlocks(s.ctx, n.Store())
		if err != nil {
			return err
		}
		for _, b := range bs {
			for _, t := range terms {
				if bytes.Contains(b, []byte(t)) {
					return fmt.Errorf("a block at %s holds a patient's name or birth date", n.ID())
				}
			}
		}
		blocks += len(bs)
	}
	fmt.Fprintf(s.w, "   searched %d blocks on 4 hospitals for %d names, birth dates, addresses: none found\n", blocks, len(terms))
	return nil
}

func (s *story) audit() error {
	var ds []consent.Decision
	if err := s.query(s.ada, "/decisions/"+string(s.pid), &ds); err != nil {
		return err
	}
	if len(ds) < 6 {
		return fmt.Errorf("the chain holds %d decisions for the patient, want at least 6", len(ds))
	}
	fmt.Fprintf(s.w, "   %-7s %-9s %-8s %-8s %-22s %s\n", "height", "hospital", "purpose", "outcome", "reason / emergency", "consent")
	granted, denied := 0, 0
	for _, d := range ds {
		outcome, why := "denied", d.Reason
		if d.Granted {
			outcome, why = "granted", d.Emergency
			granted++
		} else {
			denied++
		}
		if d.Emergency != "" {
			outcome = "EMERG"
		}
		fmt.Fprintf(s.w, "   %-7d %-9s %-8s %-8s %-22s %s\n", d.Height, d.Requester, d.Purpose, outcome, why, d.Consent)
	}
	fmt.Fprintf(s.w, "   %d accesses granted, %d denied — every one an ordered, signed fact on the chain\n", granted, denied)
	return nil
}

func (s *story) proveAndReview() error {
	ctx, cancel := s.ctxT()
	defer cancel()
	page, err := s.ada.AuditEvents(ctx, consent.AuditFilter{Patient: s.pid, Kind: consent.AuditEmergency, Limit: 1})
	if err != nil {
		return err
	}
	if len(page.Events) == 0 {
		return errors.New("no emergency access in the log")
	}
	e := page.Events[0]
	// Wait until a signed header binds a log that holds the event.
	if err := s.waitHeight(int64(e.Height) + 2); err != nil {
		return err
	}
	gen, err := cmttypes.GenesisDocFromFile(s.ada.Home().Path(home.GenesisFile))
	if err != nil {
		return err
	}
	c, err := client.Dial(ctx, "http://"+strings.TrimPrefix(s.bayside.Home().Config.Chain.RPCListen, "tcp://"))
	if err != nil {
		return err
	}
	v, err := auditor.NewVerifier(c, gen)
	if err != nil {
		return err
	}
	p, err := v.VerifyEvent(ctx, e.Index, s.bayside) // the event from bayside (its API serves the same to a privacy officer)
	if err != nil {
		return err
	}
	if p.Event.Grant != e.Grant {
		return errors.New("the proven event is not the emergency access")
	}
	fmt.Fprintf(s.w, "   event %d (%s by %s, %s): included in the log of %d events (%d proof hashes),\n"+
		"   whose root the app hash signed by ≥ 2/3 of the validators in header %d binds\n",
		e.Index, e.Kind, e.Hospital, e.Reason, p.Log.Size, len(p.Proof), p.Height+1)
	status, body, err := s.api(s.ada, "privacy-officer", http.MethodPost, "/audit/emergencies/"+string(e.Grant)+"/$review?outcome=justified", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("review: %d %s", status, outcomeText(body))
	}
	queue, err := s.ada.Emergencies(ctx)
	if err != nil {
		return err
	}
	for _, q := range queue {
		if q.Decision.ID == e.Grant && q.Review != nil {
			fmt.Fprintf(s.w, "   ada's privacy officer reviewed it: %s (signed tx at height %d)\n", q.Review.Outcome, q.Review.Height)
			return nil
		}
	}
	return errors.New("the review is not in the queue")
}

func (s *story) accounting() error {
	status, body, err := s.api(s.bayside, "privacy-officer", http.MethodGet, "/audit/accounting?format=csv&patient="+string(s.pid), nil)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if status != http.StatusOK || len(lines) < 2 {
		return fmt.Errorf("accounting: %d, %d lines", status, len(lines))
	}
	fmt.Fprintf(s.w, "   %d disclosures in six years (one per custodian's release of its key share to another hospital):\n", len(lines)-1)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		return err
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, r := range rows[1:] {
		fmt.Fprintf(s.w, "   %s  to %-26s  by %-8s  for %s\n", r[col["date"]], r[col["recipient_name"]], r[col["custodian"]], r[col["purpose_statement"]])
	}
	status, body, err = s.api(s.bayside, "privacy-officer", http.MethodGet, "/fhir/AuditEvent?patient="+string(s.pid), nil)
	if err != nil {
		return err
	}
	var bundle struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &bundle) != nil || len(bundle.Entry) == 0 {
		return fmt.Errorf("GET /fhir/AuditEvent: %d", status)
	}
	for _, e := range bundle.Entry {
		if _, err := fhir.Parse(e.Resource, fhir.Limits{}); err != nil {
			return fmt.Errorf("an exported AuditEvent is not valid R4: %w", err)
		}
	}
	fmt.Fprintf(s.w, "   GET /fhir/AuditEvent?patient=… → %d AuditEvents (IHE BALP), each valid FHIR R4\n", len(bundle.Entry))
	return nil
}

func (s *story) index(n *node.Node) int {
	for i, m := range s.nodes {
		if m == n {
			return i
		}
	}
	return -1
}

// api calls hospital n's HTTP API with the token of role.
func (s *story) api(n *node.Node, role, method, path string, body []byte) (int, string, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(s.ctx, method, n.APIURL()+path, r)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.tokens[s.index(n)][role])
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (s *story) query(n *node.Node, path string, v any) error {
	res, _, err := n.Chain().Query(path, nil)
	if err != nil {
		return err
	}
	if res.Code != 0 {
		return fmt.Errorf("query %s: %s", path, res.Log)
	}
	return json.Unmarshal(res.Value, v)
}

// outcomeText is an OperationOutcome's first issue, in one line.
func outcomeText(body string) string {
	var oo struct {
		Issue []struct {
			Code        string `json:"code"`
			Diagnostics string `json:"diagnostics"`
			Details     struct {
				Text string `json:"text"`
			} `json:"details"`
		} `json:"issue"`
	}
	if json.Unmarshal([]byte(body), &oo) != nil || len(oo.Issue) == 0 {
		return strings.Join(strings.Fields(body), " ")
	}
	i := oo.Issue[0]
	text := i.Details.Text
	if text == "" {
		text = i.Diagnostics
	}
	return i.Code + ": " + text
}

func allBlocks(ctx context.Context, s *storage.Store) ([][]byte, error) {
	keys, err := s.Blockstore().AllKeysChan(ctx)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for k := range keys {
		blk, err := s.Blockstore().Get(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, blk.RawData())
	}
	return out, nil
}
