package main

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/home"
)

// TestFailedNodeExits: a `medledger start` process whose validator can no longer write
// its sign state (as on a full or failing disk: CometBFT's consensus stops while the
// process, RPC and API carry on) exits by itself with status 1 and the reason in one
// line, for its supervisor to restart it. No fault hook: the file the validator
// rewrites at every signature is replaced by a directory, and a tx makes it sign.
func TestFailedNodeExits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node process")
	}
	t.Parallel()
	dir := t.TempDir()
	testnet(t, dir, 1)
	h, err := home.Load(filepath.Join(dir, "ada"))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := node.ReadTokens(h)
	if err != nil {
		t.Fatal(err)
	}
	c := apiClient{base: "http://" + h.Config.API.Listen, tokens: tokens}
	p := startProcess(t, h)
	waitHealthy(t, c)

	state := filepath.Join(h.Path(home.ChainDir), "data", "priv_validator_state.json")
	for try := 0; ; try++ { // the validator may rewrite the file meanwhile
		if err := os.Remove(state); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if err = os.Mkdir(state, 0o700); err == nil {
			break
		}
		if try == 100 {
			t.Fatal(err)
		}
	}
	// An ingest submits a tx: the validator signs a proposal for it and fails. The
	// request itself ends when the process does.
	faultAt := time.Now()
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, c.base+"/fhir/Bundle?patient="+string(consent.PatientIDOf(make([]byte, 32))),
			bytes.NewReader(mustRead(t, "../../testdata/fhir/synthea/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json")))
		req.Header.Set("Authorization", "Bearer "+c.tokens["admin"])
		req.Header.Set("Content-Type", "application/fhir+json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()

	var exitErr *exec.ExitError
	select {
	case err := <-p.done:
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
			t.Fatalf("the failed node exited with %v; want status 1", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the failed node did not exit within 60 s")
	}
	t.Logf("exited %s after the fault", time.Since(faultAt).Round(time.Millisecond))
	p.log.Close()
	log, err := os.ReadFile(filepath.Join(h.Dir, "process.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The node's own JSON logs go to the same file (a request cut at the exit may log
	// after the line): find the command's one line.
	var reason string
	for _, line := range strings.Split(string(log), "\n") {
		if strings.HasPrefix(line, "medledger: ") {
			reason = line
		}
	}
	if !strings.HasPrefix(reason, "medledger: node: failed: chain: consensus failure: ") {
		t.Fatalf("the command's error line: %q; want the reason for the failure", reason)
	}
	t.Logf("its error line: %s", reason)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
