package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/nodetest"
)

// TestLeaveKeepsQuorum: with one of four validators down, a vote that a running one
// leave is refused before anything is sent (without it, the three validators left
// would have two running: not more than 2/3), in one line with a non-zero exit; a vote
// that the validator which is down leave goes through (the rest keep all the power
// that is up); --force sends a refused vote anyway.
func TestLeaveKeepsQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four hospital nodes")
	}
	t.Parallel()
	net := nodetest.StartConsortium(t, 4)
	net.StopNode(3) // dunmore
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, net.RPC(0))
	if err != nil {
		t.Fatal(err)
	}
	// Wait until ada reaches bayside and city (just started) and no longer dunmore (a
	// stopped in-process node may stay in its peers' lists for a few seconds).
	var hs []consent.Hospital
	if err := c.Query(ctx, "/hospitals", &hs); err != nil {
		t.Fatal(err)
	}
	dunmore := hs[slices.IndexFunc(hs, func(h consent.Hospital) bool { return h.ID == "dunmore" })].Node
	for {
		r, err1 := c.Reachable(ctx)
		others, err2 := c.ReachableWithout(ctx, dunmore)
		if err1 == nil && err2 == nil && r.Reachable == 3 && others.Reachable == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("ada reaches %+v validators, %+v without dunmore (%v, %v); want ada, bayside and city", r, others, err1, err2)
		}
		time.Sleep(200 * time.Millisecond)
	}
	leave := func(args ...string) (string, error) {
		out, err := cli(append([]string{"hospital", "leave", "--home", net.Homes[0].Dir, "--node", net.RPC(0)}, args...)...).CombinedOutput()
		return string(out), err
	}

	out, err := leave("bayside")
	if err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 ||
		!strings.Contains(out, "once bayside left, the validators this node reaches would hold") ||
		!strings.Contains(out, "(2 of 3 validators), not more than 2/3: the chain would stop making blocks") ||
		!strings.Contains(out, "--force") {
		t.Fatalf("vote that a running validator leave with one down: %v\n%s", err, out)
	}
	if out, err := leave("dunmore"); err != nil || !strings.Contains(out, "voted     dunmore leaves") || !strings.Contains(out, "left      false") {
		t.Fatalf("vote that the validator which is down leave: %v\n%s", err, out)
	}
	// The refused vote was not sent: sent now with --force, it is ada's first for bayside.
	if out, err := leave("--force", "bayside"); err != nil || !strings.Contains(out, "voted     bayside leaves") {
		t.Fatalf("forced vote: %v\n%s", err, out)
	}
}
