package main

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
)

// TestChainScripts runs the CLI scripts in testdata/chain against four real hospital
// nodes on 127.0.0.1 (nodetest.Consortium: CometBFT validators, libp2p hosts, stores, the
// API). Each script starts with a patient key in ./alice and a record of alice's
// registered by ada: $REC; $PATIENT is alice's ID; bundle.json is a Synthea Bundle and
// invalid.json an invalid one. $ADA, $BAYSIDE, $CITY are the
// hospitals' homes; $MEDLEDGER_NODE is bayside's RPC, $MEDLEDGER_API its API and
// $MEDLEDGER_TOKEN its privacy officer's token ($CLINICIAN_TOKEN its clinician's,
// $TOKENS its keys/api-tokens.json);
// $GENESIS the chain's genesis.json.
func TestChainScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four hospital nodes")
	}
	t.Parallel()
	net := nodetest.StartConsortium(t, 4)
	homes := map[string]*home.Home{}
	for _, h := range net.Homes {
		homes[h.Config.ID] = h
	}
	const via = 1 // bayside
	rpc := net.RPC(via)
	tokens, err := node.ReadTokens(net.Homes[via])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, rpc)
	if err != nil {
		t.Fatal(err)
	}
	// `hospital leave` checks the validators bayside reaches: wait until it reaches all.
	for r, err := cl.Reachable(ctx); err != nil || r.Reachable < 4; r, err = cl.Reachable(ctx) {
		if ctx.Err() != nil {
			t.Fatalf("bayside reaches %+v validators (%v), want 4", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	testscript.Run(t, testscript.Params{
		Dir: "testdata/chain",
		Setup: func(env *testscript.Env) error {
			patient, err := crypto.CreatePatientKey(filepath.Join(env.WorkDir, "alice"))
			if err != nil {
				return err
			}
			id, err := crypto.NewRecordID()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err = cl.Submit(ctx, consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
				Record: consent.RecordID(id.String()), CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm",
				Patient: consent.PatientIDOf(patient.Public()), Classes: []consent.DataClass{"Observation"},
				Custodians: []consent.HospitalID{"ada"}}}, homes["ada"].Keys.Operator)
			if err != nil {
				return err
			}
			if err := copySamples(env.WorkDir); err != nil {
				return err
			}
			env.Setenv("REC", id.String())
			env.Setenv("PATIENT", string(consent.PatientIDOf(patient.Public())))
			env.Setenv("GENESIS", net.Homes[via].Path(home.GenesisFile))
			env.Setenv("ADA", homes["ada"].Dir)
			env.Setenv("BAYSIDE", homes["bayside"].Dir)
			env.Setenv("CITY", homes["city"].Dir)
			env.Setenv("MEDLEDGER_NODE", rpc)
			env.Setenv("MEDLEDGER_API", net.Nodes[via].APIURL())
			env.Setenv("MEDLEDGER_TOKEN", tokens["privacy-officer"])
			env.Setenv("TOKENS", net.Homes[via].Path(home.TokensFile))
			env.Setenv("CLINICIAN_TOKEN", tokens["clinician"])
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"capture": capture,
			"oneline": oneline,
			"sleep":   sleep,
			"records": func(ts *testscript.TestScript, neg bool, args []string) {
				countRecords(ts, neg, args, net.Nodes[via])
			},
		},
	})
}

// countRecords PATIENT N asserts that nd's committed state holds exactly N records of
// PATIENT.
func countRecords(ts *testscript.TestScript, neg bool, args []string, nd *node.Node) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: records PATIENT N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	recs, err := nd.Records(context.Background(), consent.PatientID(args[0]))
	ts.Check(err)
	if len(recs) != want {
		ts.Fatalf("patient %s has %d records, want %d", consent.Truncate(args[0], 12), len(recs), want)
	}
}

// sleep DURATION pauses the script (e.g. while a background command starts).
func sleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		ts.Fatalf("sleep: %v", err)
	}
	time.Sleep(d)
}
