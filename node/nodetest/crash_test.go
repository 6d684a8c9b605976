package nodetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
)

// helperEnv names the file that tells TestHelperValidator which validator to run.
const helperEnv = "NODETEST_HELPER_VALIDATOR"

// helperConfig is a chain.Config without its Machine (always the consent machine) and
// Logger.
type helperConfig struct {
	Home, Moniker, P2PListen, RPCListen string
	NodeKey, ValidatorKey               []byte
	PersistentPeers                     []string
	Genesis                             json.RawMessage // CometBFT JSON
}

// TestHelperValidator is not a test: TestCrashRecovery runs it in a child process, as
// one validator of its network. It runs until killed, or until its stdin closes (the
// parent is gone).
func TestHelperValidator(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("a child process of TestCrashRecovery")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var hc helperConfig
	if err := json.Unmarshal(b, &hc); err != nil {
		t.Fatal(err)
	}
	var gen cmttypes.GenesisDoc
	if err := cmtjson.Unmarshal(hc.Genesis, &gen); err != nil {
		t.Fatal(err)
	}
	n, err := chain.NewNode(chain.Config{
		Home: hc.Home, Moniker: hc.Moniker, NodeKey: hc.NodeKey, ValidatorKey: hc.ValidatorKey,
		Genesis: &gen, P2PListen: hc.P2PListen, RPCListen: hc.RPCListen,
		PersistentPeers: hc.PersistentPeers, Machine: abci.NewConsentMachine(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		// The parent reads the child's consents and decisions over the RPC: this
		// test validator has no API, so its RPC answers every query path (a hospital
		// node's answers only consent.PublicQuery's).
		PublicQuery: func(string) bool { return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
}

// crashRoundsEnv sets TestCrashRecovery's number of rounds (default crashRounds).
const crashRoundsEnv = "MEDLEDGER_CRASH_ROUNDS"

// crashRounds is TestCrashRecovery's default number of rounds: each kills the child
// after it caught up, and two of them (every third) kill it again during its restart.
// A long run:
//
//	MEDLEDGER_CRASH_ROUNDS=20 go test ./node/nodetest -run TestCrashRecovery -v
const crashRounds = 6

// TestCrashRecovery runs the consent chain on four validators, one of them in a child
// process, under a steady load of signed grants and access requests, and kills that one
// with SIGKILL at random moments and restarts it; every third round kills it a second
// time while it starts up, replays or block-syncs. After each restart it must still
// hold everything it had committed, then catch up with the others with the same app
// hash at the same height, and hold every consent and decision the network committed
// before the kill, decided the same way.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a child process")
	}
	t.Parallel()
	const external = 3
	rounds := crashRounds
	if s := os.Getenv(crashRoundsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			t.Fatalf("%s=%q: want a number of rounds (1-1000)", crashRoundsEnv, s)
		}
		rounds = n
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), max(4*time.Minute, time.Duration(rounds)*12*time.Second))
	defer cancel()
	w := newConsentWorld()
	net := nodetest.New(t, 4, func(int) abci.StateMachine { return abci.NewConsentMachine() },
		nodetest.WithAppState(w.genesis(t)), nodetest.WithExternal(external))
	net.Start()
	child := newChildValidator(t, net, external)

	load := startLoad(ctx, t, net, w, external)
	defer load.stop()

	var (
		wantLocal   map[consent.TxID]committedTx // committed on the child before the kill
		wantNetwork map[consent.TxID]committedTx // committed on the network before the kill
		localHeight int64                        // the child's last committed height seen before the kill
		catchUps    []time.Duration
		kills       int
	)
	for round := range rounds {
		t0 := time.Now()
		child.start()
		// 1. Right after the restart: nothing it had committed is lost.
		h, _, err := child.waitInfo(ctx, 0)
		if err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, child.logTail())
		}
		if h < localHeight {
			t.Fatalf("round %d: restarted at height %d, had committed %d before the kill", round, h, localHeight)
		}
		child.checkCommitted(ctx, round, wantLocal, "committed on it before the kill")

		// 2. It catches up, with the same app hash as the others at the same height.
		target := net.Nodes[0].Height()
		h, hash, err := child.waitInfo(ctx, target)
		if err != nil {
			t.Fatalf("round %d: catching up to %d: %v\n%s", round, target, err, child.logTail())
		}
		catchUps = append(catchUps, time.Since(t0))
		want, err := net.Nodes[0].AppHashAt(h)
		if err != nil || !bytes.Equal(hash, want) {
			t.Fatalf("round %d: child app hash at %d is %x, node 0 has %x (%v)", round, h, hash, want, err)
		}
		child.checkCommitted(ctx, round, wantNetwork, "committed on the network before the kill")

		// 3. Kill it at a random moment, every third round twice in a row (the second
		// time while it starts up, replays or block-syncs).
		time.Sleep(rand.N(800 * time.Millisecond))
		if round%3 == 2 {
			child.kill()
			kills++
			child.start()
			time.Sleep(rand.N(4 * time.Second))
		}
		localHeight, _, err = child.info(ctx)
		if err != nil {
			localHeight = 0 // not answering yet: only the network check applies
		}
		wantLocal = load.committedUpTo(localHeight)
		child.kill()
		kills++
		wantNetwork = load.committedUpTo(-1)
	}
	child.start()
	if _, _, err := child.waitInfo(ctx, net.Nodes[0].Height()); err != nil {
		t.Fatalf("final restart: %v", err)
	}
	child.checkCommitted(ctx, rounds, wantNetwork, "committed on the network before the last kill")

	n, p50 := load.stats()
	t.Logf("%d SIGKILLs in %v; restart to caught up: median %v, max %v; %d consent txs committed, SubmitTx p50 %v",
		kills, time.Since(start).Round(time.Millisecond), median(catchUps), slices.Max(catchUps).Round(time.Millisecond), n, p50)
}

