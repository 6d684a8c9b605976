package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/nodetest"
)

// consortium is a 4-validator consent chain on 127.0.0.1 whose genesis registers
// three hospitals with real Tink keys.
type consortium struct {
	net       *nodetest.Net
	hospitals map[consent.HospitalID]*crypto.Hospital
	clients   []*client.Client
}

func newConsortium(t *testing.T) *consortium {
	t.Helper()
	c := &consortium{hospitals: map[consent.HospitalID]*crypto.Hospital{}}
	var g consent.Genesis
	for _, id := range []consent.HospitalID{"ada", "bayside", "city"} {
		h, err := crypto.GenerateHospital()
		if err != nil {
			t.Fatal(err)
		}
		c.hospitals[id] = h
		g.Hospitals = append(g.Hospitals, consent.Hospital{ID: id, Name: "Hospital " + string(id), Power: 1,
			Operator: h.Operator.Public(), Node: h.Node.Public(), Wrap: h.Wrap.Public()})
	}
	appState, _ := json.Marshal(g)
	c.net = nodetest.New(t, 4, func(int) abci.StateMachine { return abci.NewConsentMachine() },
		nodetest.WithAppState(appState), nodetest.WithRPC())
	c.net.Start()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.net.WaitHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for i := range c.net.Configs {
		c.clients = append(c.clients, c.dial(t, i))
	}
	return c
}

