// Package auditbench measures the access log at scale: with a million access events in
// chain state, how long a patient waits for the newest page of their events, and how
// long it takes to fetch an event with its inclusion proof and check it (and the same
// for a consistency proof between two committed roots).
//
// The state is made by the real application: the consent state machine under the
// chain's ABCI adapter (node/abci.App, its LevelDB store in a temporary directory),
// driven directly through InitChain, FinalizeBlock and Commit with blocks of 1000
// signed txs (real Ed25519: every signature is verified in FinalizeBlock, as by a
// validator that did not see the tx in its mempool). No CometBFT consensus runs: it
// would order the same blocks, only slower, and the state a block leaves does not
// depend on how it was agreed. Txs are built and signed on every CPU while the
// previous block is applied; blocks are applied one at a time.
//
// Every tx is accepted and appends exactly one event; the run fails otherwise. The
// queries then go through App.Query, the ABCI query path a node serves (JSON
// included), one at a time: a random patient's newest page of events
// (/audit/events), and a random event (/audit/event/<i>) with its inclusion proof in
// the whole log (/audit/inclusion/<i>/<size>) checked with consent.VerifyInclusion
// against the root the chain committed in the last tx result. Consistency proofs go
// between two of the roots committed at the end of blocks. A proof that does not
// verify fails the run.
package auditbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/medledger/medledger/bench/chainbench"
	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain/abci"
)

// Goals.
const (
	GoalPatientP99 = 20 * time.Millisecond // a patient's newest page of events
	GoalProofP99   = 5 * time.Millisecond  // an event, its inclusion proof, and the check
)

// Config configures a run. The zero value is a full run.
type Config struct {
	// Events is the number of access events in state before measuring (default
	// 1,000,000; at least 100).
	Events int
	// Samples is how many of each query are measured (default 2000).
	Samples int
	// Progress receives a line now and then as the run goes; nil: nothing.
	Progress io.Writer
}

// Validate fills defaults and rejects nonsense.
func (c *Config) Validate() error {
	switch {
	case c.Events < 0 || c.Samples < 0:
		return errors.New("auditbench: counts must not be negative")
	case c.Events != 0 && c.Events < 100:
		return errors.New("auditbench: at least 100 events")
	}
	if c.Events == 0 {
		c.Events = 1_000_000
	}
	if c.Samples == 0 {
		c.Samples = 2000
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// Result is a run's outcome.
type Result struct {
	Events     uint64 `json:"events"` // in the access log
	Blocks     int64  `json:"blocks"`
	Patients   int    `json:"patients"`
	Hospitals  int    `json:"hospitals"`
	CPUs       int    `json:"cpus"`        // GOMAXPROCS
	StoreBytes int64  `json:"store_bytes"` // the app's LevelDB on disk
	// Kinds counts the events by kind.
	Kinds map[consent.AuditKind]int `json:"kinds"`
	// Generation is how fast the events went in.
	Generation Generation `json:"generation"`
	// PatientQuery is a random patient's newest page of events.
	PatientQuery chainbench.Latency `json:"patient_query"`
	// PageEvents is the mean number of events on those pages.
	PageEvents float64 `json:"page_events"`
	// Inclusion is a random event, its inclusion proof in the whole log, and the check.
	Inclusion chainbench.Latency `json:"inclusion"`
	// Consistency is a consistency proof between two committed roots, and the check.
	Consistency chainbench.Latency `json:"consistency"`
	// Verified counts the proofs checked, all of which verified.
	Verified int `json:"verified"`
}

// Generation is the time the state took to make.
type Generation struct {
	Seconds      float64 `json:"seconds"` // wall clock, building and signing included
	EventsPerSec float64 `json:"events_per_sec"`
	// ApplySeconds is the time in FinalizeBlock and Commit alone.
	ApplySeconds      float64 `json:"apply_seconds"`
	ApplyEventsPerSec float64 `json:"apply_events_per_sec"`
}

// Run makes the state in a temporary directory, measures and removes it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := build(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.measure(ctx, cfg.Samples, cfg.Progress)
}

// state is the app with the load's events in it.
type state struct {
	dir  string
	app  *abci.App
	load *load
	gen  *generated
	base Result // what making it found
}

// build makes the state of cfg.Events events in a temporary directory.
func build(ctx context.Context, cfg Config) (_ *state, err error) {
	dir, err := os.MkdirTemp("", "medledger-auditbench-")
	if err != nil {
		return nil, fmt.Errorf("auditbench: %w", err)
	}
	s := &state{dir: dir, load: newLoad(cfg.Events)}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.app, err = abci.NewApp(filepath.Join(dir, "app"), abci.NewConsentMachine(), nil); err != nil {
		return nil, err
	}
	s.base = Result{Hospitals: hospitals, Patients: len(s.load.patients), Kinds: map[consent.AuditKind]int{}}
	if s.gen, err = generate(ctx, s.app, s.load, cfg, &s.base); err != nil {
		return nil, err
	}
	if s.base.StoreBytes, err = dirSize(dir); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *state) close() {
	if s.app != nil {
		s.app.Close()
	}
	os.RemoveAll(s.dir)
}

// measure runs samples of each query against the state.
func (s *state) measure(ctx context.Context, samples int, progress io.Writer) (*Result, error) {
	res := s.base
	res.Kinds = maps.Clone(s.base.Kinds)
	res.CPUs = runtime.GOMAXPROCS(0)
	m := &measurer{ctx: ctx, app: s.app, gen: s.gen, r: rand.New(rand.NewPCG(3, 4)), patients: s.load.patients}
	if err := m.head(); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "measuring, %d samples each…\n", samples)
	if err := m.measure(samples, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// generated is what the chain committed while the state was made: the log's size and
// root at the end of every block in which it grew (from the blocks' tx results, not
// from the queries measured).
type generated struct {
	roots []consent.LogRoot
}

// generate applies the load's blocks to app, from genesis.
func generate(ctx context.Context, app *abci.App, l *load, cfg Config, res *Result) (*generated, error) {
	appState, err := l.genesis()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := app.InitChain(ctx, &abcitypes.RequestInitChain{ChainId: chainID, InitialHeight: 1, Time: genesisTime, AppStateBytes: appState}); err != nil {
		return nil, err
	}
	// Blocks are built and signed ahead, on every CPU, while the previous one applies.
	blocks := make(chan [][]byte, 2)
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(blocks)
		for txs := l.next(); txs != nil; txs = l.next() {
			select {
			case blocks <- txs:
			case <-bctx.Done():
				return
			}
		}
	}()
	g := &generated{}
	var apply time.Duration
	next := cfg.Events / 10
	for txs := range blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.Blocks++
		t0 := time.Now()
		root, err := applyBlock(ctx, app, res.Blocks, txs, res.Kinds)
		if err != nil {
			return nil, err
		}
		apply += time.Since(t0)
		g.roots = append(g.roots, root)
		res.Events = root.Size
		if int(res.Events) >= next {
			el := time.Since(start)
			fmt.Fprintf(cfg.Progress, "%9d events in %d blocks, %s, %.0f events/s\n", res.Events, res.Blocks,
				el.Round(time.Second), float64(res.Events)/el.Seconds())
			next += cfg.Events / 10
		}
	}
	if int(res.Events) != cfg.Events {
		return nil, fmt.Errorf("auditbench: the log holds %d events, want %d", res.Events, cfg.Events)
	}
	el := time.Since(start)
	res.Generation = Generation{Seconds: el.Seconds(), EventsPerSec: float64(res.Events) / el.Seconds(),
		ApplySeconds: apply.Seconds(), ApplyEventsPerSec: float64(res.Events) / apply.Seconds()}
	return g, nil
}

