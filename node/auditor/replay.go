package auditor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/client"
)

// ReplayReport is what a replay checked.
type ReplayReport struct {
	Heights int64                 `json:"heights"` // blocks replayed (1..Heights)
	Txs     int                   `json:"txs"`
	Log     consent.LogCommitment `json:"log"`    // the access log after the last height
	Events  uint64                `json:"events"` // served events compared with the replay's (0 without ReplayConfig.Entries)
}

// Problem is the first inconsistency a replay found.
type Problem struct {
	Height int64  // 0 when it is not about a block
	What   string // one line
}

func (p *Problem) Error() string {
	if p.Height == 0 {
		return "auditor: replay: " + p.What
	}
	return fmt.Sprintf("auditor: replay: height %d: %s", p.Height, p.What)
}

// ReplayConfig configures a replay.
type ReplayConfig struct {
	To       int64     // the last height to replay (default: the latest the node can prove)
	Progress io.Writer // optional: a line every 100 heights
	// Entries, if set, serves the node's access-log events (client.API.LogEntry), each
	// compared with the replay's; without it only the log's size and root are.
	Entries Entries
}

// Replay replays the chain the node behind c serves, from gen, trusting only gen's
// validator set: every block must be the one the validators signed, re-executing
// every block's txs in a fresh consent machine must give the app hash the validators
// signed for it, and the access log the node serves must be the one the replay built:
// its root (public, over the RPC) and, given cfg.Entries (role-scoped: the node's API
// with a privacy officer's token), event for event. It returns a *Problem for the
// first inconsistency.
func Replay(ctx context.Context, c *client.Client, gen *cmttypes.GenesisDoc, cfg ReplayConfig) (*ReplayReport, error) {
	v, err := NewVerifier(c, gen)
	if err != nil {
		return nil, err
	}
	to := cfg.To
	latest, err := v.LatestVerifiable(ctx)
	if err != nil {
		return nil, err
	}
	if to <= 0 || to > latest {
		to = latest
	}
	if to < gen.InitialHeight {
		return nil, fmt.Errorf("auditor: replay: the chain has no verifiable block yet (latest %d)", latest)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "medledger-replay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	app, err := abci.NewApp(dir, abci.NewConsentMachine(), nil)
	if err != nil {
		return nil, err
	}
	defer app.Close()
	vals := make([]abcitypes.ValidatorUpdate, len(gen.Validators))
	for i, gv := range gen.Validators {
		vals[i] = abcitypes.Ed25519ValidatorUpdate(gv.PubKey.Bytes(), gv.Power)
	}
	if _, err := app.InitChain(ctx, &abcitypes.RequestInitChain{ChainId: gen.ChainID, InitialHeight: gen.InitialHeight,
		Time: gen.GenesisTime, AppStateBytes: gen.AppState, Validators: vals}); err != nil {
		return nil, fmt.Errorf("auditor: replay: genesis: %w", err)
	}

	rep := &ReplayReport{}
	header, err := v.SignedHeader(ctx, gen.InitialHeight)
	if err != nil {
		return nil, err
	}
	for h := gen.InitialHeight; h <= to; h++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		blk, err := c.Block(ctx, h)
		if err != nil {
			return nil, err
		}
		if err := blk.ValidateBasic(); err != nil {
			return nil, &Problem{h, "the node's block is malformed: " + err.Error()}
		}
		if !bytes.Equal(blk.Hash(), header.Commit.BlockID.Hash) {
			return nil, &Problem{h, "the node's block is not the one the validators signed"}
		}
		res, err := app.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{Height: h, Time: blk.Time, Txs: blk.Txs.ToSliceOfBytes(),
			Hash: blk.Hash(), ProposerAddress: blk.ProposerAddress})
		if err != nil {
			return nil, &Problem{h, "re-executing the block failed: " + err.Error()}
		}
		if _, err := app.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
			return nil, err
		}
		next, err := v.SignedHeader(ctx, h+1)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(res.AppHash, next.AppHash) {
			return nil, &Problem{h, fmt.Sprintf("re-executed app hash %X differs from the signed %X", res.AppHash, []byte(next.AppHash))}
		}
		rep.Heights, rep.Txs, header = h, rep.Txs+len(blk.Txs), next
		if h%100 == 0 {
			fmt.Fprintf(progress, "replayed %d of %d heights\n", h, to)
		}
	}

	// The access log the node serves must be the replay's, event for event.
	parts, err := app.HashPartsAt(to)
	if err != nil || parts == nil {
		return nil, fmt.Errorf("auditor: replay: hash parts at %d: %v", to, err)
	}
	log, err := consent.DecodeLogCommitment(parts.Commitment)
	if err != nil {
		return nil, err
	}
	rep.Log = *log
	served, err := v.LogAt(ctx, to)
	if err != nil {
		var p *Problem
		if errors.As(err, &p) {
			return nil, err
		}
		return nil, &Problem{to, "the node's access log root: " + err.Error()}
	}
	if served.Size != log.Size || !bytes.Equal(served.Root, log.Root) {
		return nil, &Problem{to, "the node's access log root differs from the replay's"}
	}
	for i := range log.Size {
		if cfg.Entries == nil {
			break
		}
		var mine consent.LogEntry
		if err := queryApp(ctx, app, fmt.Sprintf("/audit/event/%d", i), &mine); err != nil {
			return nil, err
		}
		theirs, err := cfg.Entries.LogEntry(ctx, i)
		if errors.Is(err, client.ErrNotFound) {
			return nil, &Problem{0, fmt.Sprintf("access log event %d: %v", i, err)}
		}
		if err != nil { // not an answer about the log (no access, no connection)
			return nil, err
		}
		if !bytes.Equal(mine.Leaf, theirs.Leaf) {
			return nil, &Problem{0, fmt.Sprintf("access log event %d served by the node differs from the chain's (tampered store?)", i)}
		}
		rep.Events++
	}
	return rep, nil
}

func queryApp(ctx context.Context, app *abci.App, path string, v any) error {
	res, err := app.Query(ctx, &abcitypes.RequestQuery{Path: path})
	if err != nil {
		return err
	}
	if res.Code != 0 {
		return fmt.Errorf("auditor: replay: query %s: %s", path, res.Log)
	}
	return json.Unmarshal(res.Value, v)
}
