package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/home"
)

// countingReader counts the bytes read from it and announces a size.
type countingReader struct {
	r    io.Reader
	n    int
	size int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countingReader) Size() int64 { return c.size }

// wantBusy checks err is the gate's refusal: ErrIngestBusy, and an
// *api.Unavailable that the API answers with 503 and Retry-After.
func wantBusy(t *testing.T, err error, retry time.Duration) {
	t.Helper()
	var u *api.Unavailable
	if !errors.Is(err, node.ErrIngestBusy) || !errors.As(err, &u) || u.RetryAfter != retry || u.Reason != "ingest-busy" {
		t.Fatalf("got %v, want ErrIngestBusy with an *api.Unavailable retrying after %s", err, retry)
	}
}

// A full gate refuses an ingest after its wait, having read and stored nothing;
// the count and the byte cap each fill it, and room comes back on release.
func TestIngestGate(t *testing.T) {
	h, store := ingestHome(t, home.IngestConfig{})
	g := node.NewIngestGate(home.IngestConfig{MaxConcurrent: 2, MaxBytes: 1000, MaxWait: "50ms"})
	sample := bigBundle(t, 1) // one copy of the seed's entries, about 1.5 MB
	try := func(size int64) (*countingReader, error) {
		r := &countingReader{r: bytes.NewReader(sample), size: size}
		_, err := g.Ingest(t.Context(), h, store, r, nil, nil)
		return r, err
	}

	// Bytes: 800 of 1000 held; 300 more do not fit, 200 do.
	release, err := g.Hold(t.Context(), 800)
	if err != nil {
		t.Fatal(err)
	}
	r, err := try(300)
	wantBusy(t, err, 50*time.Millisecond)
	if r.n != 0 {
		t.Errorf("a refused ingest read %d bytes, want none", r.n)
	}
	if _, err := try(200); err != nil {
		t.Errorf("an ingest of 200 bytes with 200 free: %v", err)
	}
	// An unannounced size counts as the largest Bundle, capped at the gate's bytes.
	if _, err := g.Ingest(t.Context(), h, store, io.MultiReader(bytes.NewReader(sample)), nil, nil); !errors.Is(err, node.ErrIngestBusy) {
		t.Errorf("an ingest of unannounced size with 200 of 1000 bytes free: got %v, want ErrIngestBusy", err)
	}

	// Count: two slots, both held.
	release2, err := g.Hold(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = try(1)
	wantBusy(t, err, 50*time.Millisecond)
	release()
	release2()
	if _, err := try(900); err != nil {
		t.Errorf("after release: %v", err)
	}

	// A caller that gives up while waiting gets its own error, not ErrIngestBusy.
	release, _ = g.Hold(t.Context(), 1000)
	defer release()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := g.Ingest(ctx, h, store, bytes.NewReader(sample), nil, nil); !errors.Is(err, context.Canceled) || errors.Is(err, node.ErrIngestBusy) {
		t.Errorf("cancelled while waiting: got %v, want context.Canceled", err)
	}

	n, err := store.GC(t.Context())
	if err != nil || n != 0 {
		t.Errorf("GC after refused ingests removed %d blocks (%v): a refused or failed ingest left blocks", n, err)
	}
}
