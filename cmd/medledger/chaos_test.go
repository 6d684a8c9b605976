package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
)

// TestChaosSoak runs four `medledger start` processes under a load of ingests, patient
// consents granted and revoked through the API, and reads by other hospitals, while a
// chaos loop kill -9s and restarts random validators and SIGSTOPs/SIGCONTs them (one
// faulted at a time; MEDLEDGER_CHAOS_TWO_DOWN=1 adds short windows with two killed).
// After healing it checks:
//
//	(a) no divergence: all four at one height with one app hash, and one block hash
//	    at a common height;
//	(b) no lost committed tx: every record, consent, revocation and decision the load
//	    saw committed is on every node;
//	(c) no release after a committed revoke: every receipt of every decision under a
//	    revoked consent is below the revoke's height, and no read that started after
//	    the test saw a revoke commit returned a Bundle under that consent;
//	(d) every release logged: each read that returned a Bundle has a granted decision
//	    with a receipt, so successful reads ≤ receipts.
//
// It also measures how long a killed validator takes, from its restart, to be back in
// consensus (not catching up, within a block of the others) and to commit a tx
// submitted through it.
//
// MEDLEDGER_CHAOS_SECONDS sets the soak's length (default 20), MEDLEDGER_CHAOS_SEED its
// random choices, MEDLEDGER_CHAOS_EMPTY_BLOCKS=0s continuous blocks (a restarted node
// then has blocks to catch up), MEDLEDGER_CHAOS_DIR a directory (empty) that keeps the
// homes and logs. Runs of two minutes or more also take some nodes down for 10-40 s.
// A long run:
//
//	MEDLEDGER_CHAOS_SECONDS=600 go test ./cmd/medledger -run TestChaosSoak -v -timeout 30m
func TestChaosSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four node processes and faults them")
	}
	t.Parallel()
	cfg := chaosConfigFromEnv(t)
	t.Logf("chaos: %s, seed %d, two-down windows %v, empty blocks %q", cfg.duration, cfg.seed, cfg.twoDown, cfg.emptyBlocks)
	n := startChaosNet(t, cfg)
	n.setUp(t)

	ctx, cancel := context.WithTimeout(t.Context(), cfg.duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){n.ingestLoop, n.consentLoop, n.readLoop, n.readLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	n.chaosLoop(ctx)
	wg.Wait()
	n.heal(t)

	n.checkConverged(t)
	// These read each node's state from its store, the node stopped (CometBFT's RPC
	// does not answer role-scoped queries): node 0 first, while the others serve
	// blocks over the RPC.
	n.checkReleases(t)
	n.checkCommitted(t)
	n.report(t)
}

type chaosConfig struct {
	duration time.Duration
	seed     uint64
	twoDown  bool
	// emptyBlocks, if set, is every home's chain.empty_block_interval ("0s": a block
	// after another, so a node that was down has many blocks to catch up).
	emptyBlocks string
}

func chaosConfigFromEnv(t *testing.T) chaosConfig {
	c := chaosConfig{duration: 20 * time.Second, seed: uint64(time.Now().UnixNano())}
	if s := os.Getenv("MEDLEDGER_CHAOS_SECONDS"); s != "" {
		secs, err := strconv.Atoi(s)
		if err != nil || secs < 10 {
			t.Fatalf("MEDLEDGER_CHAOS_SECONDS=%q: want whole seconds, at least 10", s)
		}
		c.duration = time.Duration(secs) * time.Second
	}
	if s := os.Getenv("MEDLEDGER_CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MEDLEDGER_CHAOS_SEED=%q: want an unsigned integer", s)
		}
		c.seed = seed
	}
	c.twoDown = os.Getenv("MEDLEDGER_CHAOS_TWO_DOWN") == "1"
	c.emptyBlocks = os.Getenv("MEDLEDGER_CHAOS_EMPTY_BLOCKS")
	return c
}

// Bounds of the soak's waits: no loop runs longer than these.
const (
	chaosRequestTimeout = 45 * time.Second  // one API request (the API's own deadline is 30 s)
	chaosRejoinBound    = 120 * time.Second // a faulted node back in consensus
	chaosHealBound      = 120 * time.Second // all four converged after the soak
)

// chaosNet is the consortium under test and what the load saw.
type chaosNet struct {
	cfg   chaosConfig
	homes []*home.Home
	api   []apiClient
	rpc   []string // http://127.0.0.1:port
	http  *http.Client

	procMu  sync.Mutex
	procs   []*process
	all     []*process // every process started, for the final cleanup
	faulted map[int]bool

	patients []chaosPatient
	probe    chaosPatient // the patient whose records the rejoin probe ingests
	bundles  [][]byte

	mu       sync.Mutex
	rng      *rand.Rand
	records  []chaosRecord
	consents map[consent.ConsentID]*chaosConsent
	reads    []chaosRead
	stats    chaosStats

	states map[int]*nodeState // stopped nodes' stores, opened for the checks
}

type chaosPatient struct {
	id   consent.PatientID
	priv ed25519.PrivateKey
}

type chaosRecord struct {
	id        consent.RecordID
	patient   int // index into patients; -1: the probe patient
	custodian int
	bundle    []byte
}

