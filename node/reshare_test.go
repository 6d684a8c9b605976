package node_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/ipfs/go-cid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/auditor"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
)

// TestLeaveByVoteReshares: five hospitals, a record held 2 of 3 by ada, bayside and
// city. The member the chain will choose in city's place is down when city leaves by a
// vote of the four others: city is out of the registry, the allowlists and the validator
// set; the record is re-shared from ada and bayside, switches once they accept (reads
// keep working before, during and after), the old shares are destroyed, and the newcomer
// takes its share when it returns. City's old share does not combine with the new
// ones. With city and ada both down, the chain (now four validators) still decides and
// the record is read from bayside and the newcomer; an auditor's replay from genesis
// follows the validator set change.
func TestLeaveByVoteReshares(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 5-hospital network")
	}
	t.Parallel()
	net := nodetest.StartTestnet(t, node.TestnetConfig{Hospitals: 5, Custodians: 3, Threshold: 2}, nil)
	ada, bayside, city := net.Nodes[0], net.Nodes[1], net.Nodes[2]
	patient, pid := nodetest.NewPatient(t)
	rec, err := ada.Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "dunmore", "elmwood"))
	if !slices.Equal(rec.Custodians, []consent.HospitalID{"ada", "bayside", "city"}) || rec.Threshold != 2 {
		t.Fatalf("custody %d of %v", rec.Threshold, rec.Custodians)
	}
	// The chain puts, in city's place, the member that comes first by the hash of record
	// and hospital ID; the other one reads.
	iNew, iReader := 3, 4
	if bytes.Compare(placeHash(rec.ID, "elmwood"), placeHash(rec.ID, "dunmore")) < 0 {
		iNew, iReader = 4, 3
	}
	reader := net.Nodes[iReader]
	waitCustody(t, reader, rec.ID, func(s *consent.CustodyStatus) bool { return len(s.Accepted) == 3 })
	read := func(when string) {
		t.Helper()
		acc, err := reader.Read(nodetest.Ctx(t), rec.ID, "TREAT")
		if err != nil || !bytes.Equal(acc.Bundle, nodetest.Sample(t)) {
			t.Fatalf("read %s: %v", when, err)
		}
	}
	read("before the leave")
	id, _ := crypto.ParseRecordID(string(rec.ID))
	cityOld := openShare(t, city, id, 0, 3) // what a leaver could keep

	if !reader.Chain().HasPeer(nodePublicKey(t, city)) {
		t.Fatal("before the leave, the reader's CometBFT has no peer for city's node key")
	}
	net.StopNode(iNew)
	for _, voter := range []*node.Node{ada, bayside, city, reader} {
		if _, err := voter.VoteLeave(nodetest.Ctx(t), "city"); err != nil {
			t.Fatalf("%s votes that city leave: %v", voter.ID(), err)
		}
	}
	waitFor(t, "the registry to drop city", func() bool { return !slices.Contains(reader.Members(), "city") })
	read("during the re-sharing")
	// Its own node, cut off from the chain, refuses: its last state says it is not a
	// member (CheckTx), or it cannot show its state is current (no peers).
	if _, err := city.Read(nodetest.Ctx(t), rec.ID, "TREAT"); err == nil ||
		!strings.Contains(err.Error(), `no registered hospital "city"`) && !errors.As(err, new(*api.Unavailable)) {
		t.Fatalf("the hospital that left requests access: %v, want the refusal of a non-member or unavailable", err)
	}

	st := waitCustody(t, reader, rec.ID, func(s *consent.CustodyStatus) bool { return s.Epoch == 1 })
	if want := []consent.HospitalID{"ada", "bayside", consent.HospitalID(net.Homes[iNew].Config.ID)}; !slices.Equal(st.Custodians, want) || !st.Available ||
		st.Resharing == nil || !st.Resharing.Switched {
		t.Fatalf("custody after the switch: %+v, want custodians %v and the re-sharing kept for the one down", st, want)
	}
	read("after the switch, the new custodian down")
	// City's CometBFT peer, admitted while its votes still counted (a few heights), is
	// dropped by every member once the re-sharing's txs have moved the chain on.
	cityKey := nodePublicKey(t, city)
	members := []*node.Node{ada, bayside, reader}
	waitFor(t, "the members to drop city's CometBFT peer", func() bool {
		return !slices.ContainsFunc(members, func(m *node.Node) bool { return m.Chain().HasPeer(cityKey) })
	})
	leftAt := city.Chain().Height()
	// A requester that read the record before the switch gets shares of the new
	// sharing: it reads the record again rather than calling the custodians liars.
	acc, err := reader.Read(nodetest.Ctx(t), rec.ID, "TREAT")
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.ObtainKey(nodetest.Ctx(t), acc.Decision, *rec); err != nil {
		t.Fatalf("key from shares asked with the record as read before the switch: %v", err)
	}
	for _, old := range []*node.Node{ada, bayside} {
		waitGone(t, node.ShareKeyPathAt(old.Home(), id, 0))
	}
	if reader.Host().ConnectedTo(city.Host().ID()) {
		t.Error("a member keeps a connection with the hospital that left")
	}

	net.StartNode(iNew)
	newcomer := net.Nodes[iNew]
	waitCustody(t, reader, rec.ID, func(s *consent.CustodyStatus) bool { return len(s.Accepted) == 3 && s.Resharing == nil })
	root, _ := cid.Decode(rec.CID)
	if pinned, err := newcomer.Store().IsPinned(nodetest.Ctx(t), root); err != nil || !pinned {
		t.Fatalf("the new custodian %s has not pinned the ciphertext (%v)", newcomer.ID(), err)
	}

	// The leaver's old share is useless with the new ones.
	rec, err = reader.Record(nodetest.Ctx(t), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	newC, err := crypto.ParseCommitments(rec.Commitments)
	if err != nil {
		t.Fatal(err)
	}
	i, _ := rec.ShareIndex(newcomer.ID())
	fresh, adaNew := openShare(t, newcomer, id, 1, i), openShare(t, ada, id, 1, 1)
	if _, _, err := crypto.Combine(newC, []crypto.Share{adaNew, fresh}); err != nil {
		t.Fatalf("ada's and the newcomer's new shares do not rebuild the key: %v", err)
	}
	if _, bad, err := crypto.Combine(newC, []crypto.Share{cityOld, adaNew}); !errors.Is(err, crypto.ErrTooFewShares) || !slices.Equal(bad, []crypto.ShareIndex{3}) {
		t.Fatalf("the leaver's old share with ada's new one: invalid %v, %v; want share 3 refused", bad, err)
	}

	// A custodian stopped between the switch and the destruction of its old share
	// destroys it when it starts again (a copy of its new share stands in for it).
	net.StopNode(0)
	b, err := os.ReadFile(node.ShareKeyPathAt(ada.Home(), id, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(node.ShareKeyPathAt(ada.Home(), id, 0), b, 0o600); err != nil {
		t.Fatal(err)
	}
	net.StartNode(0)
	waitGone(t, node.ShareKeyPathAt(net.Homes[0], id, 0))
	if _, err := os.Stat(node.ShareKeyPathAt(net.Homes[0], id, 1)); err != nil {
		t.Fatalf("ada's current share is gone too: %v", err)
	}

	if h, now := city.Chain().Height(), reader.Chain().Height(); h > leftAt+1 || now <= leftAt+1 {
		t.Errorf("city, dropped at height %d, is at height %d with the chain at %d: it still follows the chain", leftAt, h, now)
	}
	// (ada restarted meanwhile: its new node refused city from the start)
	if slices.ContainsFunc([]*node.Node{net.Nodes[0], bayside, reader}, func(m *node.Node) bool { return m.Chain().HasPeer(cityKey) }) {
		t.Error("a member admitted city's CometBFT peer again")
	}
	net.StopNode(2)
	net.StopNode(0)
	read("from bayside and the new custodian, with ada and city down")

	gen, err := cmttypes.GenesisDocFromFile(net.Homes[1].Path(home.GenesisFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(nodetest.Ctx(t), net.RPC(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auditor.Replay(nodetest.Ctx(t), c, gen, auditor.ReplayConfig{}); err != nil {
		t.Fatalf("an auditor's replay across the validator set change: %v", err)
	}
}

// nodePublicKey is nd's node key (its CometBFT and libp2p identity).
func nodePublicKey(t *testing.T, nd *node.Node) ed25519.PublicKey {
	t.Helper()
	k, err := nd.Home().Keys.Node.Ed25519PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().(ed25519.PublicKey)
}

// placeHash is how the chain orders candidates for a record's custody.
func placeHash(rec consent.RecordID, h consent.HospitalID) []byte {
	sum := sha256.Sum256([]byte(string(rec) + "/" + string(h)))
	return sum[:]
}

// openShare opens hospital nd's share i of record id at epoch.
func openShare(t *testing.T, nd *node.Node, id crypto.RecordID, epoch uint32, i crypto.ShareIndex) crypto.Share {
	t.Helper()
	kf, err := node.ReadKeyFile(node.ShareKeyPathAt(nd.Home(), id, epoch))
	if err != nil {
		t.Fatal(err)
	}
	s, err := nd.Home().Keys.Wrap.UnwrapShare(kf.Wrapped, crypto.WrapContext{Chain: nd.Home().ChainID(), Record: id}, i)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitGone waits (bounded) until path does not exist.
func waitGone(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists", path)
		}
	}
}

// TestLastMemberRunsAlone: of two hospitals, bayside leaves by both votes. Its votes
// still count for the heights before CometBFT applies the change, so it stays admitted
// that long (else the chain, needing both, would halt); then ada drops its CometBFT peer
// and runs the chain alone: it is serving with no peers (the one validator left, as the
// chain's state says, is its node), commits, and reads; bayside, cut off, is not
// serving.
func TestLastMemberRunsAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 2-hospital network")
	}
	t.Parallel()
	net := nodetest.StartTestnet(t, node.TestnetConfig{Hospitals: 2}, nil)
	ada, bayside := net.Nodes[0], net.Nodes[1]
	for _, voter := range []*node.Node{ada, bayside} {
		if _, err := voter.VoteLeave(nodetest.Ctx(t), "bayside"); err != nil {
			t.Fatalf("%s votes that bayside leave: %v", voter.ID(), err)
		}
	}
	waitFor(t, "the registry to drop bayside", func() bool { return !slices.Contains(ada.Members(), "bayside") })
	patient, pid := nodetest.NewPatient(t)
	rec, err := ada.Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatalf("ingest after bayside left: %v", err)
	}
	nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "ada"))
	// The grace is counted in committed heights; on a chain that makes blocks only for
	// txs, a few consents make them.
	baysideKey := nodePublicKey(t, bayside)
	for i := 0; ada.Chain().HasPeer(baysideKey); i++ {
		if i == 2*consent.ValidatorGrace {
			t.Fatalf("ada keeps bayside's CometBFT peer %d heights after it left", i)
		}
		nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "ada"))
		time.Sleep(200 * time.Millisecond) // the registry refresh after the height drops it
	}
	waitFor(t, "ada to serve alone", func() bool { return ada.Serving() == nil })
	// Bayside, cut off, is not the validator left: it needs peers, so it is unavailable
	// (its state's one validator is not its own node).
	waitFor(t, "bayside, cut off, to be unavailable", func() bool { return errors.Is(bayside.Serving(), node.ErrUnavailable) })
	acc, err := ada.Read(nodetest.Ctx(t), rec.ID, "TREAT")
	if err != nil || !bytes.Equal(acc.Bundle, nodetest.Sample(t)) {
		t.Fatalf("ada reads alone: %v", err)
	}
	if ada.Chain().HasPeer(baysideKey) {
		t.Error("ada admitted bayside's CometBFT peer again")
	}
}