func (c *consortium) dial(t *testing.T, i int) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, "http://"+strings.TrimPrefix(c.net.Configs[i].RPCListen, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (c *consortium) submit(t *testing.T, via int, body consent.Body, signer consent.Signer) (*consent.Committed, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	return c.clients[via%len(c.clients)].Submit(ctx, body, signer)
}

func (c *consortium) mustSubmit(t *testing.T, via int, body consent.Body, signer consent.Signer) *consent.Committed {
	t.Helper()
	res, err := c.submit(t, via, body, signer)
	if err != nil {
		t.Fatalf("%s: %v", body.Kind, err)
	}
	return res
}

func (c *consortium) request(t *testing.T, via int, requester consent.HospitalID, rec consent.RecordID) *consent.GrantInfo {
	t.Helper()
	res := c.mustSubmit(t, via, consent.Body{Kind: consent.KindRequest, Request: &consent.Request{
		Requester: requester, Record: rec, Purpose: "TREAT"}}, c.hospitals[requester].Operator)
	// Read the decision from another node: it may be a block behind the one that
	// reported the commit, so wait for its application to reach that height.
	// (The RPC does not answer /grant/, which is role-scoped: the test reads the other
	// node's state in process, as its API would.)
	o := (via + 1) % len(c.clients)
	if err := c.clients[o].WaitHeight(t.Context(), res.Height); err != nil {
		t.Fatal(err)
	}
	got, _, err := c.net.Nodes[o].Query("/grant/"+string(res.ID), nil)
	if err != nil || got.Code != 0 {
		t.Fatalf("grant %s at node %d: code %d %s, %v", res.ID, o, got.Code, got.Log, err)
	}
	var d consent.GrantInfo
	if err := json.Unmarshal(got.Value, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func wantRejected(t *testing.T, err error, code consent.Code) {
	t.Helper()
	var rej *client.Rejected
	if !errors.As(err, &rej) || rej.Code != code {
		t.Fatalf("got %v, want a rejection with code %s", err, code)
	}
}

// TestConsentOnChain drives the consent story through four real CometBFT validators.
func TestConsentOnChain(t *testing.T) {
	t.Parallel()
	c := newConsortium(t)
	patient, err := crypto.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	pid := consent.PatientIDOf(patient.Public())
	recID, _ := crypto.NewRecordID()
	rec := consent.RecordID(recID.String())
	c.mustSubmit(t, 0, consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
		Record: rec, CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm", Patient: pid,
		Classes: []consent.DataClass{"Condition", "Observation"}, Custodians: []consent.HospitalID{"ada"}}}, c.hospitals["ada"].Operator)

	if d := c.request(t, 1, "bayside", rec); d.Granted || d.Reason != consent.ReasonNoConsent {
		t.Fatalf("without consent: %+v", d.Decision)
	}
	grant := c.mustSubmit(t, 2, consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: pid, Policy: consent.Policy{
		Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"bayside"}, Purposes: []consent.Purpose{"TREAT"}}}}}}, patient)
	d := c.request(t, 3, "bayside", rec)
	if !d.Granted || d.Consent != consent.ConsentID(grant.ID) {
		t.Fatalf("with consent: %+v", d.Decision)
	}
	if d := c.request(t, 0, "city", rec); d.Granted {
		t.Fatal("a hospital the consent does not name was granted")
	}

	// Failure cases, each rejected with its code and changing nothing.
	t.Run("rejections", func(t *testing.T) {
		_, err := c.submit(t, 1, consent.Body{Kind: consent.KindRequest, Request: &consent.Request{
			Requester: "bayside", Record: rec, Purpose: "TREAT"}}, c.hospitals["city"].Operator)
		wantRejected(t, err, consent.CodeUnauthorized)
		mallory, _ := crypto.NewSigningKey()
		_, err = c.submit(t, 2, consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: pid, Policy: consent.Policy{Base: consent.Permit}}}, mallory)
		wantRejected(t, err, consent.CodeUnauthorized)
		_, err = c.submit(t, 0, consent.Body{Kind: consent.KindRequest, Request: &consent.Request{
			Requester: "nowhere", Record: rec, Purpose: "TREAT"}}, mallory)
		wantRejected(t, err, consent.CodeUnknownHospital)

		// The exact bytes of a committed tx, replayed.
		body, _ := consent.NewBody(c.clients[0].ChainID(), consent.Height(c.net.Nodes[0].Height()+50))
		body.Kind, body.Request = consent.KindRequest, &consent.Request{Requester: "bayside", Record: rec, Purpose: "TREAT"}
		tx, _ := consent.Sign(body, c.hospitals["bayside"].Operator)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if _, err := c.clients[0].SubmitTx(ctx, tx); err != nil {
			t.Fatal(err)
		}
		_, err = c.clients[1].SubmitTx(ctx, tx)
		if err == nil {
			t.Fatal("a replayed tx was accepted")
		}

		other := body
		other.ChainID, other.Nonce = "another-chain", bytes.Repeat([]byte{7}, 16)
		tx, _ = consent.Sign(other, c.hospitals["bayside"].Operator)
		_, err = c.clients[2].SubmitTx(ctx, tx)
		wantRejected(t, err, consent.CodeChainID)

		expired := body
		expired.Nonce, expired.Expiry = bytes.Repeat([]byte{8}, 16), 1
		tx, _ = consent.Sign(expired, c.hospitals["bayside"].Operator)
		_, err = c.clients[3].SubmitTx(ctx, tx)
		wantRejected(t, err, consent.CodeExpired)

		_, err = c.clients[3].SubmitTx(ctx, []byte("not a tx"))
		wantRejected(t, err, consent.CodeDecode)
	})

	// Revocation takes effect for the very next request.
	c.mustSubmit(t, 1, consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: consent.ConsentID(grant.ID)}}, patient)
	if d := c.request(t, 2, "bayside", rec); d.Granted || d.Reason != consent.ReasonRevoked {
		t.Fatalf("after revocation: %+v", d.Decision)
	}

	// A consent whose period ends in a few seconds of block time.
	end := time.Now().Add(3 * time.Second).Unix()
	c.mustSubmit(t, 3, consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: pid, Policy: consent.Policy{
		Base: consent.Deny, End: end, Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"bayside"}}}}}}, patient)
	if d := c.request(t, 0, "bayside", rec); !d.Granted {
		t.Fatalf("within the period: %+v", d.Decision)
	}
	time.Sleep(time.Until(time.Unix(end+2, 0)))
	if d := c.request(t, 1, "bayside", rec); d.Granted || d.Reason != consent.ReasonExpired {
		t.Fatalf("after the period: %+v", d.Decision)
	}

	// A node that has just restarted catches up by block sync for a few seconds, and
	// refuses txs meanwhile: the client waits for it.
	// (A new client: CometBFT's RPC server, stopped in process, keeps serving the
	// connections it had, from the stopped node.)
	c.net.RestartNode(2)
	c.clients[2] = c.dial(t, 2)
	// Catching up usually takes 1-5 s, but can take up to about 100 s when a peer still
	// holds a connection from before the restart (see node/auditor's replay test).
	restarted := time.Now()
	rctx, rcancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer rcancel()
	if _, err := c.clients[2].Submit(rctx, consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: pid, Policy: consent.Policy{
		Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"city"}}}}}}, patient); err != nil {
		t.Fatalf("through the restarted node: %v", err)
	}
	t.Logf("committed through the restarted node %v after its restart", time.Since(restarted).Round(time.Millisecond))

	// Every validator holds the same state.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	h := c.net.Nodes[0].Height()
	if err := c.net.WaitHeight(ctx, h+1); err != nil {
		t.Fatal(err)
	}
	want, err := c.net.Nodes[0].AppHashAt(h)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range c.net.Nodes {
		got, err := n.AppHashAt(h)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("node %d app hash at %d differs (err %v)", i, h, err)
		}
	}
}
