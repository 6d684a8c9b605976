// Package chainbench measures the consent chain: how many signed consent txs per second
// a network of validators in this process commits, and each tx's commit latency
// (submitted → committed), under load and one at a time — and the same for two
// yardsticks on the same network configuration (bench/kvnet): CometBFT's kvstore
// example app, and that kvstore with an Ed25519 signature on every tx checked once in
// CheckTx (what any chain of authenticated txs pays).
//
// The consent load is half patients granting a hospital a consent, half hospitals
// requesting a registered record (decided on chain), over 4096 patients with a record
// each (Config.Patients); the kvstores get "key=value" txs of the same mean size. The
// load is a closed loop: submitters spread over the validators, each sending a tx and
// waiting for its commit before the next, so the chain sets the pace. Unless told a
// concurrency, the benchmark doubles it from 64 until throughput stops growing by 10 %
// a step, and measures at the saturation point: the fewest submitters that reached
// 95 % of the best throughput (more only add latency). Then it measures each application Runs times, in rounds
// that take the applications in turn (so a change in the machine's load hits them
// alike), and reports the median of the rounds' ratios. Every measurement runs on a
// fresh network, and its txs are built and signed before it starts, so the submitters
// cost the chain little CPU.
package chainbench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"time"
)

// The product's goals for the consent chain.
const (
	GoalRatio = 0.9                    // consent throughput ≥ 0.9 × kvstore's
	GoalP50   = 250 * time.Millisecond // commit latency p50
)

// Config configures a run. The zero value is a full run with defaults.
type Config struct {
	// Duration is the measured window at the chosen concurrency (default 15 s).
	Duration time.Duration
	// Warmup runs the load before the window, unmeasured (default 3 s).
	Warmup time.Duration
	// Concurrency is the number of submitters; 0 searches for the level at which
	// each chain saturates, doubling from 64 up to MaxConcurrency.
	Concurrency int
	// MaxConcurrency bounds the search (default 2048).
	MaxConcurrency int
	// StepDuration is each search step's window, after a 2 s warm-up (default 4 s).
	StepDuration time.Duration
	// Unloaded is the number of txs sent one at a time for the unloaded latency
	// (default 40).
	Unloaded int
	// Runs is how many times each application is measured at its concurrency
	// (default 3); the ratios are the medians of the runs'.
	Runs int
	// Validators is the network's size (default 4).
	Validators int
	// Patients is how many patients the consent load has, each with one record
	// registered before the measurements (default 4096).
	Patients int
	// Dir holds the networks' homes; default a temporary directory, removed after.
	Dir string
	// Progress receives a line per measurement as the run goes; nil: nothing.
	Progress io.Writer
	// Logger receives the nodes' logs (default: discarded).
	Logger *slog.Logger
}