// childValidator runs node i of net as `go test -test.run=TestHelperValidator` in a
// child process.
type childValidator struct {
	t       *testing.T
	cfgPath string
	logPath string
	rpc     *rpchttp.HTTP
	hc      *http.Client

	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func newChildValidator(t *testing.T, net *nodetest.Net, i int) *childValidator {
	c := net.Configs[i]
	gen, err := cmtjson.Marshal(net.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(helperConfig{
		Home: c.Home, Moniker: c.Moniker, P2PListen: c.P2PListen, RPCListen: c.RPCListen,
		NodeKey: c.NodeKey, ValidatorKey: c.ValidatorKey, PersistentPeers: c.PersistentPeers,
		Genesis: gen,
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cv := &childValidator{
		t:       t,
		cfgPath: filepath.Join(dir, "validator.json"),
		logPath: filepath.Join(dir, "validator.log"),
		hc:      &http.Client{Timeout: 2 * time.Second},
	}
	if err := os.WriteFile(cv.cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cv.rpc, err = rpchttp.NewWithClient(c.RPCListen, "/websocket", cv.hc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cv.kill()
		cv.hc.CloseIdleConnections()
	})
	return cv
}

func (c *childValidator) start() {
	c.t.Helper()
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperValidator$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+c.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If this process dies, the child's stdin closes and it stops.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.cmd, c.stdin = cmd, stdin
}

// kill sends SIGKILL and reaps the child.
func (c *childValidator) kill() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Kill() // SIGKILL
	_ = c.cmd.Wait()
	_ = c.stdin.Close()
	c.cmd = nil
}

// info is the child's last committed height and app hash, from its ABCI Info.
func (c *childValidator) info(ctx context.Context) (int64, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := c.rpc.ABCIInfo(ctx)
	if err != nil {
		return 0, nil, err
	}
	return r.Response.LastBlockHeight, r.Response.LastBlockAppHash, nil
}

// waitInfo waits until the child answers with a height of at least h.
func (c *childValidator) waitInfo(ctx context.Context, h int64) (int64, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var lastErr error
	for {
		got, hash, err := c.info(ctx)
		if err == nil && got >= h {
			return got, hash, nil
		}
		if err != nil {
			lastErr = err
		} else {
			lastErr = fmt.Errorf("at height %d", got)
		}
		select {
		case <-ctx.Done():
			return 0, nil, fmt.Errorf("child validator: waiting for height %d: %w", h, lastErr)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// checkCommitted wants every tx of want on the child: each grant's consent, and each
// request's decision, granted or denied as the network decided it.
func (c *childValidator) checkCommitted(ctx context.Context, round int, want map[consent.TxID]committedTx, what string) {
	c.t.Helper()
	byPatient := map[consent.PatientID][]committedTx{}
	for _, tx := range want {
		byPatient[tx.patient] = append(byPatient[tx.patient], tx)
	}
	missing, height := 0, int64(0)
	for p, txs := range byPatient {
		var (
			consents  []consent.Consent
			decisions []consent.Decision
		)
		height = max(height, c.query(ctx, round, "/consents/"+string(p), &consents))
		c.query(ctx, round, "/decisions/"+string(p), &decisions)
		have := map[consent.TxID]string{}
		for _, cn := range consents {
			have[consent.TxID(cn.ID)] = "grant"
		}
		for _, d := range decisions {
			have[consent.TxID(d.ID)] = verdict(d.Granted)
		}
		for _, tx := range txs {
			if have[tx.id] != tx.outcome {
				missing++
			}
		}
	}
	if missing > 0 {
		c.t.Fatalf("round %d: %d of %d txs %s are missing or decided otherwise on the child (query at height %d)\n%s",
			round, missing, len(want), what, height, c.logTail())
	}
}

// query reads the child's state at path into v and returns the height it is from.
func (c *childValidator) query(ctx context.Context, round int, path string, v any) int64 {
	c.t.Helper()
	r, err := c.rpc.ABCIQuery(ctx, path, nil)
	if err != nil || r.Response.Code != 0 {
		c.t.Fatalf("round %d: %s: %v", round, path, err)
	}
	if err := json.Unmarshal(r.Response.Value, v); err != nil {
		c.t.Fatalf("round %d: %s: %v", round, path, err)
	}
	return r.Response.Height
}

func (c *childValidator) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// consentWorld is the crash test's consortium: four hospitals, patients with one record
// each, and deterministic keys.
type consentWorld struct {
	hospitals []consent.Hospital
	patients  []*consenttest.Key
	records   []consent.RecordID
}

const crashPatients = 32

func newConsentWorld() *consentWorld {
	w := &consentWorld{}
	for i := range 4 {
		w.hospitals = append(w.hospitals, consenttest.Hospital(fmt.Sprintf("hospital-%d", i), 1))
	}
	for i := range crashPatients {
		w.patients = append(w.patients, consenttest.NewKey(fmt.Sprintf("patient %d", i)))
		w.records = append(w.records, consent.RecordID(fmt.Sprintf("%032x", i+1)))
	}
	return w
}

func (w *consentWorld) genesis(t *testing.T) []byte {
	b, err := json.Marshal(consent.Genesis{Hospitals: w.hospitals})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *consentWorld) operator(h int) *consenttest.Key {
	return consenttest.NewKey(string(w.hospitals[h].ID))
}

// register is patient p's record, held by hospital p%4.
func (w *consentWorld) register(p int) (consent.Body, consent.Signer) {
	h := p % len(w.hospitals)
	return consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: w.records[p], CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm",
		Patient: w.patients[p].Patient(), Classes: []consent.DataClass{"Observation"},
		Custodians: []consent.HospitalID{w.hospitals[h].ID},
	}}, w.operator(h)
}

// tx is the seq-th tx of the load: alternately patient p granting hospital h access
// for treatment, and hospital h requesting patient p's record for treatment.
func (w *consentWorld) tx(seq int) (consent.Body, consent.Signer, consent.PatientID) {
	p, h := rand.IntN(len(w.patients)), rand.IntN(len(w.hospitals))
	pid := w.patients[p].Patient()
	if seq%2 == 0 {
		return consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: pid, Policy: consent.Policy{
			Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit,
				Actors: []consent.HospitalID{w.hospitals[h].ID}, Purposes: []consent.Purpose{"TREAT"}}},
		}}}, w.patients[p], pid
	}
	return consent.Body{Kind: consent.KindRequest, Request: &consent.Request{
		Requester: w.hospitals[h].ID, Record: w.records[p], Purpose: "TREAT"}}, w.operator(h), pid
}

