package node_test

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/medledger/medledger/fhir/fhirtest"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/storage"
)

// heapSampler records two high-water marks above their starting levels: of the
// heap spans in use (live and not yet collected objects, and the free space in their
// spans: what the heap holds from the OS for objects), and of the live heap as each
// GC cycle measured it. With GOGC=100 the first runs to about twice the second.
type heapSampler struct {
	base, peak         uint64
	baseLive, peakLive uint64
	stop               chan struct{}
	done               sync.WaitGroup
}

// readHeap reads the heap in use and the live heap.
func readHeap() (inUse, live uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64(), s[2].Value.Uint64()
}

// startHeapSampler collects garbage, then samples the heap every 200 µs.
func startHeapSampler() *heapSampler {
	runtime.GC()
	h := &heapSampler{stop: make(chan struct{})}
	h.base, h.baseLive = readHeap()
	h.peak, h.peakLive = h.base, h.baseLive
	h.done.Go(func() {
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			inUse, live := readHeap()
			h.peak, h.peakLive = max(h.peak, inUse), max(h.peakLive, live)
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	})
	return h
}

// Stop returns the peaks above the starting levels.
func (h *heapSampler) Stop() (inUse, live uint64) {
	close(h.stop)
	h.done.Wait()
	return h.peak - h.base, h.peakLive - h.baseLive
}

// bigBundle is a valid Bundle of about size bytes made of copies of a Synthea
// bundle's entries.
func bigBundle(t testing.TB, size int) []byte {
	t.Helper()
	seed, err := os.ReadFile("../testdata/fhir/synthea/Cleo_Friesen_59907280-53b1-4677-92b9-83c1332a08b3.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := fhirtest.BigBundle(seed, size)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upload is a Bundle with its announced length, as a request body with a
// Content-Length.
type upload struct {
	io.Reader
	size int64
}

func (u upload) Size() int64 { return u.size }

// ingestHome is a fresh home with an on-disk block store and the given [ingest]
// config.
func ingestHome(t *testing.T, cfg home.IngestConfig) (*home.Home, *storage.Store) {
	t.Helper()
	h, err := home.Init(filepath.Join(t.TempDir(), "ada"), home.Config{Name: "Ada", Ingest: cfg})
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(t.Context(), h.Path(home.BlocksDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return h, store
}

// Slack is what the heap may hold beyond the ingests' own factor: mostly the block
// store's LevelDB memtables (64 MiB filling with the ciphertext written, and the
// previous one while it is flushed), and in use, those doubled like all live memory
// by the GC's headroom (GOGC=100).
const (
	liveSlack  = 160 << 20
	inUseSlack = 256 << 20
)

// The heap's peak during ingests stays within a small factor of the bytes of the
// Bundles the gate lets in at once (plus a constant), however many are in flight:
// one ingest holds its Bundle once, validates it one entry at a time and seals it
// as a stream. Live: 1.5x; in use, garbage included: 3x.
func TestIngestMemoryBounded(t *testing.T) {
	size, inFlight := 60_000_000, 8 // the measure
	if testing.Short() {
		size, inFlight = 12_000_000, 6
	}
	const allowed = 4 // the default max_concurrent; 4 x 60 MB fits the default max_bytes
	// The Bundle comes from a file, as an upload comes from the network: a copy in
	// the test's heap would raise the GC's target by as much.
	path := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(path, bigBundle(t, size), 0o600); err != nil {
		t.Fatal(err)
	}
	h, store := ingestHome(t, home.IngestConfig{MaxConcurrent: allowed, MaxWait: "5m"})
	g := node.NewIngestGate(h.Config.Ingest) // one gate for all, as a node has

	for _, n := range []int{1, inFlight} {
		s := startHeapSampler()
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				f, err := os.Open(path)
				if err != nil {
					t.Error(err)
					return
				}
				defer f.Close()
				if _, err := g.Ingest(t.Context(), h, store, upload{f, int64(size)}, nil, nil); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		inUse, live := s.Stop()
		let := uint64(size) * uint64(min(n, allowed))
		t.Logf("%d ingests in flight (%d at once) of %d bytes: heap peak %d MiB in use (%.2fx the bytes let in), %d MiB live (%.2fx)",
			n, min(n, allowed), size, inUse>>20, float64(inUse)/float64(let), live>>20, float64(live)/float64(let))
		if bound := 3*let + inUseSlack; inUse > bound {
			t.Errorf("%d ingests in flight: heap in use peaked at %d MiB, want at most %d MiB (3 x %d bytes x %d + %d MiB)",
				n, inUse>>20, bound>>20, size, min(n, allowed), inUseSlack>>20)
		}
		if bound := 3*let/2 + liveSlack; live > bound {
			t.Errorf("%d ingests in flight: live heap peaked at %d MiB, want at most %d MiB (1.5 x %d bytes x %d + %d MiB)",
				n, live>>20, bound>>20, size, min(n, allowed), liveSlack>>20)
		}
	}
}
