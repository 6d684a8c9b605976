package chainbench

import (
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/medledger/medledger/node/chain/abci"
)

// BenchmarkAppBlock is one validator's share of the chain benchmark's work, without
// CometBFT: CheckTx of each tx, then FinalizeBlock and Commit of blocks of 1,000 of the
// workload's txs, on the app store on disk. It reports the app's CPU time per tx, the
// part of the chain's cost that the consent machine and its adapter decide.
func BenchmarkAppBlock(b *testing.B) {
	const perBlock = 1000
	w := newConsentLoad(defaultPatients)
	appState, err := w.appState()
	if err != nil {
		b.Fatal(err)
	}
	w.chainID = "bench"
	app, err := abci.NewApp(b.TempDir(), abci.NewConsentMachine(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	ctx := b.Context()
	t0 := time.Unix(1_800_000_000, 0)
	if _, err := app.InitChain(ctx, &abcitypes.RequestInitChain{ChainId: w.chainID, InitialHeight: 1, Time: t0, AppStateBytes: appState}); err != nil {
		b.Fatal(err)
	}
	height := int64(0)
	block := func(txs [][]byte) {
		for _, tx := range txs {
			res, err := app.CheckTx(ctx, &abcitypes.RequestCheckTx{Tx: tx})
			if err != nil || res.Code != 0 {
				b.Fatalf("CheckTx: code %d %s, %v", res.Code, res.Log, err)
			}
		}
		height++
		res, err := app.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{Height: height, Time: t0.Add(time.Duration(height) * time.Second), Txs: txs})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res.TxResults {
			if r.Code != 0 {
				b.Fatalf("height %d: code %d %s", height, r.Code, r.Log)
			}
		}
		if _, err := app.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
			b.Fatal(err)
		}
	}
	regs := make([][]byte, defaultPatients)
	parallel(defaultPatients, func(i int) { regs[i] = w.register(i, 0) })
	for i := 0; i < len(regs); i += perBlock {
		block(regs[i:min(i+perBlock, len(regs))])
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		txs := make([][]byte, perBlock)
		for i := range txs {
			txs[i] = w.tx(height)
		}
		b.StartTimer()
		block(txs)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*perBlock), "µs/tx")
}
