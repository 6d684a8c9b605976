package nodetest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/home"
)

// Consortium is a running consortium of real hospital nodes (node.Node: CometBFT
// validators, libp2p hosts on 127.0.0.1, LevelDB stores, Tink keys, the API) in a
// test's process, from node.Testnet homes in the test's temporary directory (or, for
// Shared, a temporary directory of its own).
type Consortium struct {
	t     testing.TB
	Homes []*home.Home
	Nodes []*node.Node // nil while stopped
	Logs  *SyncBuffer  // every node's JSON logs
	// Configure, if set, adjusts hospital i's node.Config before each start (fault
	// hooks).
	Configure func(i int, c *node.Config)
	// shared marks one of Shared's: its nodes neither stop nor restart.
	shared bool
}

// StartConsortium creates n hospitals' homes and starts them; they stop with the test.
func StartConsortium(t testing.TB, n int) *Consortium {
	t.Helper()
	return StartConsortiumWith(t, n, nil)
}

// StartConsortiumWith is StartConsortium with configure adjusting hospital i's
// node.Config before each of its starts (see Consortium.Configure).
func StartConsortiumWith(t testing.TB, n int, configure func(i int, c *node.Config)) *Consortium {
	t.Helper()
	return StartTestnet(t, node.TestnetConfig{Hospitals: n}, configure)
}

// StartTestnet is StartConsortiumWith for a testnet configured as cfg (its Dir is the
// test's temporary directory): threshold custody, for one.
func StartTestnet(t testing.TB, cfg node.TestnetConfig, configure func(i int, c *node.Config)) *Consortium {
	t.Helper()
	cfg.Dir = t.TempDir()
	net, err := newConsortium(cfg, configure)
	if err != nil {
		t.Fatal(err)
	}
	net.t = t
	t.Cleanup(net.Stop)
	t.Cleanup(net.reportOnFailure) // runs first: the logs as the failure left them
	for i := range net.Homes {
		net.StartNode(i)
	}
	net.WaitHeight(2)
	return net
}

// newConsortium creates the homes of a testnet configured as cfg; no node runs yet.
func newConsortium(cfg node.TestnetConfig, configure func(i int, c *node.Config)) (*Consortium, error) {
	homes, err := node.Testnet(cfg)
	if err != nil {
		return nil, err
	}
	return &Consortium{Homes: homes, Nodes: make([]*node.Node, len(homes)), Logs: &SyncBuffer{}, Configure: configure}, nil
}

// StartNode (re)starts hospital i, its API on a free loopback port.
func (n *Consortium) StartNode(i int) {
	n.t.Helper()
	if n.shared {
		n.t.Fatal("nodetest: the nodes of a shared consortium do not restart")
	}
	if err := n.startNode(n.t.Context(), i); err != nil {
		n.t.Fatal(err)
	}
}

func (n *Consortium) startNode(ctx context.Context, i int) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(n.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := node.Config{Home: n.Homes[i], Logger: logger, APIListener: l}
	if n.Configure != nil {
		n.Configure(i, &cfg)
	}
	nd, err := node.Start(ctx, cfg)
	if err != nil {
		return err
	}
	n.Nodes[i] = nd
	return nil
}

// StopNode stops hospital i (its home stays for StartNode).
func (n *Consortium) StopNode(i int) {
	if n.shared {
		n.t.Fatal("nodetest: the nodes of a shared consortium do not stop")
	}
	if err := n.stopNode(i); err != nil {
		n.t.Error(err)
	}
}

func (n *Consortium) stopNode(i int) error {
	if n.Nodes[i] == nil {
		return nil
	}
	err := n.Nodes[i].Close()
	n.Nodes[i] = nil
	if err != nil {
		return fmt.Errorf("close %d: %w", i, err)
	}
	return nil
}

// Stop stops every node.
func (n *Consortium) Stop() {
	for i := range n.Nodes {
		n.StopNode(i)
	}
}

// WaitHeight waits until every running node has committed height h and takes part in
// consensus (a node still catching up by block sync refuses txs).
func (n *Consortium) WaitHeight(h int64) {
	n.t.Helper()
	if err := n.waitHeight(h); err != nil {
		n.t.Fatal(err)
	}
}

func (n *Consortium) waitHeight(h int64) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, nd := range n.Nodes {
		for nd != nil && (nd.Chain().Height() < h || nd.Chain().CatchingUp()) {
			if time.Now().After(deadline) {
				return fmt.Errorf("nodetest: height %d not reached, or a node still catching up", h)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// Ctx is the test's context with a minute's deadline.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// AsPatient signs body with the patient's key and submits it through nd.
func AsPatient(t testing.TB, nd *node.Node, patient *crypto.SigningKey, body consent.Body) *api.Committed {
	t.Helper()
	c, err := nd.SubmitTx(Ctx(t), Signed(t, nd, body, patient))
	if err != nil {
		t.Fatalf("%s: %v", body.Kind, err)
	}
	return c
}

// Signed is body (Kind and payload set) for nd's chain, signed by key, as tx bytes.
func Signed(t testing.TB, nd *node.Node, body consent.Body, key *crypto.SigningKey) []byte {
	t.Helper()
	b, err := nd.NewBody(Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	body.ChainID, body.Nonce, body.Expiry = b.ChainID, b.Nonce, b.Expiry
	tx, err := consent.Sign(body, key)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// Permit is a consent permitting the hospitals, for any purpose.
func Permit(patient consent.PatientID, hospitals ...consent.HospitalID) consent.Body {
	return consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: patient, Policy: consent.Policy{
		Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Actors: hospitals}}}}}
}

// Sample is a Synthea Bundle from the repository's testdata.
func Sample(t testing.TB) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "testdata", "fhir", "synthea",
		"Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// NewPatient is a fresh patient key and its ID.
func NewPatient(t testing.TB) (*crypto.SigningKey, consent.PatientID) {
	t.Helper()
	k, err := crypto.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return k, consent.PatientIDOf(k.Public())
}

// RPC is hospital i's CometBFT RPC address (http://host:port).
func (n *Consortium) RPC(i int) string {
	return "http://" + strings.TrimPrefix(n.Homes[i].Config.Chain.RPCListen, "tcp://")
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// maxReportedLines bounds the log lines a failed test reports.
const maxReportedLines = 60

// reportOnFailure logs, when the test failed, the nodes' last warnings and errors but
// CometBFT's (the logs carry no PHI), so that a failure seen once in CI says what the
// nodes saw.
func (n *Consortium) reportOnFailure() {
	if !n.t.Failed() {
		return
	}
	var lines []string
	for _, l := range strings.Split(n.Logs.String(), "\n") {
		ours := !strings.Contains(l, `"component":"chain"`) // CometBFT's own are many and routine
		if ours && (strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`)) {
			lines = append(lines, l)
		}
	}
	if len(lines) > maxReportedLines {
		lines = lines[len(lines)-maxReportedLines:]
	}
	n.t.Logf("the nodes' last %d warnings and errors:\n%s", len(lines), strings.Join(lines, "\n"))
}
