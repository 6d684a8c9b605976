// Package nodetest is the one way to build test networks in this process: validator
// networks of CometBFT nodes over any abci.StateMachine (Validators, and Net, which
// fails the test instead of returning errors and stops with it), and consortia of real
// hospital nodes (Consortium, one per test, or Shared by a package's tests). It also
// holds KV, a small state machine for tests of the chain itself.
package nodetest

import (
	"log/slog"
	"testing"

	"github.com/medledger/medledger/node/chain/abci"
)

// Option configures New.
type Option func(*ValidatorsConfig)

// WithAppState sets the genesis app_state (JSON).
func WithAppState(appState []byte) Option {
	return func(c *ValidatorsConfig) { c.AppState = appState }
}

// WithPowers sets the validators' voting powers (default 10 each).
func WithPowers(powers ...int64) Option {
	return func(c *ValidatorsConfig) { c.Powers = powers }
}

// WithExternal prepares node i (keys, home, ports, genesis: Net.Configs[i]) but does not
// create it in this process: the test runs it elsewhere, e.g. in a child process.
// External nodes get an RPC listener.
func WithExternal(i ...int) Option {
	return func(c *ValidatorsConfig) { c.External = append(c.External, i...) }
}

// WithRPC gives every node an RPC listener on a free loopback port.
func WithRPC() Option {
	return func(c *ValidatorsConfig) { c.RPC = true }
}

// WithPublicQuery lets the nodes' RPC answer the query paths public accepts
// (chain.Config.PublicQuery; default none).
func WithPublicQuery(public func(path string) bool) Option {
	return func(c *ValidatorsConfig) { c.PublicQuery = public }
}

// WithLogger sends the nodes' logs to l (default: discarded).
func WithLogger(l *slog.Logger) Option {
	return func(c *ValidatorsConfig) { c.Logger = l }
}

// Net is an in-process test network: a Validators whose methods fail the test.
type Net struct {
	*Validators
	t testing.TB
}

// New prepares a network of n validators whose state machines newMachine makes, and
// creates its in-process nodes (their ABCI handshake runs here); Start starts them. The
// homes are in t.TempDir(); it registers t.Cleanup(Stop).
func New(t testing.TB, n int, newMachine func(i int) abci.StateMachine, opts ...Option) *Net {
	t.Helper()
	cfg := ValidatorsConfig{Validators: n, Dir: t.TempDir(), NewMachine: newMachine}
	for _, opt := range opts {
		opt(&cfg)
	}
	ln, err := NewValidators(cfg)
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	net := &Net{Validators: ln, t: t}
	t.Cleanup(net.Stop)
	return net
}

// Start starts every in-process node.
func (n *Net) Start() {
	n.t.Helper()
	if err := n.Validators.Start(); err != nil {
		n.t.Fatalf("nodetest: %v", err)
	}
}

// StopNode stops node i (its home, keys and ports stay for RestartNode).
func (n *Net) StopNode(i int) {
	n.t.Helper()
	if err := n.Validators.StopNode(i); err != nil {
		n.t.Fatalf("nodetest: %v", err)
	}
}

// RestartNode stops node i if it runs, then starts a new node from the same home and
// keys, with a fresh state machine from newMachine(i).
func (n *Net) RestartNode(i int) {
	n.t.Helper()
	if err := n.Validators.RestartNode(i); err != nil {
		n.t.Fatalf("nodetest: %v", err)
	}
}

// Stop stops every in-process node, in parallel. New registers it with t.Cleanup.
func (n *Net) Stop() {
	if err := n.Validators.Stop(); err != nil {
		n.t.Errorf("nodetest: %v", err)
	}
}
