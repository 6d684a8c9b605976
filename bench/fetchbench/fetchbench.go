// Package fetchbench measures what encryption costs a record's transfer: a bitswap
// fetch of a sealed record followed by its decryption, against a bitswap fetch of the
// same bytes stored raw, between two hosts in this process on 127.0.0.1 (TCP) with
// LevelDB block stores on disk.
//
// Both sides are measured the same way, so that their ratio means something: one
// source host holds both payloads, imported before anything is measured; every fetch
// goes into a fresh receiver (its own empty store and host, connected before the
// clock starts), which is closed after; the two sides alternate, each round taking
// the other first, after a warm-up round that is not counted; each side's figure is
// the median of its rounds.
package fetchbench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/p2p"
	"github.com/medledger/medledger/storage"
)

// Config configures a run. The zero value is a full run with defaults.
type Config struct {
	// Sizes are the payloads' sizes in bytes (default 1 MiB and 64 MiB).
	Sizes []int
	// Rounds is how many fetches of each side are measured per size (default 15).
	Rounds int
	// Dir holds the block stores; default a temporary directory, removed after.
	Dir string
	// Progress receives a line per size as the run goes; nil: nothing.
	Progress io.Writer
}

// Validate fills defaults and rejects nonsense.
func (c *Config) Validate() error {
	if c.Rounds < 0 {
		return errors.New("fetchbench: rounds must not be negative")
	}
	for _, n := range c.Sizes {
		if n <= 0 {
			return fmt.Errorf("fetchbench: size %d", n)
		}
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{1 << 20, 64 << 20}
	}
	if c.Rounds == 0 {
		c.Rounds = 15
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// Result is a run's outcome: one entry per size.
type Result struct {
	Sizes []SizeResult `json:"sizes"`
}

// SizeResult is one payload size's measurements.
type SizeResult struct {
	Bytes     int  `json:"bytes"`
	Raw       Side `json:"raw"`       // bitswap fetch of the bytes stored raw
	Decrypted Side `json:"decrypted"` // bitswap fetch of the sealed record + decryption
	// Ratio is Decrypted's median throughput over Raw's.
	Ratio float64 `json:"ratio"`
}

// Side is one side's fetches.
type Side struct {
	MBps    float64   `json:"mb_per_sec"` // median throughput, of the payload's bytes (10^6 B/s)
	Seconds []float64 `json:"seconds"`    // each measured fetch, in order
}

// chainID binds the sealed payloads; any value does.
const chainID crypto.ChainID = "medledger-fetchbench"

// Run measures every size.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "fetchbench-")
		if err != nil {
			return nil, fmt.Errorf("fetchbench: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	res := &Result{}
	for _, n := range cfg.Sizes {
		r, err := runSize(ctx, cfg, n)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Progress, "%8d bytes: raw %6.1f MB/s, decrypted %6.1f MB/s, ratio %.2f\n", n, r.Raw.MBps, r.Decrypted.MBps, r.Ratio)
		res.Sizes = append(res.Sizes, r)
	}
	return res, nil
}

// payload is what a side fetches, and how it reads it.
type payload struct {
	root cid.Cid
	open func(r io.Reader) (io.Reader, error)
}

func runSize(ctx context.Context, cfg Config, n int) (SizeResult, error) {
	out := SizeResult{Bytes: n}
	members := p2p.NewAllowlist()
	src, err := newPeer(ctx, cfg.Dir, members)
	if err != nil {
		return out, err
	}
	defer src.close()
	data := make([]byte, n)
	mrand.NewChaCha8([32]byte{9}).Read(data)
	raw, sealed, err := importBoth(ctx, src.store, data)
	if err != nil {
		return out, err
	}
	sides := []payload{raw, sealed}
	times := [2][]time.Duration{}
	for round := range cfg.Rounds + 1 { // round 0 warms up
		for k := range 2 {
			side := (round + k) % 2 // alternate which side goes first
			d, err := fetchOnce(ctx, cfg.Dir, members, src, sides[side], n)
			if err != nil {
				return out, err
			}
			if round > 0 {
				times[side] = append(times[side], d)
			}
		}
	}
	out.Raw, out.Decrypted = sideOf(times[0], n), sideOf(times[1], n)
	if out.Raw.MBps > 0 {
		out.Ratio = out.Decrypted.MBps / out.Raw.MBps
	}
	return out, nil
}

// importBoth stores data raw and sealed under a fresh key in store.
func importBoth(ctx context.Context, store *storage.Store, data []byte) (raw, sealed payload, err error) {
	raw.open = func(r io.Reader) (io.Reader, error) { return r, nil }
	if raw.root, _, err = store.Import(ctx, bytes.NewReader(data)); err != nil {
		return raw, sealed, fmt.Errorf("fetchbench: import: %w", err)
	}
	id, err := crypto.NewRecordID()
	if err != nil {
		return raw, sealed, err
	}
	dek, err := crypto.NewDEK()
	if err != nil {
		return raw, sealed, err
	}
	binding := crypto.Binding{Chain: chainID, Record: id}
	var ct bytes.Buffer
	w, err := dek.Encrypt(&ct, binding)
	if err != nil {
		return raw, sealed, err
	}
	if _, err := w.Write(data); err != nil {
		return raw, sealed, err
	}
	if err := w.Close(); err != nil {
		return raw, sealed, err
	}
	if sealed.root, _, err = store.Import(ctx, &ct); err != nil {
		return raw, sealed, fmt.Errorf("fetchbench: import: %w", err)
	}
	sealed.open = func(r io.Reader) (io.Reader, error) { return dek.Decrypt(r, binding) }
	return raw, sealed, nil
}

// fetchOnce fetches p from src into a fresh receiver and reads it to the end; the
// time is from the fetch's start to the last byte read.
func fetchOnce(ctx context.Context, dir string, members *p2p.Allowlist, src *peerNode, p payload, n int) (time.Duration, error) {
	dst, err := newPeer(ctx, dir, members)
	if err != nil {
		return 0, err
	}
	defer dst.close()
	members.Set([]peer.ID{src.host.ID(), dst.host.ID()})
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := dst.host.Connect(ctx, tcpOnly(src.host.AddrInfo())); err != nil {
		return 0, fmt.Errorf("fetchbench: connect: %w", err)
	}
	start := time.Now()
	r, err := dst.host.Fetch(ctx, p.root)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	plain, err := p.open(r)
	if err != nil {
		return 0, err
	}
	got, err := io.Copy(io.Discard, plain)
	d := time.Since(start)
	if err != nil || got != int64(n) {
		return 0, fmt.Errorf("fetchbench: read %d of %d bytes: %v", got, n, err)
	}
	return d, nil
}

func sideOf(ds []time.Duration, n int) Side {
	s := Side{}
	for _, d := range ds {
		s.Seconds = append(s.Seconds, d.Seconds())
	}
	if len(ds) == 0 {
		return s
	}
	sorted := slices.Sorted(slices.Values(ds))
	median := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		median = (sorted[len(sorted)/2-1] + median) / 2
	}
	s.MBps = float64(n) / median.Seconds() / 1e6
	return s
}

// peerNode is a host with its own block store on disk.
type peerNode struct {
	store *storage.Store
	host  *p2p.Host
	dir   string
}

func newPeer(ctx context.Context, parent string, members *p2p.Allowlist) (*peerNode, error) {
	dir, err := os.MkdirTemp(parent, "peer-")
	if err != nil {
		return nil, fmt.Errorf("fetchbench: %w", err)
	}
	store, err := storage.Open(ctx, filepath.Join(dir, "blocks"))
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader) // never fails (crypto/rand)
	h, err := p2p.New(ctx, p2p.Config{NodeKey: key, Members: members, Store: store})
	if err != nil {
		return nil, errors.Join(err, store.Close(), os.RemoveAll(dir))
	}
	return &peerNode{store: store, host: h, dir: dir}, nil
}

func (p *peerNode) close() {
	_ = p.host.Close()
	_ = p.store.Close()
	_ = os.RemoveAll(p.dir)
}

// tcpOnly is pi without its QUIC addresses: the fetch goes over TCP.
func tcpOnly(pi peer.AddrInfo) peer.AddrInfo {
	out := peer.AddrInfo{ID: pi.ID}
	for _, a := range pi.Addrs {
		if a[len(a)-1].Protocol().Name == "tcp" {
			out.Addrs = append(out.Addrs, a)
		}
	}
	return out
}