// applyBlock runs one block through the app and returns the log after it. Every tx
// must be accepted and append one event.
func applyBlock(ctx context.Context, app *abci.App, height int64, txs [][]byte, kinds map[consent.AuditKind]int) (consent.LogRoot, error) {
	fin, err := app.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{
		Height: height, Time: genesisTime.Add(time.Duration(height) * time.Second), Txs: txs})
	if err != nil {
		return consent.LogRoot{}, err
	}
	if _, err := app.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
		return consent.LogRoot{}, err
	}
	var last *consent.LogRoot
	for i, r := range fin.TxResults {
		if r.Code != 0 {
			return consent.LogRoot{}, fmt.Errorf("auditbench: height %d tx %d rejected: %s: %s", height, i, consent.Code(r.Code), r.Log)
		}
		if last, err = consent.DecodeLogRoot(r.Data); err != nil {
			return consent.LogRoot{}, fmt.Errorf("auditbench: height %d tx %d: %w", height, i, err)
		}
		kinds[kindOf(r.Events)]++
	}
	if last == nil {
		return consent.LogRoot{}, fmt.Errorf("auditbench: height %d has no txs", height)
	}
	return *last, nil
}

// kindOf is the kind of event a tx appended, from its ABCI events.
func kindOf(evs []abcitypes.Event) consent.AuditKind {
	attr := func(typ, k string) string {
		for _, e := range evs {
			for _, a := range e.Attributes {
				if e.Type == typ && a.Key == k {
					return a.Value
				}
			}
		}
		return ""
	}
	switch attr("tx", "kind") {
	case "register-record":
		return consent.AuditRecordRegistered
	case "grant":
		return consent.AuditConsentGranted
	case "revoke":
		return consent.AuditConsentRevoked
	case "emergency":
		return consent.AuditEmergency
	case "receipt":
		return consent.AuditKeyReleased
	case "review":
		return consent.AuditEmergencyReviewed
	case "request":
		if attr("access", "decision") == "granted" {
			return consent.AuditAccessGranted
		}
		return consent.AuditAccessDenied
	}
	return "other"
}

