package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/chain/abci"
	"github.com/medledger/medledger/node/nodetest"
	"github.com/medledger/medledger/node/p2p"
)

// staleRounds is how many grants each stale-custodian scenario tries.
const staleRounds = 20

// TestStaleCustodianReleasesNothing is the examination's finding 1 as a test. Bayside
// holds a grant on one of ada's records; ada falls behind (restarted and catching up,
// or stalled with consensus stopped, then lagging as it resumes); the patient revokes
// on the other three validators; Bayside asks ada for the old grant's key every 20 ms
// with the grant's height as hint. Ada must release nothing after the revocation, and
// every release it made before is in the log exactly once.
func TestStaleCustodianReleasesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	stall := &stallMachine{}
	hn := nodetest.StartConsortiumWith(t, 4, func(i int, c *node.Config) {
		if i == 0 {
			c.WrapMachine = stall.wrap
		}
	})
	t.Cleanup(stall.resume) // before the network stops (cleanups run last first)

	t.Run("restarted", func(t *testing.T) {
		rounds := setupRounds(t, hn, staleRounds)
		hn.StopNode(0)
		hr := revokeAll(t, hn, rounds)
		hn.StartNode(0)
		ada := hn.Nodes[0]
		released, answered := hammer(t, hn, rounds, 3*time.Second, func() bool {
			return ada.Chain().Height() > hr+2 && !ada.Chain().CatchingUp()
		})
		checkNoRelease(t, hn, rounds, released, answered)
	})

	// Finding 5: right after a custodian restarts, a read of a grant the chain approved
	// is answered (503 while the custodian cannot serve yet), never 500 (a stale QUIC
	// connection) or 403 unknown-grant.
	t.Run("read across a restart", func(t *testing.T) {
		rounds := setupRounds(t, hn, 1)
		hn.StopNode(0)
		hn.StartNode(0)
		bayside := hn.Nodes[1]
		// While ada cannot serve: a retryable 503, nothing else.
		deadline := time.Now().Add(45 * time.Second)
		for hn.Nodes[0].Serving() != nil {
			_, err := bayside.Fetch(ctxT(t), rounds[0].grant.ID)
			var u *api.Unavailable
			if err != nil && !errors.As(err, &u) {
				t.Fatalf("%v, want the record or a retryable 503", err)
			}
			if time.Now().After(deadline) {
				t.Fatal("the restarted custodian did not become healthy")
			}
			time.Sleep(200 * time.Millisecond)
		}
		// Once it serves, the first read succeeds (over a fresh connection).
		if bundle, err := bayside.Fetch(ctxT(t), rounds[0].grant.ID); err != nil || len(bundle) == 0 {
			t.Fatalf("first read after the custodian is healthy: %v", err)
		}
	})

	t.Run("stalled then lagging", func(t *testing.T) {
		rounds := setupRounds(t, hn, staleRounds)
		ada := hn.Nodes[0]
		// Blocks without txs do not reach the state machine: ada stalls at the first
		// block of the revocations.
		stall.stop()
		hr := revokeAll(t, hn, rounds)
		if frozen := waitFrozen(t, ada); frozen >= hr {
			t.Fatalf("the stalled custodian reached height %d, the revocations' %d", frozen, hr)
		}
		// Stalled: its state says the consents hold, but its receipts cannot commit.
		released, answered := hammer(t, hn, rounds, 7*time.Second, func() bool { return true })
		checkNoRelease(t, hn, rounds, released, answered)
		// Lagging: it resumes and catches up block by block while asked.
		stall.resume()
		released, answered = hammer(t, hn, rounds, time.Second, func() bool { return ada.Chain().Height() > hr+2 })
		checkNoRelease(t, hn, rounds, released, answered)
	})
}

