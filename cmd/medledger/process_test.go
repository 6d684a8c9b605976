package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
)

// process is a `medledger start` OS process (the test binary re-executed as the CLI).
type process struct {
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

func startProcess(t *testing.T, h *home.Home) *process {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(h.Dir, "process.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := cli("start", "--home", h.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1), log: logf}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits for a clean exit (SIGKILL after 20 s).
func (p *process) stop(t *testing.T) error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.log.Close()
		return err
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.log.Close()
		return fmt.Errorf("did not stop within 20 s of SIGTERM")
	}
}

// testnet writes n hospitals' homes under dir with `medledger testnet` and reserves
// their ports for this test process (see chain.ReservePort): nodes it stops and starts
// again find their ports free, not taken meanwhile by another test package.
func testnet(t *testing.T, dir string, n int) {
	t.Helper()
	if out, err := cli("testnet", "--out", dir, "--hospitals", strconv.Itoa(n)).CombinedOutput(); err != nil {
		t.Fatalf("testnet: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	port := regexp.MustCompile(`[:/](\d+)(/quic-v1)?$`)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		h, err := home.Load(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, addr := range append([]string{h.Config.Chain.P2PListen, h.Config.Chain.RPCListen, h.Config.API.Listen}, h.Config.ListenAddrs...) {
			if m := port.FindStringSubmatch(addr); m != nil {
				p, _ := strconv.Atoi(m[1])
				if p != 0 && !chain.ReservePort(p) {
					t.Logf("testnet: port %d of %s is reserved by another process", p, e.Name())
				}
			}
		}
	}
}

// cli is the test binary re-executed as the medledger command (see TestMain).
func cli(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsCLI+"=1")
	return cmd
}

type apiClient struct {
	base   string
	tokens map[string]string
}