// committedTx is a tx the network committed, and what the child must hold for it.
type committedTx struct {
	id      consent.TxID
	patient consent.PatientID
	height  int64
	outcome string // "grant" for a consent, "granted" or "denied" for a decision
}

func verdict(granted bool) string {
	if granted {
		return "granted"
	}
	return "denied"
}

// load registers the patients' records, then submits consent txs to the in-process
// nodes at a steady rate and records the height and outcome of each.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	committed map[consent.TxID]committedTx
	latencies []time.Duration
}

func startLoad(ctx context.Context, t *testing.T, net *nodetest.Net, w *consentWorld, skip int) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel, committed: map[consent.TxID]committedTx{}}
	var nodes []*chain.Node
	for i, n := range net.Nodes {
		if i != skip {
			nodes = append(nodes, n)
		}
	}
	var (
		bmu sync.Mutex
		b   = consenttest.Builder{ChainID: net.ChainID}
	)
	sign := func(body consent.Body, signer consent.Signer) []byte {
		bmu.Lock()
		defer bmu.Unlock()
		body.Expiry = consent.Height(nodes[0].Height() + 500)
		return b.Tx(body, signer)
	}
	var reg sync.WaitGroup
	for p := range w.patients {
		tx := sign(w.register(p))
		reg.Go(func() {
			if err := committed(nodes[p%len(nodes)].SubmitTx(ctx, tx)); err != nil {
				t.Errorf("register record %d: %v", p, err)
			}
		})
	}
	if reg.Wait(); t.Failed() {
		t.FailNow()
	}
	sem := make(chan struct{}, 32)
	l.wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond) // ≈ 50 tx/s
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case <-ctx.Done():
				return
			case sem <- struct{}{}:
			}
			node := nodes[seq%len(nodes)]
			body, signer, patient := w.tx(seq)
			tx := sign(body, signer)
			l.wg.Go(func() {
				defer func() { <-sem }()
				t0 := time.Now()
				check, h, res, err := node.SubmitTx(ctx, tx)
				if errors.Is(err, context.Canceled) || ctx.Err() != nil {
					return
				}
				if err := committed(check, h, res, err); err != nil {
					t.Errorf("load: %s: %v", body.Kind, err)
					return
				}
				c := committedTx{id: consent.IDOf(tx), patient: patient, height: h, outcome: "grant"}
				if body.Kind == consent.KindRequest {
					c.outcome = outcomeOf(res.Events)
				}
				l.mu.Lock()
				l.committed[c.id] = c
				l.latencies = append(l.latencies, time.Since(t0))
				l.mu.Unlock()
			})
		}
	})
	return l
}

// committed turns SubmitTx's results into an error unless the tx was accepted and
// committed.
func committed(check consent.Result, _ int64, res consent.Result, err error) error {
	switch {
	case err != nil:
		return err
	case check.Code != 0:
		return fmt.Errorf("CheckTx: code %d (%s)", check.Code, check.Log)
	case res.Code != 0:
		return fmt.Errorf("DeliverTx: code %d (%s)", res.Code, res.Log)
	}
	return nil
}

// outcomeOf is the decision a committed request's events announce.
func outcomeOf(events []consent.Event) string {
	for _, e := range events {
		for _, a := range e.Attrs {
			if e.Type == "access" && a.Key == "decision" {
				return a.Value
			}
		}
	}
	return "no decision event"
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// committedUpTo returns the txs committed at height ≤ h (all of them when h < 0).
func (l *load) committedUpTo(h int64) map[consent.TxID]committedTx {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[consent.TxID]committedTx{}
	for id, c := range l.committed {
		if h < 0 || c.height <= h {
			out[id] = c
		}
	}
	return out
}

func (l *load) stats() (int, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.committed), median(l.latencies)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}
