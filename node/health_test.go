package node_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
	"github.com/medledger/medledger/node/p2p"
)

// breakSignState makes h's validator unable to save its sign state, as a full or
// failing disk would: the file becomes a directory, so CometBFT's atomic rename over
// it fails (for root too) at the next vote or proposal the validator signs.
func breakSignState(t *testing.T, h *home.Home) {
	t.Helper()
	path := filepath.Join(h.Path(home.ChainDir), "data", "priv_validator_state.json")
	// The validator rewrites the file at every signature: retry until the directory
	// is in place.
	for try := 0; ; try++ {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		err := os.Mkdir(path, 0o700)
		if err == nil {
			return
		}
		if try == 100 {
			t.Fatalf("sign state %s: %v", path, err)
		}
	}
}

// healthz is GET /healthz of a node's API.
func healthz(t *testing.T, n *node.Node) (int, api.Health) {
	t.Helper()
	resp, err := http.Get(n.APIURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h api.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, h
}

// waitHealthy waits until n says ok (bounded).
func waitHealthy(t *testing.T, n *node.Node, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		h := n.Health()
		if h.Status == api.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within %s: %+v", n.ID(), within, h)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStorageFailureFailStops: a custodian whose validator cannot write its sign
// state (its consensus stops, as when its disk fills) fails within a bounded time:
// Done fires with the reason, /healthz answers 503 saying why, the metrics say so, it
// releases no key for a grant that holds and serves no record; the other three keep
// the chain going.
func TestStorageFailureFailStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	hn := nodetest.StartConsortium(t, 4)
	ada, bayside, city := hn.Nodes[0], hn.Nodes[1], hn.Nodes[2]
	for _, n := range hn.Nodes {
		waitHealthy(t, n, time.Minute)
	}
	if err := ada.Serving(); err != nil {
		t.Fatalf("a healthy node: Serving = %v", err)
	}
	patient, pid := nodetest.NewPatient(t)
	rec, err := ada.Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	nodetest.AsPatient(t, bayside, patient, nodetest.Permit(pid, "bayside"))
	acc, err := bayside.Read(nodetest.Ctx(t), rec.ID, "TREAT")
	if err != nil {
		t.Fatalf("read before the fault: %v", err)
	}

	breakSignState(t, hn.Homes[0])
	faultAt := time.Now()
	select {
	case <-ada.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("no failure within 30 s of the fault: %+v", ada.Health())
	}
	detected := time.Since(faultAt)
	t.Logf("failure detected %s after the sign state became unwritable", detected.Round(time.Millisecond))
	if err := ada.Err(); !errors.Is(err, node.ErrFailed) || !errors.Is(err, chain.ErrConsensusFailure) {
		t.Fatalf("Err = %v; want ErrFailed naming the consensus failure", err)
	}
	if err := ada.Serving(); !errors.Is(err, node.ErrFailed) {
		t.Fatalf("Serving = %v, want ErrFailed", err)
	}

	status, h := healthz(t, ada)
	if status != http.StatusServiceUnavailable || h.Status != api.StatusFailed || !strings.Contains(h.Reason, "consensus failure") ||
		h.Hospital != "ada" || h.Height == 0 || h.Peers == 0 {
		t.Fatalf("/healthz of the failed node: %d %+v", status, h)
	}
	metrics := getText(t, ada.APIURL()+"/metrics")
	for _, want := range []string{"medledger_failed 1", "medledger_healthy 0", "medledger_chain_height ", "medledger_chain_peers ", "medledger_chain_latest_block_age_seconds "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// The grant holds on the chain, but the failed custodian releases nothing.
	asked := time.Now()
	resp, err := bayside.Host().RequestKey(nodetest.Ctx(t), ada.Host().ID(), p2p.ReleaseRequest{Grant: string(acc.Decision.ID), Height: int64(acc.Decision.Height)})
	if err != nil {
		t.Fatalf("key request: %v", err)
	}
	if resp.Code == 0 || len(resp.Wrapped) != 0 {
		t.Fatalf("the failed custodian answered %+v; want a refusal", resp)
	}
	t.Logf("the failed custodian refused in %s: %s (%s)", time.Since(asked).Round(time.Millisecond), consent.Code(resp.Code), resp.Reason)
	if _, err := bayside.Read(nodetest.Ctx(t), rec.ID, "TREAT"); err == nil {
		t.Fatal("a read got the key of a record whose only custodian has failed")
	}

	// The other three go on without it.
	stuck := ada.Chain().Height()
	nodetest.AsPatient(t, city, patient, nodetest.Permit(pid, "city"))
	for _, n := range hn.Nodes[1:] {
		if got := n.Chain().Height(); got <= stuck {
			t.Errorf("%s at height %d, not past the failed node's %d", n.ID(), got, stuck)
		}
		if err := n.Err(); err != nil {
			t.Errorf("%s failed too: %v", n.ID(), err)
		}
	}
	if got := ada.Chain().Height(); got != stuck {
		t.Errorf("the failed node moved from height %d to %d", stuck, got)
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRestartCatchesUpUnavailable: a validator restarted after the chain moved on is
// unavailable (503, releases no key) while it catches up, never failed, then healthy.
func TestRestartCatchesUpUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	hn := nodetest.StartConsortium(t, 4)
	for _, n := range hn.Nodes {
		waitHealthy(t, n, time.Minute)
	}
	hn.StopNode(3)
	from := hn.Nodes[0].Chain().Height()
	deadline := time.Now().Add(time.Minute)
	for hn.Nodes[0].Chain().Height() < from+30 {
		if time.Now().After(deadline) {
			t.Fatalf("the chain did not advance 30 blocks in a minute without dunmore")
		}
		time.Sleep(50 * time.Millisecond)
	}

	hn.StartNode(3)
	dunmore := hn.Nodes[3]
	started := time.Now()
	status, h := healthz(t, dunmore)
	if status != http.StatusServiceUnavailable || h.Status != api.StatusUnavailable {
		t.Fatalf("/healthz right after the restart: %d %+v; want 503 unavailable", status, h)
	}
	if err := dunmore.Serving(); !errors.Is(err, node.ErrUnavailable) {
		t.Fatalf("Serving right after the restart = %v, want ErrUnavailable", err)
	}
	reasons := map[string]bool{}
	for {
		h := dunmore.Health()
		if h.Status == api.StatusOK {
			break
		}
		if h.Status == api.StatusFailed {
			t.Fatalf("a restarted node catching up failed: %+v", h)
		}
		reasons[strings.SplitN(h.Reason, " (", 2)[0]] = true
		if time.Since(started) > time.Minute {
			t.Fatalf("not healthy within a minute of the restart: %+v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("healthy %s after the restart; unavailable meanwhile for: %v", time.Since(started).Round(time.Millisecond), reasons)
	// /healthz says so too. Under load a node just caught up may fall two blocks
	// behind its peers for a moment, which is unavailable again (fail closed), so the
	// endpoint is asked until it answers 200, within a bound, and never says failed.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, h := healthz(t, dunmore)
		if status == http.StatusOK && h.Status == api.StatusOK && !h.CatchingUp {
			break
		}
		if h.Status == api.StatusFailed || time.Now().After(deadline) {
			t.Fatalf("/healthz once caught up: %d %+v", status, h)
		}
	}
	if err := dunmore.Err(); err != nil {
		t.Fatalf("Err after catching up: %v", err)
	}
}
