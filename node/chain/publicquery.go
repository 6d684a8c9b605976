package chain

import (
	"context"
	"strings"

	abcitypes "github.com/cometbft/cometbft/abci/types"
)

// Which queries CometBFT's RPC may ask.
//
// CometBFT serves abci_query on its RPC to anyone who reaches the port, without
// authentication, while the node's API answers role-scoped reads (a patient's records
// and consents, decisions, the access log) only to a bearer token of the right role.
// So an App run by a Node answers over the RPC only the paths its state machine's owner
// declares public (Config.PublicQuery) and the adapter's own HashPartsPath; every other
// path it answers only for the node's own reads.
//
// Telling the two apart: CometBFT v0.40's local ABCI client passes its caller's
// context to App.Query (abci/client/local_client.go), and its RPC handler passes a
// fresh context.TODO() (rpc/core/abci.go), so Node.Query marks its context with
// ownRead and a query without the mark came from the RPC (or another caller that is
// not this node). A bare App outside a Node (replay, benchmarks, tests) has no RPC in
// front of it and answers everything.

// ownReadKey marks a context as a read by the node itself.
type ownReadKey struct{}

func ownRead(ctx context.Context) context.Context {
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

// rpcGate is the gate of an App run by a Node: public (nil: nothing) plus
// HashPartsPath.
func rpcGate(public func(string) bool) func(string) bool {
	return func(path string) bool {
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
	a.log.Debug("refused an RPC query that is not public", "query", truncate(head, 40))
	return &abcitypes.ResponseQuery{
		Code:      CodeNotPublic,
		Codespace: QueryCodespace,
		Log:       "query " + truncate(path, 80) + " is not public: it is answered only through the node's API, which checks roles",
		Height:    a.Height(),
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