// TestStaleShareCustodianReleasesNothing is the stalled-then-lagging case of
// TestStaleCustodianReleasesNothing for a custodian of a share: records held 2 of 3 by
// ada, bayside and city; ada stalls, the consents are revoked, and ada, asked for its
// share while stalled and while catching up, releases none.
func TestStaleShareCustodianReleasesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	stall := &stallMachine{}
	hn := nodetest.StartTestnet(t, node.TestnetConfig{Hospitals: 4, Custodians: 3, Threshold: 2}, func(i int, c *node.Config) {
		if i == 0 {
			c.WrapMachine = stall.wrap
		}
	})
	t.Cleanup(stall.resume)
	rounds := setupRounds(t, hn, staleRounds/2)
	ada := hn.Nodes[0]
	if rec, err := ada.Record(ctxT(t), rounds[0].grant.Record); err != nil || rec.Threshold != 2 {
		t.Fatalf("the rounds' records are not in 2-of-3 custody: %v", err)
	}
	stall.stop()
	hr := revokeAll(t, hn, rounds)
	if frozen := waitFrozen(t, ada); frozen >= hr {
		t.Fatalf("the stalled custodian reached height %d, the revocations' %d", frozen, hr)
	}
	released, answered := hammer(t, hn, rounds, 5*time.Second, func() bool { return true })
	checkNoReleaseOf(t, hn, rounds, released, answered, 0)
	stall.resume()
	released, answered = hammer(t, hn, rounds, time.Second, func() bool { return ada.Chain().Height() > hr+2 })
	checkNoReleaseOf(t, hn, rounds, released, answered, 0)
}

// round is one patient's record at ada, with a grant Bayside has read with.
type round struct {
	patient *crypto.SigningKey
	consent consent.ConsentID
	grant   consent.Decision
	revoked int64 // the height the consent's revocation committed at
}

