package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
)

// slowClientsEnv makes TestSlowClientsHelper the attacker: "ADDR COUNT SECONDS".
const slowClientsEnv = "MEDLEDGER_TEST_SLOW_CLIENTS"

// Limits of the attacked node in TestSlowClientsLeaveConsensusRunning.
const (
	attackConns     = 3000
	attackMaxConns  = 512
	attackReadLimit = 2 * time.Second
)

// TestSlowClientsLeaveConsensusRunning: 3000 slow-body connections (POST /fhir/Consent,
// Content-Length 1000, one byte sent), from another process, against one validator's
// API. The node never holds more API connections than its limit (its open file count
// stays within its baseline plus that limit), its consensus keeps committing txs,
// /healthz answers, the read timeout cuts the slow clients, and then a patient's
// consent write through the API succeeds. The patient's writes beyond the node's
// per-patient burst get 429 and reach the chain not at all.
func TestSlowClientsLeaveConsensusRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("a 4-validator network and 3000 connections")
	}
	nodes, logs := startLimitedNet(t, func(i int, a *home.APIConfig) {
		if i == 1 { // bayside is attacked
			a.MaxConns, a.ReadTimeout, a.ReadHeaderTimeout = attackMaxConns, attackReadLimit.String(), "1s"
			a.PatientRate, a.PatientBurst = 1, 2
		}
	})
	bayside := nodes[1]
	baseline := openFiles(t)
	sampler := sampleFiles(t, bayside)

	attacker := startSlowClients(t, strings.TrimPrefix(bayside.APIURL(), "http://"), attackConns, 45*time.Second)
	connected := attacker.waitLine(t, "connected", 30*time.Second)
	t.Logf("attacker: %s", connected)
	attackStart := time.Now()
	h0 := bayside.Chain().Height()

	// While the slots are full: consensus commits a tx on the attacked node, and
	// /healthz answers within the time the read timeout takes to drain the queue.
	patient, patientID := nodetest.NewPatient(t)
	c := nodetest.AsPatient(t, bayside, patient, nodetest.Permit(patientID, "ada"))
	if bayside.Chain().Height() < c.Height || c.Height <= h0 {
		t.Errorf("under attack: tx committed at %d, node at %d (was %d)", c.Height, bayside.Chain().Height(), h0)
	}
	t.Logf("under attack: a tx committed through the attacked node at height %d, %v after the attack began", c.Height, time.Since(attackStart).Round(time.Millisecond))
	healthStart := time.Now()
	status, err := get(bayside.APIURL()+"/healthz", 40*time.Second)
	if err != nil || status != http.StatusOK {
		t.Fatalf("healthz under attack: %d, %v", status, err)
	}
	t.Logf("healthz under attack answered 200 after %v", time.Since(healthStart).Round(time.Millisecond))

	// A patient's consent write through the attacked API, once slots free.
	writeStart := time.Now()
	key, pid := nodetest.NewPatient(t)
	if status, body := writeConsent(t, bayside.APIURL(), key); status != http.StatusCreated {
		t.Fatalf("consent write after the attack: %d %s", status, body)
	}
	t.Logf("a consent write through the attacked API succeeded %v after it was sent", time.Since(writeStart).Round(time.Millisecond))

	stats := attacker.stop(t)
	peak := sampler.stop()
	limit := api.ConnLimit(attackMaxConns)
	t.Logf("open files: baseline %d, peak %d during the attack (API connection limit %d, open-file limit %s); height %d → %d",
		baseline, peak.files, limit, fileLimit(t), h0, peak.height)
	t.Logf("attacker: %s", stats)
	if peak.files > int64(baseline+limit+64) {
		t.Errorf("open files peaked at %d: more than the baseline %d + the API limit %d (+64)", peak.files, baseline, limit)
	}
	if strings.Contains(logs.String(), "CONSENSUS FAILURE") {
		t.Errorf("consensus failed under attack")
	}

	// The per-patient limit: the burst is 2 writes, the first is above.
	if status, body := writeConsent(t, bayside.APIURL(), key); status != http.StatusCreated {
		t.Fatalf("second write: %d %s", status, body)
	}
	status, body := writeConsent(t, bayside.APIURL(), key)
	if status != http.StatusTooManyRequests || !bytes.Contains(body, []byte(`"throttled"`)) {
		t.Fatalf("third write within the minute: %d %s; want 429 throttled", status, body)
	}
	time.Sleep(time.Second) // a block or more: what was submitted has committed everywhere
	cons, err := nodes[0].Consents(nodetest.Ctx(t), pid)
	if err != nil || len(cons) != 2 {
		t.Errorf("the chain holds %d consents of the patient (%v), want 2: the throttled write must not reach it", len(cons), err)
	}
}

// startLimitedNet starts a 4-hospital network whose [api] sections configure sets.
func startLimitedNet(t *testing.T, configure func(i int, a *home.APIConfig)) ([]*node.Node, *nodetest.SyncBuffer) {
	t.Helper()
	homes, err := node.Testnet(node.TestnetConfig{Dir: t.TempDir(), Hospitals: 4})
	if err != nil {
		t.Fatal(err)
	}
	logs := &nodetest.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	nodes := make([]*node.Node, len(homes))
	for i, h := range homes {
		configure(i, &h.Config.API)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		nd, err := node.Start(t.Context(), node.Config{Home: h, Logger: logger, APIListener: l})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
		t.Cleanup(func() { nd.Close() })
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, nd := range nodes {
		for nd.Chain().Height() < 2 || nd.Chain().CatchingUp() {
			if time.Now().After(deadline) {
				t.Fatal("the network did not reach height 2")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nodes, logs
}

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(fds)
}

func fileLimit(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "Max open files") {
			return strings.Join(strings.Fields(line)[3:5], "/")
		}
	}
	return "?"
}

// fileSampler records the peak open file count and the node's height every 20 ms.
type fileSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak peakSample
}