// chaosConsent is a consent the load granted (or may have: uncertain) and what it saw
// of its revocation.
type chaosConsent struct {
	id        consent.ConsentID
	patient   int
	hospital  int
	uncertain bool      // the grant's answer was lost: it may or may not have committed
	revoked   time.Time // when the load saw the revoke commit (zero: not seen)
	dropped   bool      // the load stopped tracking it (revoked or never committed)
}

type chaosRead struct {
	start, end time.Time
	reader     int
	record     int // index into records
	status     int // 0: no HTTP answer
	grant      consent.GrantID
	text       string // the OperationOutcome's text, or the transport error
}

type chaosStats struct {
	kills, stops, twoDown, selfExits int
	ingests, ingestFails             int
	grants, grantsUncertain          int
	revokes, revokesUncertain        int
	throttled                        int
	rejoinConsensus, rejoinTx        []time.Duration
	rejoinPeers                      []time.Duration
	rejoins                          []string // one line per restart
	resumeConsensus                  []time.Duration
	selfExitReasons                  []string
	anomalies                        []string // answers that contradict the chain
}

var hospitalIDs = []consent.HospitalID{"ada", "bayside", "city", "dunmore"}

// chaosThreshold is how many key shares a read combines: `medledger testnet`'s default
// custody for four hospitals, each record on three of them and its key shared 2 of 3
// (each share released with its own receipt, committed first).
const chaosThreshold = 2

func startChaosNet(t *testing.T, cfg chaosConfig) *chaosNet {
	t.Helper()
	dir := t.TempDir()
	if d := os.Getenv("MEDLEDGER_CHAOS_DIR"); d != "" { // keep the homes and logs
		dir = d
	}
	testnet(t, dir, 4)
	n := &chaosNet{cfg: cfg, faulted: map[int]bool{}, consents: map[consent.ConsentID]*chaosConsent{},
		rng:  rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15)),
		http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	// The cleanup resumes and stops every process ever started (a stopped one would
	// ignore SIGTERM).
	t.Cleanup(func() {
		n.procMu.Lock()
		defer n.procMu.Unlock()
		for _, p := range n.all {
			_ = p.cmd.Process.Signal(syscall.SIGCONT)
			if err := p.stop(t); err != nil {
				t.Logf("stop: %v", err)
			}
		}
	})
	for _, id := range hospitalIDs {
		h, err := home.Load(filepath.Join(dir, string(id)))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.emptyBlocks != "" {
			h.Config.Chain.EmptyBlockInterval = cfg.emptyBlocks
			if err := h.Save(); err != nil {
				t.Fatal(err)
			}
		}
		tokens, err := node.ReadTokens(h)
		if err != nil {
			t.Fatal(err)
		}
		n.homes = append(n.homes, h)
		n.api = append(n.api, apiClient{base: "http://" + h.Config.API.Listen, tokens: tokens})
		n.rpc = append(n.rpc, "http://"+strings.TrimPrefix(h.Config.Chain.RPCListen, "tcp://"))
		p, err := n.startChild(h)
		if err != nil {
			t.Fatal(err)
		}
		n.procs = append(n.procs, p)
	}
	for _, c := range n.api {
		waitHealthy(t, c)
	}
	return n
}

// startChild starts a `medledger start` process for h, its output appended to
// h.Dir/process.log. Safe from any goroutine.
func (n *chaosNet) startChild(h *home.Home) (*process, error) {
	logf, err := os.OpenFile(filepath.Join(h.Dir, "process.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := cli("start", "--home", h.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan error, 1), log: logf}
	go func() { p.done <- cmd.Wait() }()
	n.procMu.Lock()
	n.all = append(n.all, p)
	n.procMu.Unlock()
	return p, nil
}

// setUp makes the patients and ingests one record per patient, each at another
// hospital.
func (n *chaosNet) setUp(t *testing.T) {
	t.Helper()
	for _, name := range []string{"Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json",
		"Clarence_Mills_0753ad6c-5935-4faa-9cfe-b7269e963d77.json"} {
		n.bundles = append(n.bundles, mustRead(t, "../../testdata/fhir/synthea/"+name))
	}
	newPatient := func() chaosPatient {
		pub, priv, _ := ed25519.GenerateKey(nil)
		return chaosPatient{id: consent.PatientIDOf(pub), priv: priv}
	}
	n.probe = newPatient()
	for i := range 4 {
		n.patients = append(n.patients, newPatient())
		if _, err := n.ingest(t.Context(), i, i, n.bundles[i%len(n.bundles)]); err != nil {
			t.Fatalf("ingest at %s: %v", hospitalIDs[i], err)
		}
	}
}

// up is the indices of the nodes not faulted now.
func (n *chaosNet) up() []int {
	n.procMu.Lock()
	defer n.procMu.Unlock()
	var out []int
	for i := range n.homes {
		if !n.faulted[i] {
			out = append(out, i)
		}
	}
	return out
}

func (n *chaosNet) intN(k int) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rng.IntN(k)
}

// pick is a random element of s (s not empty).
func (n *chaosNet) pick(s []int) int { return s[n.intN(len(s))] }

// pause waits d or until ctx ends; it reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// jitter is a random duration in [lo, hi).
func (n *chaosNet) jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(n.intN(int(hi-lo)/int(time.Millisecond)))*time.Millisecond
}

// call is one API request, bounded by chaosRequestTimeout; err is a transport error
// (no HTTP answer).
func (n *chaosNet) call(ctx context.Context, node int, role, method, path, contentType string, body []byte) (int, []byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, chaosRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.api[node].base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+n.api[node].tokens[role])
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, b, resp.Header, nil
}

