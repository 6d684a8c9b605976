package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
)

// TestChainScripts runs the CLI scripts in testdata/chain against a real 4-validator
// consent chain on 127.0.0.1 whose genesis registers three hospitals with homes. Each
// script starts with a patient key in ./alice and a record of alice's registered by
// ada: $REC; $PATIENT is alice's ID. $ADA, $BAYSIDE, $CITY are the hospitals' homes;
// $MEDLEDGER_NODE a node; $GENESIS the chain's genesis.json.
func TestChainScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-validator chain")
	}
	homes := map[string]*home.Home{}
	var g consent.Genesis
	for _, id := range []string{"ada", "bayside", "city"} {
		h, err := home.Init(filepath.Join(t.TempDir(), id), home.Config{Name: id})
		if err != nil {
			t.Fatal(err)
		}
		homes[id] = h
		g.Hospitals = append(g.Hospitals, consent.Hospital{ID: consent.HospitalID(id), Name: id, Power: 1,
			Operator: h.Keys.Operator.Public(), Node: h.Keys.Node.Public(), Wrap: h.Keys.Wrap.Public()})
	}
	appState, _ := json.Marshal(g)
	net := nodetest.New(t, 4, func(int) chain.StateMachine { return node.NewConsentMachine() },
		nodetest.WithAppState(appState), nodetest.WithRPC())
	net.Start()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := net.WaitHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	rpc := "http://" + strings.TrimPrefix(net.Configs[1].RPCListen, "tcp://")
	genesis := filepath.Join(t.TempDir(), "genesis.json")
	if err := net.Genesis.SaveAs(genesis); err != nil {
		t.Fatal(err)
	}
	cl, err := client.Dial(ctx, rpc)
	if err != nil {
		t.Fatal(err)
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
			env.Setenv("REC", id.String())
			env.Setenv("PATIENT", string(consent.PatientIDOf(patient.Public())))
			env.Setenv("GENESIS", genesis)
			env.Setenv("ADA", homes["ada"].Dir)
			env.Setenv("BAYSIDE", homes["bayside"].Dir)
			env.Setenv("CITY", homes["city"].Dir)
			env.Setenv("MEDLEDGER_NODE", rpc)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"capture": capture,
			"oneline": oneline,
			"sleep":   sleep,
		},
	})
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