// setupRounds makes k rounds concurrently: each a new patient, a record ingested at
// ada, a consent for Bayside, and one read by Bayside (one key release, receipted).
func setupRounds(t *testing.T, hn *nodetest.Consortium, k int) []round {
	t.Helper()
	ada, bayside := hn.Nodes[0], hn.Nodes[1]
	bundle := nodetest.Sample(t)
	rounds := make([]round, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i := range rounds {
		wg.Go(func() {
			errs[i] = func() error {
				key, pid := nodetest.NewPatient(t)
				rec, err := ada.Ingest(ctxT(t), pid, bytes.NewReader(bundle))
				if err != nil {
					return err
				}
				c, err := ada.SubmitTx(ctxT(t), nodetest.Signed(t, ada, nodetest.Permit(pid, "bayside"), key))
				if err != nil {
					return err
				}
				acc, err := bayside.Read(ctxT(t), rec.ID, "TREAT")
				if err != nil {
					return err
				}
				if !bytes.Equal(acc.Bundle, bundle) {
					return fmt.Errorf("round %d read another Bundle", i)
				}
				rounds[i] = round{patient: key, consent: consent.ConsentID(c.ID), grant: acc.Decision}
				return nil
			}()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	return rounds
}

// revokeAll revokes every round's consent through city and returns the highest height
// a revocation committed at.
func revokeAll(t *testing.T, hn *nodetest.Consortium, rounds []round) int64 {
	t.Helper()
	city := hn.Nodes[2]
	var hr int64
	for i, r := range rounds {
		c := nodetest.AsPatient(t, city, r.patient, consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: r.consent}})
		rounds[i].revoked = c.Height
		hr = max(hr, c.Height)
	}
	return hr
}

// hammer asks ada, as Bayside, for every round's key every 20 ms until at least least
// has passed and done reports true (within a minute). It returns the releases and the
// answers (releases or refusals) it got.
func hammer(t *testing.T, hn *nodetest.Consortium, rounds []round, least time.Duration, done func() bool) (released, answered int64) {
	t.Helper()
	bayside, adaPeer := hn.Nodes[1], hn.Nodes[0].Host().ID()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, r := range rounds {
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				resp, err := bayside.Host().RequestKey(ctx, adaPeer, p2p.ReleaseRequest{Grant: string(r.grant.ID), Height: int64(r.grant.Height)})
				if err == nil {
					atomic.AddInt64(&answered, 1)
					if resp.Code == 0 || len(resp.Wrapped) != 0 {
						atomic.AddInt64(&released, 1)
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	for time.Since(start) < least || !done() {
		if ctx.Err() != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatal("the custodian did not catch up within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	return atomic.LoadInt64(&released), atomic.LoadInt64(&answered)
}

// checkNoRelease asserts that nothing was released, that the custodian did answer,
// and that each grant has exactly the one receipt of Bayside's read before the
// revocation.
func checkNoRelease(t *testing.T, hn *nodetest.Consortium, rounds []round, released, answered int64) {
	t.Helper()
	checkNoReleaseOf(t, hn, rounds, released, answered, 1)
}

// checkNoReleaseOf is checkNoRelease for a read that made want receipts (one per
// custodian that released a key or share; 0: any number), all before the revocation.
func checkNoReleaseOf(t *testing.T, hn *nodetest.Consortium, rounds []round, released, answered int64, want int) {
	t.Helper()
	if released != 0 {
		t.Fatalf("a custodian behind the chain released %d keys after the revocation", released)
	}
	if answered == 0 {
		t.Fatal("the custodian answered no request: the test proved nothing")
	}
	for i, r := range rounds {
		var g consent.GrantInfo
		res, _, err := hn.Nodes[1].Chain().Query("/grant/"+string(r.grant.ID), nil)
		if err != nil || res.Code != 0 || !jsonInto(res.Value, &g) {
			t.Fatalf("round %d: grant %s: %v %d %s", i, r.grant.ID, err, res.Code, res.Log)
		}
		if (want > 0 && len(g.Receipts) != want) || len(g.Receipts) == 0 {
			t.Fatalf("round %d: grant %s has %d receipts, want the %d of the read before the revocation", i, r.grant.ID, len(g.Receipts), want)
		}
		for _, rc := range g.Receipts {
			if int64(rc.Height) >= r.revoked {
				t.Fatalf("round %d: %s's receipt at height %d, after the revocation at %d", i, rc.Custodian, rc.Height, r.revoked)
			}
		}
	}
}

// waitFrozen waits until nd's height has not changed for a second (its consensus has
// stalled), within 30 s.
func waitFrozen(t *testing.T, nd *node.Node) int64 {
	t.Helper()
	h := nd.Chain().Height()
	deadline := time.Now().Add(30 * time.Second)
	for still := time.Now(); time.Since(still) < time.Second; {
		if time.Now().After(deadline) {
			t.Fatal("the stalled custodian's height kept changing")
		}
		time.Sleep(50 * time.Millisecond)
		if nh := nd.Chain().Height(); nh != h {
			h, still = nh, time.Now()
		}
	}
	return h
}

// stallMachine wraps a node's state machine so that a test can stop its consensus (a
// stuck disk, a hung process): EndBlock blocks while stopped.
type stallMachine struct {
	mu   sync.Mutex
	gate chan struct{} // nil: running; closed by resume
}

func (s *stallMachine) wrap(m abci.StateMachine) abci.StateMachine {
	return stalling{StateMachine: m, s: s}
}

func (s *stallMachine) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

func (s *stallMachine) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *stallMachine) wait() {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g != nil {
		<-g
	}
}

type stalling struct {
	abci.StateMachine
	s *stallMachine
}

func (m stalling) EndBlock(w consent.Store, b consent.Block) error {
	m.s.wait()
	return m.StateMachine.EndBlock(w, b)
}

// Commitment passes on the consent machine's commitment.
func (m stalling) Commitment(r consent.Reader) ([]byte, error) {
	return m.StateMachine.(abci.Committer).Commitment(r)
}
