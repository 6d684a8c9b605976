package consent

import "strings"

// PublicQuery reports whether a query path (see Machine.Query) answers with what any
// client may read, as opposed to what the node's API scopes by role. Public: the
// hospital registry (/hospitals, /hospital/<id>), the last height and block time
// (/height), and what a light client needs to check the access log against signed
// headers without reading an event: the log's head and roots (/audit/head,
// /audit/root/<height>) and its inclusion and consistency proofs (hashes only). Every
// other path — records, consents, decisions and grants, the emergency queue, release
// checks, access-log events and pages, and any unknown path — names patients, records
// or accesses and is not public.
//
// A node's chain adapter answers the paths this refuses only for the node's own reads,
// never for a client of CometBFT's RPC (node/chain.Config.PublicQuery). It parses a
// path as Query does, so the two cannot disagree on what a path asks.
func PublicQuery(path string) bool {
	head, arg, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch head {
	case "hospitals", "hospital", "height":
		return true
	case "audit":
		what, _, _ := strings.Cut(arg, "/")
		return what == "head" || what == "root" || what == "inclusion" || what == "consistency"
	}
	return false
}