type peakSample struct{ files, height int64 }

func sampleFiles(t *testing.T, nd *node.Node) *fileSampler {
	s := &fileSampler{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
				s.peak.files = max(s.peak.files, int64(len(fds)))
			}
			s.peak.height = nd.Chain().Height()
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *fileSampler) stop() peakSample {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.wg.Wait()
	return s.peak
}

// fresh is a client that opens a connection per request, as a new visitor would (a
// node under pressure closes idle keep-alive connections, and a POST sent on one as it
// closes is not retried), from 127.0.0.2: another address than the attacker's, whose
// consent requests the node throttles.
func fresh(timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}}
}

func get(url string, timeout time.Duration) (int, error) {
	res, err := fresh(timeout).Get(url)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// writeConsent grants bayside access for treatment, as the patient's device does it
// through the API ($prepare, sign, POST /fhir/Consent), retrying a connection the
// server closed; it returns the write's status and body.
func writeConsent(t *testing.T, api string, key *crypto.SigningKey) (int, []byte) {
	t.Helper()
	fixture, err := os.ReadFile("api/testdata/consent/optin-treat-bayside.json")
	if err != nil {
		t.Fatal(err)
	}
	resource := bytes.ReplaceAll(fixture, []byte("6a50a417ca262e8a7553ac8b7d8c620cebefbf4cfa0ef9d440d4fc492a3b8632"), []byte(consent.PatientIDOf(key.Public())))
	status, prepared := post(t, api+"/fhir/Consent/$prepare", resource)
	if status != http.StatusOK {
		return status, prepared
	}
	var ps struct {
		Parameter []struct{ Name, ValueBase64Binary string }
	}
	if err := json.Unmarshal(prepared, &ps); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ps.Parameter, func(p struct{ Name, ValueBase64Binary string }) bool { return p.Name == "body" })
	body, err := base64.StdEncoding.DecodeString(ps.Parameter[i].ValueBase64Binary)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": []map[string]any{
		{"name": "resource", "resource": json.RawMessage(resource)},
		{"name": "body", "valueBase64Binary": base64.StdEncoding.EncodeToString(body)},
		{"name": "signature", "valueBase64Binary": base64.StdEncoding.EncodeToString(sig)},
	}})
	return post(t, api+"/fhir/Consent", params)
}

func post(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	res, err := fresh(60*time.Second).Post(url, "application/fhir+json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// attacker is the slow-clients child process.
type attacker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	lines chan string
}

// startSlowClients runs this test binary as TestSlowClientsHelper against addr.
func startSlowClients(t *testing.T, addr string, n int, life time.Duration) *attacker {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSlowClientsHelper$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", slowClientsEnv, addr, n, int(life/time.Second)))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &attacker{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout), lines: make(chan string, 16)}
	go func() {
		defer close(a.lines)
		for a.out.Scan() {
			a.lines <- a.out.Text()
		}
	}()
	t.Cleanup(func() { a.stdin.Close(); a.cmd.Process.Kill(); a.cmd.Wait() })
	return a
}

// waitLine returns the attacker's next line starting with prefix.
func (a *attacker) waitLine(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-a.lines:
			if !ok {
				t.Fatalf("the attacker ended before %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("the attacker did not say %q within %v", prefix, timeout)
		}
	}
}

// stop tells the attacker to report and end; it returns its report.
func (a *attacker) stop(t *testing.T) string {
	t.Helper()
	a.stdin.Close()
	return a.waitLine(t, "report", 30*time.Second)
}

// TestSlowClientsHelper is the attacker process of TestSlowClientsLeaveConsensusRunning
// (it does nothing in a normal run). It opens COUNT connections to ADDR, each sending a
// consent write's headers with Content-Length 1000 and one byte of body, holds them
// until the server closes them, and reports when its stdin closes or after SECONDS.
func TestSlowClientsHelper(t *testing.T) {
	spec := os.Getenv(slowClientsEnv)
	if spec == "" {
		t.Skip("the attacker process of TestSlowClientsLeaveConsensusRunning")
	}
	var addr string
	var n, secs int
	if _, err := fmt.Sscanf(spec, "%s %d %d", &addr, &n, &secs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }() // the parent is done or gone

	var (
		mu     sync.Mutex
		cuts   []time.Duration // from sending to the server's close
		failed atomic.Int64
		conns  = make(chan net.Conn, n)
		work   = make(chan struct{}, n)
		wg     sync.WaitGroup
	)
	for range n {
		work <- struct{}{}
	}
	close(work)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 20 * time.Second}
			for range work {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					failed.Add(1)
					continue
				}
				sent := time.Now()
				fmt.Fprintf(c, "POST /fhir/Consent HTTP/1.1\r\nHost: %s\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{", addr)
				conns <- c
				go func() {
					io.Copy(io.Discard, c) // until the server closes it (or we do)
					if ctx.Err() == nil {
						mu.Lock()
						cuts = append(cuts, time.Since(sent))
						mu.Unlock()
					}
				}()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("connected %d (failed %d)\n", n-int(failed.Load()), failed.Load())
	<-ctx.Done()
	close(conns)
	for c := range conns {
		c.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(cuts)
	pct := func(p int) time.Duration {
		if len(cuts) == 0 {
			return 0
		}
		return cuts[min(len(cuts)-1, len(cuts)*p/100)].Round(10 * time.Millisecond)
	}
	fmt.Printf("report: %d connections cut by the server before the end (first %v, p50 %v, max %v), %d dials failed\n",
		len(cuts), pct(0), pct(50), pct(100), failed.Load())
	os.Stdout.Sync()
}
