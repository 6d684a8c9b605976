package chain

import (
	"context"
	"log/slog"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// cometLogger adapts slog to CometBFT's logger, dropping records below min. Whatever
// min is, it reports a consensus failure to faults: CometBFT tells of it only in its
// log.
type cometLogger struct {
	l      *slog.Logger
	min    slog.Level
	faults *faultLatch
}

var _ cmtlog.Logger = cometLogger{}

func (c cometLogger) log(level slog.Level, msg string, kv []any) {
	if level < c.min || !c.l.Enabled(context.Background(), level) {
		return
	}
	c.l.Log(context.Background(), level, msg, kv...)
}

func (c cometLogger) Debug(msg string, kv ...any) { c.log(slog.LevelDebug, msg, kv) }
func (c cometLogger) Info(msg string, kv ...any)  { c.log(slog.LevelInfo, msg, kv) }
func (c cometLogger) Warn(msg string, kv ...any)  { c.log(slog.LevelWarn, msg, kv) }
func (c cometLogger) Error(msg string, kv ...any) {
	if msg == consensusFailureMsg {
		c.faults.set(consensusFailure(kv))
	}
	c.log(slog.LevelError, msg, kv)
}

func (c cometLogger) With(kv ...any) cmtlog.Logger {
	return cometLogger{l: c.l.With(kv...), min: c.min, faults: c.faults}
}
