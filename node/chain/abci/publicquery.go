package abci

import (
	"context"
	"strings"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/medledger/medledger/consent"
)

// Which queries CometBFT's RPC may ask.
//
// CometBFT serves abci_query on its RPC to anyone who reaches the port, without
// authentication, while the node's API answers role-scoped reads (a patient's records
// and consents, decisions, the access log) only to a bearer token of the right role.
// So an App run by a node (GateQueries) answers over the RPC only the paths its state
// machine's owner declares public and the adapter's own HashPartsPath; every other path
// it answers only for the node's own reads.
//
// Telling the two apart: CometBFT v0.40's local ABCI client passes its caller's
// context to App.Query (abci/client/local_client.go), and its RPC handler passes a
// fresh context.TODO() (rpc/core/abci.go), so the node marks its own queries' context
// with OwnRead and a query without the mark came from the RPC (or another caller that
// is not this node). An App without a gate (replay, benchmarks, tests) has no RPC in
// front of it and answers everything.

// ownReadKey marks a context as a read by the node itself.
type ownReadKey struct{}

// OwnRead marks ctx as a read by the node itself, which a gated App answers whatever
// the path.
func OwnRead(ctx context.Context) context.Context {
	return context.WithValue(ctx, ownReadKey{}, true)
}

func isOwnRead(ctx context.Context) bool {
	own, _ := ctx.Value(ownReadKey{}).(bool)
	return own
}

// CodeNotPublic, in QueryCodespace, answers an RPC query for a path that is not
// public. (The state machine owns the codes of the default codespace.)
const (
	CodeNotPublic  uint32 = 1
	QueryCodespace        = "medledger-chain"
)

// GateQueries makes a answer a query only if ctx marks it as the node's own (OwnRead),
// its path is public (public nil: none is) or it asks for HashPartsPath; it refuses
// any other with CodeNotPublic. A node calls it before CometBFT uses the app.
func (a *App) GateQueries(public func(path string) bool) {
	a.gate = func(path string) bool {
		if strings.HasPrefix(path, HashPartsPath) {
			return true
		}
		return public != nil && public(path)
	}
}

// refuseQuery returns the refusal of a query that ctx does not mark as the node's own
// and the gate does not let through, or nil to answer it.
func (a *App) refuseQuery(ctx context.Context, path string) *abcitypes.ResponseQuery {
	if a.gate == nil || isOwnRead(ctx) || a.gate(path) {
		return nil
	}
	head, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	a.log.Debug("refused an RPC query that is not public", "query", consent.Truncate(head, 40))
	return &abcitypes.ResponseQuery{
		Code:      CodeNotPublic,
		Codespace: QueryCodespace,
		Log:       "query " + consent.Truncate(path, 80) + " is not public: it is answered only through the node's API, which checks roles",
		Height:    a.Height(),
	}
}