// ingest posts bundle for a patient (-1: the probe patient) at node and records it.
func (n *chaosNet) ingest(ctx context.Context, node, patient int, bundle []byte) (consent.RecordID, error) {
	pid := n.probe.id
	if patient >= 0 {
		pid = n.patients[patient].id
	}
	status, body, hdr, err := n.call(ctx, node, "admin", http.MethodPost, "/fhir/Bundle?patient="+string(pid), "application/fhir+json", bundle)
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		return "", &httpError{status: status, text: outcomeText(body)}
	}
	id := consent.RecordID(strings.TrimPrefix(hdr.Get("Location"), "/records/"))
	n.mu.Lock()
	n.records = append(n.records, chaosRecord{id: id, patient: patient, custodian: node, bundle: bundle})
	n.stats.ingests++
	n.mu.Unlock()
	return id, nil
}

type httpError struct {
	status int
	text   string
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s", e.status, e.text) }

// outcomeText is the diagnostics of an OperationOutcome (or the body, cut short).
func outcomeText(body []byte) string {
	var oo struct {
		Issue []struct {
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	if json.Unmarshal(body, &oo) == nil && len(oo.Issue) > 0 {
		var parts []string
		for _, i := range oo.Issue {
			parts = append(parts, i.Diagnostics)
		}
		return strings.Join(parts, "; ")
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(body)
}

// ingestLoop ingests a record now and then at a random node that is up.
func (n *chaosNet) ingestLoop(ctx context.Context) {
	for pause(ctx, n.jitter(3*time.Second, 6*time.Second)) {
		p := n.intN(len(n.patients))
		if _, err := n.ingest(ctx, n.pick(n.up()), p, n.bundles[n.intN(len(n.bundles))]); err != nil && ctx.Err() == nil {
			n.mu.Lock()
			n.stats.ingestFails++
			n.mu.Unlock()
		}
	}
}

// consentLoop grants and revokes consents: for a random patient and hospital, it
// revokes the pair's consent if the load holds one, else grants one.
func (n *chaosNet) consentLoop(ctx context.Context) {
	for pause(ctx, n.jitter(500*time.Millisecond, 1500*time.Millisecond)) {
		p, h := n.intN(len(n.patients)), n.intN(len(hospitalIDs))
		if c := n.activeConsent(p, h); c != nil {
			n.revoke(ctx, c)
		} else {
			n.grant(ctx, p, h)
		}
	}
}

func (n *chaosNet) activeConsent(p, h int) *chaosConsent {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.consents {
		if c.patient == p && c.hospital == h && !c.dropped {
			return c
		}
	}
	return nil
}

// consentJSON is a FHIR Consent: patient p permits hospital h to read for TREAT.
func (n *chaosNet) consentJSON(p, h int) string {
	return fmt.Sprintf(`{"resourceType":"Consent","status":"active",
		"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
		"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
		"patient":{"reference":"Patient/%s"},
		"policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},
		"provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"Organization/%s"}}],
		"purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}]}}`, n.patients[p].id, hospitalIDs[h])
}

// grant prepares a consent at one node, signs it as the patient, and submits it at
// another. An answer lost after the submission leaves the consent uncertain: the test
// computes its ID (the tx's) and tracks it all the same.
func (n *chaosNet) grant(ctx context.Context, p, h int) {
	fc := n.consentJSON(p, h)
	status, body, _, err := n.call(ctx, n.pick(n.up()), "", http.MethodPost, "/fhir/Consent/$prepare", "application/fhir+json", []byte(fc))
	if err != nil || status != http.StatusOK {
		n.countThrottled(status)
		return
	}
	toSign, err := paramOf(body, "body")
	if err != nil {
		return
	}
	pat := n.patients[p]
	sig := ed25519.Sign(pat.priv, toSign)
	tx, _, err := consent.Assemble(toSign, pat.priv.Public().(ed25519.PublicKey), sig)
	if err != nil {
		return
	}
	id := consent.ConsentID(consent.IDOf(tx))
	params := fmt.Sprintf(`{"resourceType":"Parameters","parameter":[{"name":"resource","resource":%s},
		{"name":"body","valueBase64Binary":%q},{"name":"signature","valueBase64Binary":%q}]}`,
		fc, base64.StdEncoding.EncodeToString(toSign), base64.StdEncoding.EncodeToString(sig))
	status, body, _, err = n.call(ctx, n.pick(n.up()), "", http.MethodPost, "/fhir/Consent", "application/fhir+json", []byte(params))
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case err == nil && status == http.StatusCreated:
		var created struct{ ID string }
		if json.Unmarshal(body, &created) != nil || consent.ConsentID(created.ID) != id {
			n.stats.anomalies = append(n.stats.anomalies, fmt.Sprintf("grant %s answered with ID %q", id, created.ID))
		}
		n.stats.grants++
		n.consents[id] = &chaosConsent{id: id, patient: p, hospital: h}
	case err != nil || status >= 500:
		n.stats.grantsUncertain++
		n.consents[id] = &chaosConsent{id: id, patient: p, hospital: h, uncertain: true}
	default:
		if status == http.StatusTooManyRequests {
			n.stats.throttled++
		}
	}
}

func (n *chaosNet) countThrottled(status int) {
	if status == http.StatusTooManyRequests {
		n.mu.Lock()
		n.stats.throttled++
		n.mu.Unlock()
	}
}

// revoke revokes c as its patient: prepared at one node, submitted at another. The
// time it saw the revoke commit is when the 200 arrived (the commit came before).
func (n *chaosNet) revoke(ctx context.Context, c *chaosConsent) {
	pat := n.patients[c.patient]
	path := "/fhir/Consent/" + string(c.id) + "/$revoke"
	status, body, _, err := n.call(ctx, n.pick(n.up()), "", http.MethodPost, path+"-prepare?patient="+string(pat.id), "", nil)
	switch {
	case err != nil:
		return
	case status == http.StatusNotFound || status == http.StatusConflict:
		// Never committed (an uncertain grant), or already revoked (an uncertain revoke).
		n.mu.Lock()
		c.dropped = true
		n.mu.Unlock()
		return
	case status != http.StatusOK:
		n.countThrottled(status)
		return
	}
	toSign, err := paramOf(body, "body")
	if err != nil {
		return
	}
	params := fmt.Sprintf(`{"resourceType":"Parameters","parameter":[{"name":"body","valueBase64Binary":%q},{"name":"signature","valueBase64Binary":%q}]}`,
		base64.StdEncoding.EncodeToString(toSign), base64.StdEncoding.EncodeToString(ed25519.Sign(pat.priv, toSign)))
	status, _, _, err = n.call(ctx, n.pick(n.up()), "", http.MethodPost, path+"?patient="+string(pat.id), "application/fhir+json", []byte(params))
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case err == nil && status == http.StatusOK:
		n.stats.revokes++
		c.revoked, c.dropped = time.Now(), true
	case err != nil || status >= 500:
		n.stats.revokesUncertain++
		c.dropped = true // it may commit yet; the final check reads the chain
	default:
		if status == http.StatusTooManyRequests {
			n.stats.throttled++
		}
	}
}

// paramOf is a base64Binary parameter of a FHIR Parameters resource.
func paramOf(body []byte, name string) ([]byte, error) {
	var p struct {
		Parameter []struct {
			Name              string `json:"name"`
			ValueBase64Binary string `json:"valueBase64Binary"`
		} `json:"parameter"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, err
	}
	for _, q := range p.Parameter {
		if q.Name == name {
			return base64.StdEncoding.DecodeString(q.ValueBase64Binary)
		}
	}
	return nil, fmt.Errorf("no parameter %q", name)
}

// decisionPattern finds a decision's ID in a refusal's text.
var decisionPattern = regexp.MustCompile(`decision ([0-9a-f]{32}) on the chain`)

// readLoop reads random records of patients with records at hospitals other than
// their custodian, for TREAT.
func (n *chaosNet) readLoop(ctx context.Context) {
	for pause(ctx, n.jitter(50*time.Millisecond, 300*time.Millisecond)) {
		n.mu.Lock()
		var candidates []int
		for i, r := range n.records {
			if r.patient >= 0 {
				candidates = append(candidates, i)
			}
		}
		n.mu.Unlock()
		ri := n.pick(candidates)
		n.mu.Lock()
		rec := n.records[ri]
		n.mu.Unlock()
		readers := slices.DeleteFunc(n.up(), func(i int) bool { return i == rec.custodian })
		if len(readers) == 0 {
			continue
		}
		rd := chaosRead{start: time.Now(), reader: n.pick(readers), record: ri}
		status, body, hdr, err := n.call(ctx, rd.reader, "clinician", http.MethodGet, "/records/"+string(rec.id)+"?purpose=TREAT", "", nil)
		rd.end, rd.status = time.Now(), status
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return // the soak ended mid-request: not a result
			}
			rd.text = err.Error()
		case status == http.StatusOK:
			rd.grant = consent.GrantID(hdr.Get("X-Medledger-Grant"))
			if !bytes.Equal(body, rec.bundle) {
				rd.text = fmt.Sprintf("returned %d bytes that are not the record's Bundle", len(body))
			}
		default:
			rd.text = outcomeText(body)
			if m := decisionPattern.FindStringSubmatch(rd.text); m != nil {
				rd.grant = consent.GrantID(m[1])
			}
		}
		n.mu.Lock()
		n.reads = append(n.reads, rd)
		n.mu.Unlock()
	}
}

// chaosLoop faults one random validator at a time until ctx ends: kill -9 and restart
// after a moment, or SIGSTOP for a few seconds and SIGCONT (the first fault is a kill,
// the second a stop); after each it waits for the node to be back in consensus
// (measured) before the next. It also restarts a node that exited by itself, as a
// supervisor would.
func (n *chaosNet) chaosLoop(ctx context.Context) {
	if !pause(ctx, 3*time.Second) { // some load before the first fault
		return
	}
	for faults := 0; pause(ctx, n.jitter(2*time.Second, 4*time.Second)); faults++ {
		n.restartExited(ctx)
		switch r := n.intN(100); {
		case faults == 0: // a kill first, then a stop: even a short soak has both
			n.killOne(ctx, n.intN(len(n.homes)))
		case faults == 1:
			n.stopOne(ctx, n.intN(len(n.homes)))
		case n.cfg.twoDown && r < 15:
			n.killTwo(ctx)
		case r < 60:
			n.killOne(ctx, n.intN(len(n.homes)))
		default:
			n.stopOne(ctx, n.intN(len(n.homes)))
		}
	}
	n.restartExited(context.Background())
}

func (n *chaosNet) setFaulted(i int, f bool) {
	n.procMu.Lock()
	defer n.procMu.Unlock()
	n.faulted[i] = f
}

func (n *chaosNet) proc(i int) *process {
	n.procMu.Lock()
	defer n.procMu.Unlock()
	return n.procs[i]
}

// kill9 kills node i's process and waits for it to end.
func (n *chaosNet) kill9(i int) {
	n.setFaulted(i, true)
	p := n.proc(i)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.log.Close()
}

// restart starts node i again; the time is its start.
func (n *chaosNet) restart(i int) (time.Time, error) {
	p, err := n.startChild(n.homes[i])
	if err != nil {
		return time.Time{}, err
	}
	n.procMu.Lock()
	n.procs[i] = p
	n.procMu.Unlock()
	return time.Now(), nil
}

func (n *chaosNet) killOne(ctx context.Context, i int) {
	n.kill9(i)
	n.mu.Lock()
	n.stats.kills++
	n.mu.Unlock()
	down := n.jitter(500*time.Millisecond, 3*time.Second)
	if n.cfg.duration >= 2*time.Minute && n.intN(5) == 0 { // long runs: some longer outages
		down = n.jitter(10*time.Second, 40*time.Second)
	}
	pause(ctx, down)
	n.restartAndMeasure(i)
}

// killTwo kills two validators at once (the chain stops: no quorum) for a few seconds.
func (n *chaosNet) killTwo(ctx context.Context) {
	i := n.intN(len(n.homes))
	j := (i + 1 + n.intN(len(n.homes)-1)) % len(n.homes)
	n.kill9(i)
	n.kill9(j)
	n.mu.Lock()
	n.stats.kills += 2
	n.stats.twoDown++
	n.mu.Unlock()
	pause(ctx, n.jitter(2*time.Second, 5*time.Second))
	var wg sync.WaitGroup
	for _, k := range []int{i, j} {
		wg.Add(1)
		go func() { defer wg.Done(); n.restartAndMeasure(k) }()
	}
	wg.Wait()
}

// restartAndMeasure restarts killed node i and measures its rejoin. It runs on even
// after the soak's end (bounded by chaosRejoinBound): the node must come back.
func (n *chaosNet) restartAndMeasure(i int) {
	t0, err := n.restart(i)
	if err != nil {
		n.noteSelfExit(fmt.Sprintf("%s: restart failed: %v", hospitalIDs[i], err))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), chaosRejoinBound)
	defer cancel()
	var wg sync.WaitGroup
	var txAt, peersAt time.Duration
	wg.Add(2)
	go func() { defer wg.Done(); txAt = n.probeTx(ctx, i, t0) }()
	go func() { defer wg.Done(); peersAt = n.awaitPeers(ctx, i, t0) }()
	inConsensus := n.awaitConsensus(ctx, i, t0)
	wg.Wait()
	n.setFaulted(i, false)
	n.mu.Lock()
	n.stats.rejoinConsensus = append(n.stats.rejoinConsensus, inConsensus)
	n.stats.rejoinTx = append(n.stats.rejoinTx, txAt)
	n.stats.rejoinPeers = append(n.stats.rejoinPeers, peersAt)
	n.stats.rejoins = append(n.stats.rejoins, fmt.Sprintf("%s@%s: peers %s consensus %s tx %s", hospitalIDs[i],
		t0.Format("15:04:05.000"), peersAt.Round(10*time.Millisecond), inConsensus.Round(10*time.Millisecond), txAt.Round(10*time.Millisecond)))
	n.mu.Unlock()
}

// awaitPeers waits until node i is connected to all the others again and returns the
// time from t0 (chaosRejoinBound if it never was).
func (n *chaosNet) awaitPeers(ctx context.Context, i int, t0 time.Time) time.Duration {
	for ctx.Err() == nil {
		var r struct {
			Result struct {
				Peers int `json:"n_peers,string"`
			} `json:"result"`
		}
		if err := n.rpcGet(ctx, i, "/net_info", &r); err == nil && r.Result.Peers == len(n.homes)-1 {
			return time.Since(t0)
		}
		pause(ctx, 100*time.Millisecond)
	}
	return chaosRejoinBound
}

// probeTx ingests at node i until an ingest (a register tx submitted through it)
// commits; it returns the time from t0 (chaosRejoinBound if none did).
func (n *chaosNet) probeTx(ctx context.Context, i int, t0 time.Time) time.Duration {
	for ctx.Err() == nil {
		if _, err := n.ingest(ctx, i, -1, n.bundles[0]); err == nil {
			return time.Since(t0)
		}
		pause(ctx, 200*time.Millisecond)
	}
	return chaosRejoinBound
}

// awaitConsensus waits until node i is back in consensus — not catching up and within
// a block of the highest other node — and returns the time from t0
// (chaosRejoinBound if it never was).
func (n *chaosNet) awaitConsensus(ctx context.Context, i int, t0 time.Time) time.Duration {
	for ctx.Err() == nil {
		if st, err := n.status(ctx, i); err == nil && !st.CatchingUp {
			top := int64(0)
			for j := range n.homes {
				if o, err := n.status(ctx, j); j != i && err == nil {
					top = max(top, o.Height)
				}
			}
			if st.Height >= top-1 {
				return time.Since(t0)
			}
		}
		pause(ctx, 100*time.Millisecond)
	}
	return chaosRejoinBound
}

// stopOne SIGSTOPs node i for a few seconds, then SIGCONTs it and measures its resume.
func (n *chaosNet) stopOne(ctx context.Context, i int) {
	n.setFaulted(i, true)
	p := n.proc(i)
	_ = p.cmd.Process.Signal(syscall.SIGSTOP)
	n.mu.Lock()
	n.stats.stops++
	n.mu.Unlock()
	pause(ctx, n.jitter(2*time.Second, 6*time.Second))
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	t0 := time.Now()
	rctx, cancel := context.WithTimeout(context.Background(), chaosRejoinBound)
	defer cancel()
	d := n.awaitConsensus(rctx, i, t0)
	n.setFaulted(i, false)
	n.mu.Lock()
	n.stats.resumeConsensus = append(n.stats.resumeConsensus, d)
	n.mu.Unlock()
}

// restartExited restarts a node whose process ended by itself (not killed by the
// chaos loop), noting its last line.
func (n *chaosNet) restartExited(ctx context.Context) {
	for i := range n.homes {
		p := n.proc(i)
		select {
		case err := <-p.done:
			p.log.Close()
			n.noteSelfExit(fmt.Sprintf("%s exited by itself (%v): %s", hospitalIDs[i], err, lastLine(filepath.Join(n.homes[i].Dir, "process.log"))))
			n.setFaulted(i, true)
			n.restartAndMeasure(i)
		default:
		}
	}
}

func (n *chaosNet) noteSelfExit(reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stats.selfExits++
	n.stats.selfExitReasons = append(n.stats.selfExitReasons, reason)
}

// lastLine is the last line of a file starting "medledger: " (the command's error).
func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	var last string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "medledger: ") {
			last = l
		}
	}
	return last
}

// rpcStatus is what a node's CometBFT RPC says of it.
type rpcStatus struct {
	Height     int64
	CatchingUp bool
}

// status asks node i's RPC /status, bounded by 2 s.
func (n *chaosNet) status(ctx context.Context, i int) (rpcStatus, error) {
	var r struct {
		Result struct {
			SyncInfo struct {
				Height     int64 `json:"latest_block_height,string"`
				CatchingUp bool  `json:"catching_up"`
			} `json:"sync_info"`
		} `json:"result"`
	}
	if err := n.rpcGet(ctx, i, "/status", &r); err != nil {
		return rpcStatus{}, err
	}
	return rpcStatus{Height: r.Result.SyncInfo.Height, CatchingUp: r.Result.SyncInfo.CatchingUp}, nil
}

func (n *chaosNet) rpcGet(ctx context.Context, i int, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.rpc[i]+path, nil)
	if err != nil {
		return err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("rpc %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// heal resumes and restarts whatever is down and waits until every node is back in
// consensus.
func (n *chaosNet) heal(t *testing.T) {
	t.Helper()
	for i := range n.homes {
		_ = n.proc(i).cmd.Process.Signal(syscall.SIGCONT)
	}
	n.restartExited(context.Background())
	ctx, cancel := context.WithTimeout(t.Context(), chaosHealBound)
	defer cancel()
	for i := range n.homes {
		if d := n.awaitConsensus(ctx, i, time.Now()); d >= chaosRejoinBound || ctx.Err() != nil {
			t.Fatalf("%s is not back in consensus %s after the soak", hospitalIDs[i], chaosHealBound)
		}
	}
}

// checkConverged is (a): all four reach one height with one app hash, and their
// blocks at a common height are the same block.
func (n *chaosNet) checkConverged(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(chaosHealBound)
	for {
		heights, hashes := make([]int64, len(n.homes)), make([]string, len(n.homes))
		for i := range n.homes {
			var r struct {
				Result struct {
					Response struct {
						Height int64  `json:"last_block_height,string"`
						Hash   []byte `json:"last_block_app_hash"`
					} `json:"response"`
				} `json:"result"`
			}
			if err := n.rpcGet(t.Context(), i, "/abci_info", &r); err != nil {
				t.Fatalf("%s abci_info: %v", hospitalIDs[i], err)
			}
			heights[i], hashes[i] = r.Result.Response.Height, fmt.Sprintf("%X", r.Result.Response.Hash)
		}
		if slices.Min(heights) == slices.Max(heights) {
			for i := range hashes {
				if hashes[i] != hashes[0] {
					t.Fatalf("DIVERGED at height %d: app hashes %v", heights[0], hashes)
				}
			}
			n.checkSameBlock(t, heights[0])
			t.Logf("(a) converged: all four at height %d, app hash %.16s…", heights[0], hashes[0])
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes did not reach one height within %s: %v", chaosHealBound, heights)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (n *chaosNet) checkSameBlock(t *testing.T, h int64) {
	t.Helper()
	var first string
	for i := range n.homes {
		var r struct {
			Result struct {
				BlockID struct {
					Hash string `json:"hash"`
				} `json:"block_id"`
			} `json:"result"`
		}
		if err := n.rpcGet(t.Context(), i, "/block?height="+strconv.FormatInt(h, 10), &r); err != nil {
			t.Fatalf("%s block %d: %v", hospitalIDs[i], h, err)
		}
		if i == 0 {
			first = r.Result.BlockID.Hash
		} else if r.Result.BlockID.Hash != first {
			t.Fatalf("DIVERGED: block %d is %s at %s but %s at ada", h, r.Result.BlockID.Hash, hospitalIDs[i], first)
		}
	}
}

// nodeState is a node's committed state, read from its app store with the node
// stopped: CometBFT's RPC answers only the chain's public queries (consent.PublicQuery),
// and these checks read records, consents, decisions and receipts.
type nodeState struct{ app *abci.App }

// stateOf stops node i (if it runs) and opens its app store, once.
func (n *chaosNet) stateOf(t *testing.T, i int) *nodeState {
	t.Helper()
	if s := n.states[i]; s != nil {
		return s
	}
	if err := n.proc(i).stop(t); err != nil {
		t.Fatalf("stop %s for the checks: %v", hospitalIDs[i], err)
	}
	app, err := abci.NewApp(filepath.Join(n.homes[i].Path(home.ChainDir), "data", "app.db"), abci.NewConsentMachine(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	if n.states == nil {
		n.states = map[int]*nodeState{}
	}
	n.states[i] = &nodeState{app: app}
	return n.states[i]
}

// Query reads path into v (client.ErrNotFound if the state has no such item).
func (s *nodeState) Query(ctx context.Context, path string, v any) error {
	res, err := s.app.Query(ctx, &abcitypes.RequestQuery{Path: path})
	if err != nil {
		return err
	}
	switch consent.Code(res.Code) {
	case consent.OK:
		return json.Unmarshal(res.Value, v)
	case consent.CodeNotFound:
		return fmt.Errorf("%w: %s", client.ErrNotFound, res.Log)
	}
	return fmt.Errorf("query %s: %s", path, res.Log)
}

// Decision is a grant with its receipts.
func (s *nodeState) Decision(ctx context.Context, id consent.GrantID) (*consent.GrantInfo, error) {
	var g consent.GrantInfo
	if err := s.Query(ctx, "/grant/"+string(id), &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// checkCommitted is (b): every record, consent, revocation and decision the load saw
// committed is on every node.
func (n *chaosNet) checkCommitted(t *testing.T) {
	t.Helper()
	var cs []*nodeState
	for i := range n.homes {
		cs = append(cs, n.stateOf(t, i))
	}
	checked := 0
	has := func(path string, v any) {
		t.Helper()
		for i, c := range cs {
			if err := c.Query(t.Context(), path, v); err != nil {
				t.Errorf("LOST: %s at %s: %v", path, hospitalIDs[i], err)
			}
		}
		checked++
	}
	for _, r := range n.records {
		has("/record/"+string(r.id), new(consent.Record))
	}
	for _, c := range n.consents {
		if c.uncertain {
			continue
		}
		var got consent.Consent
		has("/consent/"+string(c.id), &got)
		if !c.revoked.IsZero() && got.Revoked == 0 {
			t.Errorf("LOST: the revocation of consent %s (committed at %s) is not on the chain", c.id, c.revoked.Format(time.StampMilli))
		}
	}
	for _, rd := range n.reads {
		if rd.grant != "" {
			has("/grant/"+string(rd.grant), new(consent.GrantInfo))
		}
	}
	t.Logf("(b) no lost tx: %d committed items, each on all four nodes", checked)
}

// checkReleases is (c) and (d), from the chain's decisions and receipts.
func (n *chaosNet) checkReleases(t *testing.T) {
	t.Helper()
	c := n.stateOf(t, 0)
	blocks, err := client.Dial(t.Context(), n.rpc[1]) // blocks are public: node 1's RPC
	if err != nil {
		t.Fatal(err)
	}
	revoked := map[consent.ConsentID]consent.Height{}
	for _, p := range n.patients {
		var cons []consent.Consent
		if err := c.Query(t.Context(), "/consents/"+string(p.id), &cons); err != nil && !errors.Is(err, client.ErrNotFound) {
			t.Fatal(err)
		}
		for _, k := range cons {
			if k.Revoked != 0 {
				revoked[k.ID] = k.Revoked
			}
		}
	}
	// (c) every receipt of a decision under a revoked consent is below the revoke.
	grants := map[consent.GrantID]*consent.GrantInfo{}
	underRevoked, receipts, sameBlock := 0, 0, 0
	for _, p := range n.patients {
		var ds []consent.Decision
		if err := c.Query(t.Context(), "/decisions/"+string(p.id), &ds); err != nil && !errors.Is(err, client.ErrNotFound) {
			t.Fatal(err)
		}
		for _, d := range ds {
			g, err := c.Decision(t.Context(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			grants[d.ID] = g
			receipts += len(g.Receipts)
			hr, ok := revoked[d.Consent]
			if !ok {
				continue
			}
			underRevoked++
			for _, r := range g.Receipts {
				if r.Height > hr || r.Height == hr && !receiptFirst(t, blocks, hr, d.ID, d.Consent) {
					t.Errorf("RELEASE AFTER REVOKE: grant %s under consent %s (revoked at %d) has a receipt by %s at %d", d.ID, d.Consent, hr, r.Custodian, r.Height)
				}
				if r.Height == hr {
					sameBlock++
				}
			}
		}
	}
	// (c) and (d) for each read that returned a Bundle.
	ok, afterRevoke := 0, 0
	for _, rd := range n.reads {
		if rd.status != http.StatusOK {
			continue
		}
		ok++
		if rd.text != "" {
			t.Errorf("read at %s: %s", hospitalIDs[rd.reader], rd.text)
		}
		g := grants[rd.grant]
		if g == nil {
			var err error
			if g, err = c.Decision(t.Context(), rd.grant); err != nil {
				t.Errorf("UNLOGGED RELEASE: a read returned a Bundle for grant %q, which the chain does not have: %v", rd.grant, err)
				continue
			}
		}
		if !g.Granted || len(g.Receipts) < chaosThreshold {
			t.Errorf("UNLOGGED RELEASE: a read returned a Bundle for grant %s (granted %v) with %d receipts, want at least %d (one per key share)",
				rd.grant, g.Granted, len(g.Receipts), chaosThreshold)
		}
		if k := n.consents[g.Consent]; k != nil && !k.revoked.IsZero() && rd.start.After(k.revoked) {
			afterRevoke++
			t.Errorf("RELEASE AFTER REVOKE: a read started %s after consent %s's revoke committed returned a Bundle (grant %s)",
				rd.start.Sub(k.revoked).Round(time.Millisecond), g.Consent, rd.grant)
		}
	}
	if ok*chaosThreshold > receipts {
		t.Errorf("UNLOGGED RELEASE: %d reads returned a Bundle but the chain has %d receipts (%d shares a read)", ok, receipts, chaosThreshold)
	}
	t.Logf("(c) %d consents revoked, %d decisions under them, no receipt after a revoke (%d in the revoke's block, before it); %d reads after a seen revoke returned a Bundle",
		len(revoked), underRevoked, sameBlock, afterRevoke)
	t.Logf("(d) %d reads returned a Bundle, %d receipts (key shares released) on the chain over %d decisions",
		ok, receipts, len(grants))
}

// receiptFirst reports whether, in block h, grant g's receipt comes before the
// revocation of consent k: txs apply in block order, so a receipt ahead of the revoke
// in the revoke's block was accepted while the grant still held.
func receiptFirst(t *testing.T, c *client.Client, h consent.Height, g consent.GrantID, k consent.ConsentID) bool {
	t.Helper()
	b, err := c.Block(t.Context(), int64(h))
	if err != nil {
		t.Fatal(err)
	}
	receipt, revoke := -1, -1
	for i, tx := range b.Data.Txs {
		_, body, err := consent.Decode(tx)
		switch {
		case err != nil:
		case body.Kind == consent.KindReceipt && body.Receipt.Grant == g && receipt < 0:
			receipt = i
		case body.Kind == consent.KindRevoke && body.Revoke.Consent == k:
			revoke = i
		}
	}
	return receipt >= 0 && revoke >= 0 && receipt < revoke
}

// report prints the counts and fails on any 500.
func (n *chaosNet) report(t *testing.T) {
	t.Helper()
	byStatus := map[int]int{}
	for _, rd := range n.reads {
		byStatus[rd.status]++
		if rd.status == http.StatusInternalServerError {
			t.Errorf("500 from %s at %s: %s", hospitalIDs[rd.reader], rd.start.Format(time.StampMilli), rd.text)
		}
	}
	s := n.stats
	t.Logf("faults: %d kills (%d two-down windows), %d stops, %d self-exits %v", s.kills, s.twoDown, s.stops, s.selfExits, s.selfExitReasons)
	t.Logf("load: %d ingests (%d failed), %d grants (+%d uncertain), %d revokes (+%d uncertain), %d throttled",
		s.ingests, s.ingestFails, s.grants, s.grantsUncertain, s.revokes, s.revokesUncertain, s.throttled)
	t.Logf("reads: %d: ok %d, 403 %d, 503 %d, 504 %d, 500 %d, no answer %d, other %v",
		len(n.reads), byStatus[200], byStatus[403], byStatus[503], byStatus[504], byStatus[500], byStatus[0], otherStatuses(byStatus))
	for _, r := range s.rejoins {
		t.Logf("  restart %s", r)
	}
	t.Logf("rejoin after kill -9, to all peers connected: %s", durations(s.rejoinPeers))
	t.Logf("rejoin after kill -9, to consensus: %s", durations(s.rejoinConsensus))
	t.Logf("rejoin after kill -9, to a committed tx through it: %s", durations(s.rejoinTx))
	t.Logf("resume after SIGSTOP, to consensus: %s", durations(s.resumeConsensus))
	for _, a := range s.anomalies {
		t.Errorf("anomaly: %s", a)
	}
	for _, d := range s.rejoinConsensus {
		if d >= chaosRejoinBound {
			t.Errorf("a restarted node was not back in consensus within %s", chaosRejoinBound)
		}
	}
}

func otherStatuses(m map[int]int) map[int]int {
	out := map[int]int{}
	for k, v := range m {
		if !slices.Contains([]int{0, 200, 403, 500, 503, 504}, k) {
			out[k] = v
		}
	}
	return out
}

// durations is "n=… p50 … p99 … max …" of ds (p99 is the max below 100 samples).
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n=0"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p int) time.Duration { return s[(len(s)*p+99)/100-1].Round(10 * time.Millisecond) } // nearest rank
	return fmt.Sprintf("n=%d p50 %s p99 %s max %s", len(s), q(50), q(99), s[len(s)-1].Round(10*time.Millisecond))
}