// measurer runs the queries against the app's committed state.
type measurer struct {
	ctx      context.Context
	app      *abci.App
	gen      *generated
	r        *rand.Rand
	patients []patient
	last     consent.LogRoot // the log the chain committed last
}

// head checks that the node's log head is the root the chain committed last.
func (m *measurer) head() error {
	m.last = m.gen.roots[len(m.gen.roots)-1]
	var head consent.LogRoot
	if err := m.query("/audit/head", nil, &head); err != nil {
		return err
	}
	if head.Size != m.last.Size || string(head.Root) != string(m.last.Root) {
		return fmt.Errorf("auditbench: the node's log head (%d, %x) is not what the chain committed (%d, %x)",
			head.Size, head.Root, m.last.Size, m.last.Root)
	}
	return nil
}

// measure runs the samples, interleaving the three kinds of query.
func (m *measurer) measure(samples int, res *Result) error {
	var patient, inclusion, consistency []time.Duration
	pageEvents := 0
	for range samples {
		t0 := time.Now()
		n, err := m.patientPage()
		if err != nil {
			return err
		}
		patient = append(patient, time.Since(t0))
		pageEvents += n

		t0 = time.Now()
		if err := m.inclusion(); err != nil {
			return err
		}
		inclusion = append(inclusion, time.Since(t0))

		t0 = time.Now()
		if err := m.consistency(); err != nil {
			return err
		}
		consistency = append(consistency, time.Since(t0))
		res.Verified += 2
	}
	res.PatientQuery = chainbench.LatencyOf(patient)
	res.Inclusion = chainbench.LatencyOf(inclusion)
	res.Consistency = chainbench.LatencyOf(consistency)
	res.PageEvents = float64(pageEvents) / float64(samples)
	return nil
}

// patientPage asks for a random patient's newest page and returns its length.
func (m *measurer) patientPage() (int, error) {
	p := m.patients[m.r.IntN(len(m.patients))].id
	data, err := json.Marshal(consent.AuditFilter{Patient: p})
	if err != nil {
		return 0, err
	}
	var page consent.AuditPage
	if err := m.query("/audit/events", data, &page); err != nil {
		return 0, err
	}
	if len(page.Events) == 0 {
		return 0, fmt.Errorf("auditbench: patient %s has no events", p)
	}
	for _, e := range page.Events {
		if e.Patient != p {
			return 0, fmt.Errorf("auditbench: patient %s's page holds event %d of %s", p, e.Index, e.Patient)
		}
	}
	return len(page.Events), nil
}

// inclusion fetches a random event and its inclusion proof in the last committed log,
// and checks it against that log's root.
func (m *measurer) inclusion() error {
	i := m.r.Uint64N(m.last.Size)
	var entry consent.LogEntry
	if err := m.query(fmt.Sprintf("/audit/event/%d", i), nil, &entry); err != nil {
		return err
	}
	var p consent.InclusionProof
	if err := m.query(fmt.Sprintf("/audit/inclusion/%d/%d", i, m.last.Size), nil, &p); err != nil {
		return err
	}
	if err := consent.VerifyInclusion(entry.Leaf, i, m.last.Size, p.Hashes(), m.last.Root); err != nil {
		return fmt.Errorf("auditbench: event %d: %w", i, err)
	}
	return nil
}

// consistency proves that a later committed root extends an earlier one, and checks it.
func (m *measurer) consistency() error {
	roots := m.gen.roots
	i, j := m.r.IntN(len(roots)), 0
	if len(roots) > 1 { // two different roots
		if j = m.r.IntN(len(roots) - 1); j >= i {
			j++
		}
	}
	a, b := roots[i], roots[j]
	if a.Size > b.Size {
		a, b = b, a
	}
	var p consent.ConsistencyProof
	if err := m.query(fmt.Sprintf("/audit/consistency/%d/%d", a.Size, b.Size), nil, &p); err != nil {
		return err
	}
	if err := consent.VerifyConsistency(a.Size, b.Size, a.Root, b.Root, p.Hashes()); err != nil {
		return fmt.Errorf("auditbench: heights %d to %d: %w", a.Height, b.Height, err)
	}
	return nil
}

// query asks the app, as a node's ABCI query would, and decodes the JSON answer.
func (m *measurer) query(path string, data []byte, v any) error {
	res, err := m.app.Query(m.ctx, &abcitypes.RequestQuery{Path: path, Data: data})
	if err != nil {
		return err
	}
	if res.Code != 0 {
		return fmt.Errorf("auditbench: query %s: %s: %s", path, consent.Code(res.Code), res.Log)
	}
	if err := json.Unmarshal(res.Value, v); err != nil {
		return fmt.Errorf("auditbench: query %s: %w", path, err)
	}
	return nil
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	return n, err
}
