package node

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/chain"
)

// TestAssess: the watchdog's verdicts, fact by fact. An idle chain with no peer ahead
// is healthy however old its latest block when it makes no empty blocks; with a
// heartbeat, a block much older than the heartbeat means no progress.
func TestAssess(t *testing.T) {
	tip := chain.Status{Height: 100, BlockTime: time.Now(), Running: true, Validators: 4, Peers: 3, PeerHeight: 100}
	with := func(edit func(f *facts)) facts {
		f := facts{Status: tip, age: time.Second, stalled: time.Second}
		edit(&f)
		return f
	}
	const off time.Duration = -1 // chain.NoEmptyBlocks: an idle chain makes no blocks
	tests := []struct {
		name      string
		f         facts
		heartbeat time.Duration
		want      api.HealthStatus
		reason    string
	}{
		{"at the tip", with(func(*facts) {}), 0, api.StatusOK, ""},
		{"a peer one block ahead", with(func(f *facts) { f.PeerHeight = 101 }), 0, api.StatusOK, ""},
		{"idle for an hour, no empty blocks", with(func(f *facts) { f.age, f.stalled = time.Hour, time.Hour }), off, api.StatusOK, ""},
		{"idle within the heartbeat", with(func(f *facts) { f.age = 5*time.Minute + 5*time.Second }), 5 * time.Minute, api.StatusOK, ""},
		{"one validator alone", with(func(f *facts) { f.Validators, f.Peers, f.PeerHeight = 1, 0, 0 }), off, api.StatusOK, ""},

		{"starting", with(func(f *facts) { f.Height, f.BlockTime, f.age = 0, time.Time{}, -1 }), 0, api.StatusUnavailable, "no block committed yet"},
		{"catching up", with(func(f *facts) { f.CatchingUp, f.Height = true, 40 }), 0, api.StatusUnavailable, "catching up by block sync (height 40, peers report 100)"},
		{"behind its peers", with(func(f *facts) { f.Height = 98 }), 0, api.StatusUnavailable, "behind its peers (height 98, peers report 100)"},
		{"no peers", with(func(f *facts) { f.Peers, f.PeerHeight = 0, 0 }), off, api.StatusUnavailable, "no connected peers"},
		{"txs waiting, no block", with(func(f *facts) { f.Pending, f.stalled = 2, 11*time.Second }), off, api.StatusUnavailable, "2 txs waiting and no block for 11s"},
		{"beyond the heartbeat", with(func(f *facts) { f.age = 71 * time.Second }), time.Minute, api.StatusUnavailable, "the latest block is 1m11s old (empty blocks every 1m0s)"},
		{"continuous blocks stopped", with(func(f *facts) { f.age = 11 * time.Second }), 0, api.StatusUnavailable, "the latest block is 11s old"},

		{"consensus failure", with(func(f *facts) { f.Fault = chain.ErrConsensusFailure }), 0, api.StatusFailed, "chain: consensus failure"},
		{"a storage fault reported", with(func(f *facts) { f.reported = errors.New("storage: cannot write") }), 0, api.StatusFailed, "storage: cannot write"},
		{"engine stopped", with(func(f *facts) { f.Running = false }), 0, api.StatusFailed, "the consensus engine has stopped"},
		{"stalled behind its peers", with(func(f *facts) { f.Height, f.stalled = 90, 31*time.Second }), 0, api.StatusFailed, "consensus stalled: height 90 for 31s while peers report 100"},
		{"stalled while catching up", with(func(f *facts) { f.Height, f.CatchingUp, f.stalled = 90, true, 31*time.Second }), 0, api.StatusFailed, "consensus stalled"},
	}
	for _, tt := range tests {
		got, reason := assess(tt.f, tt.heartbeat)
		if got != tt.want || !strings.Contains(reason, tt.reason) || (got == api.StatusOK) != (reason == "") {
			t.Errorf("%s: %s %q, want %s %q", tt.name, got, reason, tt.want, tt.reason)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestWatchdogLatchesFailure: once failed, a node stays failed and Done is closed,
// even if the facts look fine again; a node closed first never fails.
func TestWatchdogLatchesFailure(t *testing.T) {
	st := chain.Status{Height: 5, BlockTime: time.Now(), Running: true, Validators: 1}
	w := newWatchdog(func() chain.Status { return st }, 0, quietLogger(), newMetrics())
	if h := w.check(); h.Status != api.StatusOK {
		t.Fatalf("healthy facts: %+v", h)
	}
	w.fail(errors.New("storage: cannot write to data/dek: no space left on device"))
	select {
	case <-w.done:
	default:
		t.Fatal("done not closed after a reported fault")
	}
	st.Height = 6
	if h := w.check(); h.Status != api.StatusFailed || !strings.Contains(h.Reason, "no space left") {
		t.Fatalf("after the fault, with fine facts: %+v", h)
	}
	if err := w.fatalErr(); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("fatal error %v", err)
	}

	w = newWatchdog(func() chain.Status { return st }, 0, quietLogger(), newMetrics())
	w.close()
	st.Running = false
	if h := w.check(); h.Status != api.StatusFailed || w.fatalErr() != nil {
		t.Fatalf("a closed node's engine stopping: %+v, err %v; want failed but no fault latched", h, w.fatalErr())
	}
}

// TestProbe: the storage probe writes and leaves nothing; a directory that cannot be
// written fails it.
func TestProbe(t *testing.T) {
	dir := t.TempDir()
	if err := probe(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the probe left %d files", len(left))
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := probe(notDir); err == nil {
		t.Fatal("probe of a path that is not a directory succeeded")
	}
}
