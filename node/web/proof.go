package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/auditor"
	"github.com/medledger/medledger/node/client"
)

// An event the officer opens is checked here the way `medledger audit proof` checks
// it (auditor.Verifier): its leaf must be included, by the inclusion proof the chain's
// RPC serves, in the log root that the app hash binds, and that app hash must be in a
// header signed by more than 2/3 of the voting power of the genesis validators. The
// page shows the proof and the outcome.

// checkedEntry is an access-log event as the officer's page shows it.
type checkedEntry struct {
	Index uint64             `json:"index"`
	Event consent.AuditEvent `json:"event"`
	Leaf  consent.Hex        `json:"leaf"`
	Proof proofView          `json:"proof"`
}

// proofView is the outcome of the check and the proof it used.
type proofView struct {
	Verified bool          `json:"verified"`
	Problem  string        `json:"problem,omitempty"` // why it was not verified
	Height   int64         `json:"height,omitempty"`  // the height whose signed app hash binds the root
	LogSize  uint64        `json:"log_size,omitempty"`
	Root     consent.Hex   `json:"root,omitempty"`
	Hashes   []consent.Hex `json:"hashes,omitempty"` // the inclusion proof
}

// verifier checks events against the node's chain RPC and its genesis validators.
type verifier struct {
	rpc, genesis string
	once         sync.Once
	gen          *cmttypes.GenesisDoc
	err          error
	mu           sync.Mutex
	ver          *auditor.Verifier // kept: it keeps the validator-set history it verified
}

// genesisDoc reads the trusted genesis once.
func (v *verifier) genesisDoc() (*cmttypes.GenesisDoc, error) {
	v.once.Do(func() { v.gen, v.err = cmttypes.GenesisDocFromFile(v.genesis) })
	return v.gen, v.err
}

// check verifies event index, read from entries.
func (v *verifier) check(ctx context.Context, index uint64, entries auditor.Entries) (*auditor.EventProof, error) {
	if v.rpc == "" || v.genesis == "" {
		return nil, errNoRPC
	}
	ver, err := v.verifier(ctx)
	if err != nil {
		return nil, err
	}
	return ver.VerifyEvent(ctx, index, entries)
}

// verifier is the node's one Verifier, made at its first use (a failure is not
// kept: the next check tries again), so that a validator-set change is walked once.
func (v *verifier) verifier(ctx context.Context) (*auditor.Verifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ver != nil {
		return v.ver, nil
	}
	gen, err := v.genesisDoc()
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(ctx, "http://"+strings.TrimPrefix(v.rpc, "tcp://"))
	if err != nil {
		return nil, err
	}
	if v.ver, err = auditor.NewVerifier(c, gen); err != nil {
		return nil, err
	}
	return v.ver, nil
}

// errProofUnchecked is what the page says when the check failed for a reason of the
// node's own (logged, not shown: it may name the node's internal addresses).
const errProofUnchecked = "the proof could not be fetched or checked on this node right now; the node's log says why"

// errProofFails is what the page says when the proof was fetched and does not verify.
const errProofFails = "the proof does NOT verify against the headers the genesis validators signed: this event is not proven to be in the chain's log; the node's log has the details"

var errNoRPC = errors.New("this node's chain RPC is off (chain.rpc_listen), so it cannot fetch the proof")

// officerEntry is POST /audit-app/api/entry {index}: one event of the access log,
// its leaf, and its inclusion proof checked against the signed headers.
func (s *Server) officerEntry(w http.ResponseWriter, r *http.Request, _ *session) error {
	var in entryAt
	if err := readJSON(w, r, &in); err != nil {
		return err
	}
	entries, ok := s.b.(auditor.Entries)
	if !ok {
		return &problem{status: http.StatusNotImplemented, code: "not-supported", msg: "This node does not serve access-log entries."}
	}
	e, err := entries.LogEntry(r.Context(), in.Index)
	if err != nil {
		return err
	}
	out := checkedEntry{Index: in.Index, Event: e.Event, Leaf: e.Leaf}
	p, err := s.proofs.check(r.Context(), in.Index, entries)
	switch {
	case errors.Is(err, client.ErrNotFound):
		out.Proof.Problem = "the event is newer than the latest header the validators have signed; open it again in a moment"
	case errors.Is(err, errNoRPC):
		out.Proof.Problem = errNoRPC.Error()
	case errors.Is(err, auditor.ErrUnverified):
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "web: inclusion proof does not verify", slog.Uint64("index", in.Index), slog.String("error", err.Error()))
		out.Proof.Problem = errProofFails
	case err != nil:
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "web: inclusion proof not checked", slog.Uint64("index", in.Index), slog.String("error", err.Error()))
		out.Proof.Problem = errProofUnchecked
	default:
		out.Proof = proofView{Verified: true, Height: p.Height, LogSize: p.Log.Size, Root: p.Log.Root}
		for _, h := range p.Proof {
			out.Proof.Hashes = append(out.Proof.Hashes, consent.Hex(h))
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

type entryAt struct {
	Index uint64 `json:"index"`
}
