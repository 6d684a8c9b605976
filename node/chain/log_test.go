package chain

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// CometBFT's "CONSENSUS FAILURE!!!" record becomes the node's fault, whatever level
// the logger passes, through loggers derived with With; other errors do not.
func TestCometLoggerReportsConsensusFailure(t *testing.T) {
	faults := newFaultLatch()
	var l interface {
		Error(string, ...any)
	} = cometLogger{l: slog.New(slog.DiscardHandler), min: slog.LevelError + 1, faults: faults}.With("module", "consensus")
	l.Error("failed to write to WAL", "err", "disk full")
	if err := faults.get(); err != nil {
		t.Fatalf("an ordinary error record set the fault: %v", err)
	}
	l.Error(consensusFailureMsg, "err", "failed to apply block; error disk full", "stack", "goroutine 1 [running]:")
	err := faults.get()
	if !errors.Is(err, ErrConsensusFailure) || !strings.Contains(err.Error(), "disk full") || strings.Contains(err.Error(), "goroutine") {
		t.Fatalf("fault = %v; want ErrConsensusFailure naming the cause, without the stack", err)
	}
	select {
	case <-faults.done:
	default:
		t.Fatal("Faulted not closed")
	}
	l.Error(consensusFailureMsg, "err", "a second failure")
	if faults.get() != err {
		t.Fatalf("a later failure replaced the first: %v", faults.get())
	}
}
