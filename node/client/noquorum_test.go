package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
)

// syncBuffer is a bytes.Buffer safe for the client's progress writes.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

// TestNoQuorum: with 2 of 4 validators down, Submit says within a bound (not after its
// caller's minute) that the chain is not making progress, how many validators it
// reaches, and that the tx may still commit; it shows progress meanwhile; TxStatus
// finds the tx pending, and committed once the validators are back.
func TestNoQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-validator chain")
	}
	h, err := home.Init(filepath.Join(t.TempDir(), "ada"), home.Config{Name: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	appState, _ := json.Marshal(consent.Genesis{Hospitals: []consent.Hospital{{ID: "ada", Name: "ada", Power: 1,
		Operator: h.Keys.Operator.Public(), Node: h.Keys.Node.Public(), Wrap: h.Keys.Wrap.Public()}}})
	// A heartbeat, as homes have by default: with none, a restarted proposer that
	// missed the pending tx (CometBFT drops txs gossiped to a peer still block-syncing)
	// can hold the chain until another tx reaches it; this test saw that under load.
	heartbeat := func(c *nodetest.ValidatorsConfig) { c.EmptyBlockInterval = 5 * time.Second }
	net := nodetest.New(t, 4, func(int) abci.StateMachine { return abci.NewConsentMachine() },
		nodetest.WithAppState(appState), nodetest.WithRPC(), heartbeat)
	net.Start()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := net.WaitHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, "http://"+strings.TrimPrefix(net.Configs[0].RPCListen, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	progress := &syncBuffer{mu: make(chan struct{}, 1)}
	c.Progress = progress
	net.StopNode(2)
	net.StopNode(3)

	patient, err := crypto.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	grant := consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: consent.PatientIDOf(patient.Public()),
		Policy: consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"ada"}}}}}}
	// (Not asserted: how many validators node 0 counts as reachable. In-process nodes
	// stopped by nodetest.Validators were seen to stay in node 0's peer list for seconds.)
	start := time.Now()
	submitCtx, cancelSubmit := context.WithTimeout(ctx, time.Minute)
	_, err = c.Submit(submitCtx, grant, patient)
	cancelSubmit()
	took := time.Since(start)
	var np *client.NoProgress
	if !errors.As(err, &np) || !errors.Is(err, client.ErrNoProgress) {
		t.Fatalf("submit without quorum: got %v after %s, want *client.NoProgress", err, took)
	}
	if took >= 20*time.Second {
		t.Errorf("the client said so after %s, want under 20 s", took)
	}
	msg := err.Error()
	for _, want := range []string{"not making progress", "of 4 validators reachable", "may still commit", "medledger tx status", string(np.ID)} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if !strings.Contains(progress.String(), "waiting for tx "+string(np.ID)) {
		t.Errorf("no progress line while waiting; got %q", progress.String())
	}
	if st, err := c.TxStatus(ctx, np.Hash); err != nil || st.State != client.TxPending {
		t.Fatalf("status of the stalled tx: %+v, %v; want pending", st, err)
	}
	unknown := bytes.Repeat([]byte{7}, 32)
	if st, err := c.TxStatus(ctx, unknown); err != nil || st.State != client.TxUnknown {
		t.Fatalf("status of a tx never sent: %+v, %v; want unknown", st, err)
	}

	net.RestartNode(2)
	net.RestartNode(3)
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := c.TxStatus(ctx, np.Hash)
		if err == nil && st.State == client.TxCommitted {
			if st.Code != 0 {
				t.Fatalf("the tx committed rejected: %+v", st)
			}
			t.Logf("no-progress reported after %s; committed at height %d after the validators returned", took.Round(time.Millisecond), st.Height)
			break
		}
		if time.Now().After(deadline) {
			for i, n := range net.Nodes {
				if n != nil {
					t.Logf("node %d: height %d, catching up %v", i, n.Height(), n.CatchingUp())
				}
			}
			t.Fatalf("the tx did not commit within 90 s of quorum's return: %+v, %v", st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
