package chainbench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// submitTimeout bounds one tx's wait for its commit.
const submitTimeout = time.Minute

// pool hands out txs built ahead of time; when they run out, it builds more on the
// spot (and counts them: they cost the chain CPU).
type pool struct {
	w      workload
	height int64
	txs    [][]byte
	next   atomic.Int64
	late   atomic.Int64
	bytes  atomic.Int64 // of the txs handed out
	handed atomic.Int64
}

func newPool(w workload, height int64, n int) *pool {
	p := &pool{w: w, height: height, txs: make([][]byte, n)}
	parallel(n, func(i int) { p.txs[i] = w.tx(height) })
	return p
}

func (p *pool) take() []byte {
	var tx []byte
	if i := p.next.Add(1) - 1; i < int64(len(p.txs)) {
		tx, p.txs[i] = p.txs[i], nil
	} else {
		p.late.Add(1)
		tx = p.w.tx(p.height)
	}
	p.bytes.Add(int64(len(tx)))
	p.handed.Add(1)
	return tx
}

func (p *pool) builtLate() int64 { return p.late.Load() }

func (p *pool) meanBytes() int {
	if n := p.handed.Load(); n > 0 {
		return int(p.bytes.Load() / n)
	}
	return 0
}

// closedLoop runs concurrency submitters, spread over the network's nodes, each
// submitting a tx and waiting for its commit before the next, for warmup and then the
// measured window.
func closedLoop(ctx context.Context, net *network, p *pool, concurrency int, warmup, window time.Duration) (Step, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	begin := time.Now()
	from, to := begin.Add(warmup), begin.Add(warmup+window)
	type tally struct {
		committed, failed, errs int
		latencies               []time.Duration
		err                     error
	}
	tallies := make([]tally, concurrency)
	var wg sync.WaitGroup
	for g := range concurrency {
		submit := net.nodes[g%len(net.nodes)]
		t := &tallies[g]
		wg.Go(func() {
			for t.err == nil && ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(to) {
					return
				}
				err := submitOne(ctx, submit, p.take())
				t1 := time.Now()
				inWindow := !t1.Before(from) && t1.Before(to)
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					if t.errs++; t.errs > 100 {
						t.err = err // not a hiccup: give up
						cancel()
					}
					if inWindow {
						t.failed++
					}
					continue
				case inWindow:
					t.committed++
				}
				if !t0.Before(from) {
					t.latencies = append(t.latencies, t1.Sub(t0))
				}
			}
		})
	}
	var h0, h1 int64
	var cpu0, cpu1 time.Duration
	var cpuOK bool
	wg.Go(func() {
		sleepUntil(ctx, from)
		h0 = net.height()
		cpu0, cpuOK = processCPU()
		sleepUntil(ctx, to)
		h1 = net.height()
		cpu1, _ = processCPU()
	})
	wg.Wait()
	s := Step{Concurrency: concurrency, Seconds: window.Seconds(), Blocks: h1 - h0, TxBytes: p.meanBytes()}
	if cpuOK {
		s.CPUSeconds = (cpu1 - cpu0).Seconds()
	}
	var lat []time.Duration
	for _, t := range tallies {
		if t.err != nil {
			return s, t.err
		}
		s.Committed += t.committed
		s.Failed += t.failed
		lat = append(lat, t.latencies...)
	}
	if err := ctx.Err(); err != nil {
		return s, err
	}
	s.TxPerSec = float64(s.Committed) / s.Seconds
	s.Latency = LatencyOf(lat)
	return s, nil
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}

// unloaded commits n txs one at a time, through each node in turn, and returns their
// latencies.
func unloaded(ctx context.Context, net *network, w workload, n int) (Latency, error) {
	lat := make([]time.Duration, 0, n)
	for i := range n {
		tx := w.tx(net.height())
		t0 := time.Now()
		if err := submitOne(ctx, net.nodes[i%len(net.nodes)], tx); err != nil {
			return Latency{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	return LatencyOf(lat), nil
}

// Latency summarises commit latencies.
type Latency struct {
	N             int
	P50, P99, Max time.Duration
}

// LatencyOf summarises durations (it sorts ds).
func LatencyOf(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return Latency{N: len(ds), P50: q(0.50), P99: q(0.99), Max: ds[len(ds)-1]}
}

func (l Latency) String() string {
	return fmt.Sprintf("p50 %v p99 %v max %v (%d txs)", ms(l.P50), ms(l.P99), ms(l.Max), l.N)
}

func (s Step) String() string {
	return fmt.Sprintf("%6.0f tx/s, %5.1f txs/block, CPU %v/tx, latency %s", s.TxPerSec, s.txsPerBlock(), s.cpuPerTx().Round(time.Microsecond), s.Latency)
}

// cpuPerTx is the process's CPU time per committed tx in the window (0 if unknown).
func (s Step) cpuPerTx() time.Duration {
	if s.Committed == 0 {
		return 0
	}
	return time.Duration(s.CPUSeconds * float64(time.Second) / float64(s.Committed))
}

func (s Step) txsPerBlock() float64 {
	if s.Blocks == 0 {
		return 0
	}
	return float64(s.Committed) / float64(s.Blocks)
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

type latencyJSON struct {
	N     int     `json:"n"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// MarshalJSON writes the latencies in milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(latencyJSON{N: l.N, P50ms: msFloat(l.P50), P99ms: msFloat(l.P99), MaxMs: msFloat(l.Max)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Latency) UnmarshalJSON(b []byte) error {
	var j latencyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*l = Latency{N: j.N, P50: fromMs(j.P50ms), P99: fromMs(j.P99ms), Max: fromMs(j.MaxMs)}
	return nil
}

func msFloat(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func fromMs(f float64) time.Duration  { return time.Duration(math.Round(f*1000)) * time.Microsecond }