func (c apiClient) do(t *testing.T, role, method, path, contentType string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, c.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+c.tokens[role])
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func waitHealthy(t *testing.T, c apiClient) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, c.base+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become healthy: %v", c.base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSeparateProcesses runs a consortium as four `medledger start` OS processes made
// by `medledger testnet`: ingest at one, consent through the API with the patient's
// detached signature, read at another; stop a non-custodian validator and reads still
// work; restart it and it catches up.
func TestSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four node processes")
	}
	t.Parallel()
	dir := t.TempDir()
	testnet(t, dir, 4)
	var homes []*home.Home
	var clients []apiClient
	var procs []*process
	for _, id := range []string{"ada", "bayside", "city", "dunmore"} {
		h, err := home.Load(filepath.Join(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		tokens, err := node.ReadTokens(h)
		if err != nil {
			t.Fatal(err)
		}
		homes = append(homes, h)
		clients = append(clients, apiClient{base: "http://" + h.Config.API.Listen, tokens: tokens})
		procs = append(procs, startProcess(t, h))
	}
	for _, c := range clients {
		waitHealthy(t, c)
	}
	ada, bayside := clients[0], clients[1]

	pub, priv, _ := ed25519.GenerateKey(nil)
	pid := consent.PatientIDOf(pub)
	bundle, err := os.ReadFile("../../testdata/fhir/synthea/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json")
	if err != nil {
		t.Fatal(err)
	}
	status, body, hdr := ada.do(t, "admin", http.MethodPost, "/fhir/Bundle?patient="+string(pid), "application/fhir+json", bundle)
	if status != http.StatusCreated {
		t.Fatalf("ingest: %d %s", status, body)
	}
	recordPath := hdr.Get("Location")
	if !strings.HasPrefix(recordPath, "/records/") {
		t.Fatalf("ingest Location %q", recordPath)
	}

	// The patient consents through bayside's API: prepare, sign on "the device", submit.
	fhirConsent := fmt.Sprintf(`{"resourceType":"Consent","status":"active",
		"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
		"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
		"patient":{"reference":"Patient/%s"},
		"policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},
		"provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"Organization/bayside"}}],
		"purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}]}}`, pid)
	status, body, _ = bayside.do(t, "", http.MethodPost, "/fhir/Consent/$prepare", "application/fhir+json", []byte(fhirConsent))
	if status != http.StatusOK {
		t.Fatalf("$prepare: %d %s", status, body)
	}
	toSign := parameter(t, body, "body")
	params := fmt.Sprintf(`{"resourceType":"Parameters","parameter":[{"name":"resource","resource":%s},
		{"name":"body","valueBase64Binary":%q},{"name":"signature","valueBase64Binary":%q}]}`,
		fhirConsent, base64.StdEncoding.EncodeToString(toSign), base64.StdEncoding.EncodeToString(ed25519.Sign(priv, toSign)))
	status, body, _ = bayside.do(t, "", http.MethodPost, "/fhir/Consent", "application/fhir+json", []byte(params))
	if status != http.StatusCreated {
		t.Fatalf("consent: %d %s", status, body)
	}
	var created struct{ ID string }
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		t.Fatalf("consent answer: %v %s", err, body)
	}

	// A read right after a validator stopped may meet a 503 with Retry-After (a custodian
	// or the chain not current for a moment): it is tried again as a client told to
	// would, at most three times.
	read := func(c apiClient) {
		t.Helper()
		status, body, hdr := c.do(t, "clinician", http.MethodGet, recordPath+"?purpose=TREAT", "", nil)
		for try := 1; status == http.StatusServiceUnavailable && try < 3; try++ {
			wait, err := strconv.Atoi(hdr.Get("Retry-After"))
			if err != nil || wait <= 0 {
				t.Fatalf("read: 503 without a Retry-After: %s", body)
			}
			t.Logf("read: 503, retrying after %d s: %s", wait, body)
			time.Sleep(time.Duration(min(wait, 10)) * time.Second)
			status, body, hdr = c.do(t, "clinician", http.MethodGet, recordPath+"?purpose=TREAT", "", nil)
		}
		if status != http.StatusOK {
			t.Fatalf("read: %d %s", status, body) // an OperationOutcome
		}
		if !bytes.Equal(body, bundle) {
			t.Fatalf("read: %d, %d bytes that are not the Bundle ingested", status, len(body))
		}
	}
	read(bayside)

	// Stop a validator that holds no record: three of four keep the chain going.
	if err := procs[3].stop(t); err != nil {
		t.Fatalf("dunmore did not shut down cleanly on SIGTERM: %v", err)
	}
	read(bayside)

	// Restart it: it catches up with the others.
	procs[3] = startProcess(t, homes[3])
	waitHealthy(t, clients[3])
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	adaRPC, err := client.Dial(ctx, "http://"+strings.TrimPrefix(homes[0].Config.Chain.RPCListen, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	dunmoreRPC, err := client.Dial(ctx, "http://"+strings.TrimPrefix(homes[3].Config.Chain.RPCListen, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	target, err := adaRPC.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dunmoreRPC.WaitHeight(ctx, target); err != nil {
		t.Fatal(err)
	}
	read(bayside)

	// The patient revokes through the API, signing on "the device": the next read is
	// refused; a signature by someone else is refused and changes nothing.
	revokePath := "/fhir/Consent/" + created.ID + "/$revoke"
	status, body, _ = ada.do(t, "", http.MethodPost, revokePath+"-prepare?patient="+string(pid), "", nil)
	if status != http.StatusOK {
		t.Fatalf("$revoke-prepare: %d %s", status, body)
	}
	toSign = parameter(t, body, "body")
	_, mallory, _ := ed25519.GenerateKey(nil)
	signedBy := func(key ed25519.PrivateKey) []byte {
		return []byte(fmt.Sprintf(`{"resourceType":"Parameters","parameter":[{"name":"body","valueBase64Binary":%q},{"name":"signature","valueBase64Binary":%q}]}`,
			base64.StdEncoding.EncodeToString(toSign), base64.StdEncoding.EncodeToString(ed25519.Sign(key, toSign))))
	}
	if status, body, _ = ada.do(t, "", http.MethodPost, revokePath+"?patient="+string(pid), "application/fhir+json", signedBy(mallory)); status != http.StatusBadRequest {
		t.Fatalf("a revocation signed by someone else: %d %s", status, body)
	}
	read(bayside)
	if status, body, _ = ada.do(t, "", http.MethodPost, revokePath+"?patient="+string(pid), "application/fhir+json", signedBy(priv)); status != http.StatusOK {
		t.Fatalf("$revoke: %d %s", status, body)
	}
	status, body, _ = bayside.do(t, "clinician", http.MethodGet, recordPath+"?purpose=TREAT", "", nil)
	if status != http.StatusForbidden || !bytes.Contains(body, []byte(consent.ReasonRevoked)) {
		t.Fatalf("read after revocation: %d %s", status, body)
	}
}

// parameter returns a base64Binary parameter of a FHIR Parameters resource.
func parameter(t *testing.T, body []byte, name string) []byte {
	t.Helper()
	var p struct {
		Parameter []struct {
			Name              string `json:"name"`
			ValueBase64Binary string `json:"valueBase64Binary"`
		} `json:"parameter"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	for _, q := range p.Parameter {
		if q.Name == name {
			b, err := base64.StdEncoding.DecodeString(q.ValueBase64Binary)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no parameter %q in %s", name, body)
	return nil
}