// Validate fills defaults and rejects nonsense.
func (c *Config) Validate() error {
	switch {
	case c.Duration < 0 || c.Warmup < 0 || c.StepDuration < 0:
		return errors.New("chainbench: durations must not be negative")
	case c.Concurrency < 0 || c.MaxConcurrency < 0 || c.Unloaded < 0 || c.Validators < 0 || c.Runs < 0 || c.Patients < 0:
		return errors.New("chainbench: counts must not be negative")
	}
	if c.Duration == 0 {
		c.Duration = 15 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = 2048
	}
	if c.StepDuration == 0 {
		c.StepDuration = 4 * time.Second
	}
	if c.Unloaded == 0 {
		c.Unloaded = 40
	}
	if c.Validators == 0 {
		c.Validators = 4
	}
	if c.Runs == 0 {
		c.Runs = 3
	}
	if c.Patients == 0 {
		c.Patients = defaultPatients
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// stepWarmup is the unmeasured start of each search step.
const stepWarmup = 2 * time.Second

// searchStart is the first concurrency the search tries.
const searchStart = 64

// Result is a run's outcome.
type Result struct {
	Validators    int       `json:"validators"`
	CPUs          int       `json:"cpus"` // GOMAXPROCS
	Consent       AppResult `json:"consent"`
	KVStore       AppResult `json:"kvstore"`
	SignedKVStore AppResult `json:"signed_kvstore"`
	// Ratio is the median over the runs of Consent's committed tx/s over KVStore's in
	// the same round, each at its measured load; Ratios are the rounds' ratios.
	Ratio  float64   `json:"ratio"`
	Ratios []float64 `json:"ratios"`
	// RatioSigned and RatiosSigned are the same against SignedKVStore.
	RatioSigned  float64   `json:"ratio_signed"`
	RatiosSigned []float64 `json:"ratios_signed"`
	// CPURatio is the median over the runs of KVStore's CPU time per committed tx
	// over Consent's (CPURatioSigned: SignedKVStore's): the throughput ratio where CPU
	// is the limit, as it is here, and less disturbed than tx/s by other processes
	// sharing the machine. 0 where the platform does not tell CPU time.
	CPURatio       float64 `json:"cpu_ratio,omitempty"`
	CPURatioSigned float64 `json:"cpu_ratio_signed,omitempty"`
	// RatioWithinGoal is the ratio of their WithinGoal throughputs (0 if either has
	// none).
	RatioWithinGoal float64 `json:"ratio_within_goal,omitempty"`
}

// AppResult is one application's measurements.
type AppResult struct {
	App     string `json:"app"`
	TxBytes int    `json:"tx_bytes"` // mean size of the measured txs
	// Unloaded is the commit latency of txs sent one at a time.
	Unloaded Latency `json:"unloaded"`
	// Loaded is the run at the chosen concurrency with the median throughput.
	Loaded Step `json:"loaded"`
	// Runs are every run at the chosen concurrency, in order.
	Runs []Step `json:"runs"`
	// Search are the saturation search's steps, if it ran.
	Search []Step `json:"search,omitempty"`
	// WithinGoal is the search step that committed the most with a p50 latency within
	// GoalP50, if any.
	WithinGoal *Step `json:"within_goal,omitempty"`
}

// Step is the closed loop measured at one concurrency.
type Step struct {
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`    // the measured window
	Committed   int     `json:"committed"`  // txs whose commit arrived in the window
	TxPerSec    float64 `json:"tx_per_sec"` // Committed / Seconds
	Failed      int     `json:"failed"`     // rejected or errored, in the window
	Blocks      int64   `json:"blocks"`     // blocks node 0 committed in the window
	TxBytes     int     `json:"tx_bytes"`   // mean size of the txs submitted
	// CPUSeconds is the CPU time the whole process used in the window: all the
	// validators and the load (0 where the platform does not tell).
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	// BuiltLate counts the txs built during the run, when those built before it ran
	// out (they cost the chain CPU).
	BuiltLate int `json:"built_late,omitempty"`
	// Latency is over the txs submitted in the window.
	Latency Latency `json:"latency"`
}

// Run runs the benchmark: the saturation search of each application (unless
// Config.Concurrency is set), then Config.Runs rounds measuring each in turn.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "chainbench-")
		if err != nil {
			return nil, fmt.Errorf("chainbench: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	res := &Result{Validators: cfg.Validators, CPUs: runtime.GOMAXPROCS(0)}
	kv, signed := &kvLoad{}, &kvLoad{signed: true}
	apps := []*app{
		{w: newConsentLoad(cfg.Patients), out: &res.Consent},
		{w: kv, out: &res.KVStore},
		{w: signed, out: &res.SignedKVStore},
	}
	// The kvstores' txs are as large as the consent txs last measured.
	sized := func(s Step) { kv.txBytes, signed.txBytes = s.TxBytes, s.TxBytes }
	for i, a := range apps {
		if err := a.find(ctx, cfg); err != nil {
			return nil, err
		}
		if i == 0 && len(a.out.Search) > 0 {
			sized(a.out.Search[len(a.out.Search)-1])
		}
	}
	for range cfg.Runs {
		for i, a := range apps {
			if err := a.run(ctx, cfg); err != nil {
				return nil, err
			}
			if i == 0 {
				sized(a.out.Runs[len(a.out.Runs)-1])
			}
		}
	}
	for _, a := range apps {
		a.out.Loaded = medianStep(a.out.Runs)
		a.out.TxBytes = a.out.Loaded.TxBytes
	}
	res.Ratios, res.Ratio = ratios(res.Consent.Runs, res.KVStore.Runs, txPerSec)
	res.RatiosSigned, res.RatioSigned = ratios(res.Consent.Runs, res.SignedKVStore.Runs, txPerSec)
	_, res.CPURatio = ratios(res.KVStore.Runs, res.Consent.Runs, cpuPerTx)
	_, res.CPURatioSigned = ratios(res.SignedKVStore.Runs, res.Consent.Runs, cpuPerTx)
	if c, k := res.Consent.WithinGoal, res.KVStore.WithinGoal; c != nil && k != nil && k.TxPerSec > 0 {
		res.RatioWithinGoal = c.TxPerSec / k.TxPerSec
	}
	return res, nil
}

// app is one application's measurements as they are made.
type app struct {
	w           workload
	out         *AppResult
	concurrency int
	rate        float64 // the throughput expected at concurrency (0: unknown)
}

// find sets the concurrency to measure at: Config.Concurrency, or the saturation
// search's knee.
func (a *app) find(ctx context.Context, cfg Config) error {
	a.out.App = a.w.name()
	a.concurrency = cfg.Concurrency
	if a.concurrency != 0 {
		return nil
	}
	var err error
	if a.out.Search, err = search(ctx, cfg, a.w); err != nil {
		return err
	}
	knee := saturation(a.out.Search)
	a.concurrency, a.rate = knee.Concurrency, knee.TxPerSec
	a.out.WithinGoal = withinGoal(a.out.Search)
	return nil
}

// run measures the application once at its concurrency, on a fresh network; the
// first run also measures the latency of txs sent one at a time.
func (a *app) run(ctx context.Context, cfg Config) error {
	name := a.w.name()
	return onFreshNet(ctx, cfg, a.w, func(net *network) error {
		if len(a.out.Runs) == 0 {
			var err error
			if a.out.Unloaded, err = unloaded(ctx, net, a.w, cfg.Unloaded); err != nil {
				return fmt.Errorf("chainbench: %s: unloaded: %w", name, err)
			}
			fmt.Fprintf(cfg.Progress, "%-14s one at a time: %s\n", name, a.out.Unloaded)
		}
		s, err := measure(ctx, cfg, net, a.w, a.concurrency, cfg.Warmup, cfg.Duration, a.rate)
		a.out.Runs = append(a.out.Runs, s)
		return err
	})
}

// medianStep is the step with the median throughput (the lower middle one of an even
// number).
func medianStep(steps []Step) Step {
	if len(steps) == 0 {
		return Step{}
	}
	sorted := slices.SortedFunc(slices.Values(steps), func(a, b Step) int { return cmp.Compare(a.TxPerSec, b.TxPerSec) })
	return sorted[(len(sorted)-1)/2]
}

func txPerSec(s Step) float64 { return s.TxPerSec }
func cpuPerTx(s Step) float64 { return s.cpuPerTx().Seconds() }

// ratios are f(a) over f(b), run by run, and their median (0 if f is never positive).
func ratios(a, b []Step, f func(Step) float64) ([]float64, float64) {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if x, y := f(a[i]), f(b[i]); x > 0 && y > 0 {
			rs = append(rs, x/y)
		}
	}
	if len(rs) == 0 {
		return nil, 0
	}
	sorted := slices.Sorted(slices.Values(rs))
	mid := len(sorted) / 2
	if len(sorted)%2 == 0 {
		return rs, (sorted[mid-1] + sorted[mid]) / 2
	}
	return rs, sorted[mid]
}

// onFreshNet launches a network for w, sets it up, runs fn on it, and removes it.
func onFreshNet(ctx context.Context, cfg Config, w workload, fn func(*network) error) error {
	dir, err := os.MkdirTemp(cfg.Dir, "net-")
	if err != nil {
		return fmt.Errorf("chainbench: %w", err)
	}
	defer os.RemoveAll(dir)
	net, err := w.launch(dir, cfg)
	if err != nil {
		return err
	}
	defer net.stop()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := net.waitHeight(wctx, 2); err != nil {
		return err
	}
	if err := w.setup(ctx, net); err != nil {
		return fmt.Errorf("chainbench: %s: setup: %w", w.name(), err)
	}
	return fn(net)
}

// saturation is the step with the fewest submitters that committed at least 95 % of
// the most any step committed: more submitters only add latency.
func saturation(steps []Step) Step {
	best := slices.MaxFunc(steps, func(a, b Step) int { return cmp.Compare(a.TxPerSec, b.TxPerSec) })
	for _, s := range steps {
		if s.TxPerSec >= 0.95*best.TxPerSec {
			return s
		}
	}
	return best
}

func withinGoal(steps []Step) *Step {
	var best *Step
	for i, s := range steps {
		if s.Latency.P50 <= GoalP50 && (best == nil || s.TxPerSec > best.TxPerSec) {
			best = &steps[i]
		}
	}
	return best
}

// search doubles the concurrency from searchStart, each step on a fresh network, until
// two steps in a row commit less than 10 % more than the best before them (one such
// step may be noise), or MaxConcurrency is passed.
func search(ctx context.Context, cfg Config, w workload) ([]Step, error) {
	var steps []Step
	best, flat := 0.0, 0
	for c := searchStart; c <= cfg.MaxConcurrency && flat < 2; c *= 2 {
		var s Step
		err := onFreshNet(ctx, cfg, w, func(net *network) (err error) {
			s, err = measure(ctx, cfg, net, w, c, stepWarmup, cfg.StepDuration, 2*best)
			return err
		})
		if err != nil {
			return nil, err
		}
		steps = append(steps, s)
		if len(steps) > 1 && s.TxPerSec < 1.1*best {
			flat++
		} else {
			flat = 0
		}
		best = max(best, s.TxPerSec)
	}
	return steps, nil
}

// measure prepares the txs of one closed-loop measurement (expecting about rate tx/s)
// and runs it.
func measure(ctx context.Context, cfg Config, net *network, w workload, concurrency int, warmup, window time.Duration, rate float64) (Step, error) {
	rate = max(rate*1.25, 3000)
	p := newPool(w, net.height(), int(rate*(warmup+window).Seconds())+concurrency)
	s, err := closedLoop(ctx, net, p, concurrency, warmup, window)
	if err != nil {
		return s, fmt.Errorf("chainbench: %s at concurrency %d: %w", w.name(), concurrency, err)
	}
	s.BuiltLate = int(p.builtLate())
	extra := ""
	if s.BuiltLate > 0 {
		extra = fmt.Sprintf(" (%d txs built during the run)", s.BuiltLate)
	}
	fmt.Fprintf(cfg.Progress, "%-14s %4d in flight: %s%s\n", w.name(), concurrency, s, extra)
	return s, nil
}
