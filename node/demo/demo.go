// Package demo runs medledger's story end to end on this machine, with real
// components (Tink keys, leveldb block stores on disk, libp2p hosts on 127.0.0.1,
// bitswap) and embedded Synthea data, narrating each step. It succeeds only if every
// step behaves as expected.
//
// Today the story covers the encrypted record store; the consent chain, key release and
// audit steps join it as those capabilities land.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medledger/medledger"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/p2p"
	"github.com/medledger/medledger/node/record"
	"github.com/medledger/medledger/storage"
)

// Config configures a demo run.
type Config struct {
	Dir string // where the hospitals' homes go; a temporary directory if empty
}

const chainID = "medledger-demo"

type hospital struct {
	home  *home.Home
	store *storage.Store
	host  *p2p.Host
}

func (h *hospital) close() {
	if h.host != nil {
		h.host.Close()
	}
	h.store.Close()
}

func startHospital(ctx context.Context, dir, name string, members *p2p.Allowlist) (*hospital, error) {
	hm, err := home.Init(filepath.Join(dir, name), home.Config{Name: name, ChainID: chainID})
	if err != nil {
		return nil, err
	}
	store, err := storage.Open(ctx, hm.Path(home.BlocksDir))
	if err != nil {
		return nil, err
	}
	nodeKey, err := hm.Keys.Node.Ed25519PrivateKey()
	if err != nil {
		store.Close()
		return nil, err
	}
	host, err := p2p.New(ctx, p2p.Config{NodeKey: nodeKey, Members: members, Store: store, ListenAddrs: hm.Config.ListenAddrs})
	if err != nil {
		store.Close()
		return nil, err
	}
	return &hospital{home: hm, store: store, host: host}, nil
}

// Run runs the demo, narrating to w.
func Run(ctx context.Context, w io.Writer, cfg Config) error {
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "medledger-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	s := &story{ctx: ctx, w: w}
	fmt.Fprintf(w, "medledger demo — hospitals share encrypted FHIR records (homes in %s)\n\n", dir)

	members := p2p.NewAllowlist()
	a, err := startHospital(ctx, dir, "st-ada-general", members)
	if err != nil {
		return err
	}
	defer a.close()
	b, err := startHospital(ctx, dir, "bayside-clinic", members)
	if err != nil {
		return err
	}
	defer b.close()
	outsiderWants := p2p.NewAllowlist(a.host.ID())
	c, err := startHospital(ctx, dir, "outsider-labs", outsiderWants)
	if err != nil {
		return err
	}
	defer c.close()
	members.Set([]peer.ID{a.host.ID(), b.host.ID()})
	fmt.Fprintf(w, "  members: %s (A) and %s (B); %s (C) is not a member\n\n", a.home.Config.Name, b.home.Config.Name, c.home.Config.Name)

	s.a, s.b, s.c = a, b, c
	s.step("A ingests Synthea patient Bundles: validated, encrypted under a fresh key each, stored as ciphertext", s.ingest)
	s.step("A's block store holds no plaintext: no patient name or birth date in any block", s.scanBlocks)
	s.step("B fetches each record by CID over bitswap and decrypts it with the key A wrapped for B", s.memberFetch)
	s.step("C, not a member, is refused by A's connection gater and gets no block", s.outsiderRefused)
	s.step("C cannot use the key file A wrapped for B", s.stolenKey)
	s.step("An invalid Bundle is rejected with the path of the error, and nothing is stored", s.invalidRejected)
	return s.end()
}

type sample struct {
	plain []byte
	in    *node.Ingested
	forB  *record.KeyFile
}

type story struct {
	ctx     context.Context
	w       io.Writer
	a, b, c *hospital
	samples []sample
	n, bad  int
}

func (s *story) step(title string, f func() error) {
	s.n++
	fmt.Fprintf(s.w, "%d. %s\n", s.n, title)
	if err := f(); err != nil {
		s.bad++
		fmt.Fprintf(s.w, "   ✗ NOT AS EXPECTED: %v\n\n", err)
		return
	}
	fmt.Fprintf(s.w, "   ✓ as expected\n\n")
}

func (s *story) end() error {
	if s.bad > 0 {
		return fmt.Errorf("demo: %d of %d steps did not behave as expected", s.bad, s.n)
	}
	fmt.Fprintf(s.w, "All %d steps behaved as expected.\n", s.n)
	return nil
}

func (s *story) ingest() error {
	for i, name := range medledger.SampleBundles {
		plain, err := medledger.SampleData.ReadFile(name)
		if err != nil {
			return err
		}
		in, err := node.Ingest(s.ctx, s.a.home, s.a.store, bytes.NewReader(plain), nil, nil)
		if err != nil {
			return fmt.Errorf("bundle %d: %w", i+1, err)
		}
		// A hands B the DEK wrapped for B; the consent chain will decide this later.
		dek, err := node.CustodyDEK(s.a.home, in.ID)
		if err != nil {
			return err
		}
		forB, err := record.NewKeyFile(in.Sealed, dek, s.a.home.ChainID(), "", s.b.home.Keys.Wrap.Public())
		if err != nil {
			return err
		}
		s.samples = append(s.samples, sample{plain: plain, in: in, forB: forB})
		fmt.Fprintf(s.w, "   record %s  cid %s…  %7d bytes  %d data classes\n",
			in.ID, in.CID.String()[:20], in.Size, len(in.Classes))
	}
	return nil
}

func (s *story) scanBlocks() error {
	blocks, err := allBlocks(s.ctx, s.a.store)
	if err != nil {
		return err
	}
	terms := 0
	for _, smp := range s.samples {
		secrets, err := fhir.PHITerms(smp.plain)
		if err != nil {
			return err
		}
		terms += len(secrets)
		for _, blk := range blocks {
			for _, sec := range secrets {
				if bytes.Contains(blk, []byte(sec)) {
					return fmt.Errorf("a stored block contains a patient's name or birth date")
				}
			}
		}
	}
	fmt.Fprintf(s.w, "   searched %d blocks for %d names and birth dates: none found\n", len(blocks), terms)
	return nil
}

func (s *story) memberFetch() error {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if err := s.b.host.Connect(ctx, s.a.host.AddrInfo()); err != nil {
		return err
	}
	for _, smp := range s.samples {
		start := time.Now()
		r, err := s.b.host.Fetch(ctx, smp.in.CID)
		if err != nil {
			return err
		}
		plain, err := node.OpenRecord(s.b.home, smp.in.CID, smp.forB, r)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(plain)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, smp.plain) {
			return fmt.Errorf("record %s decrypted to different bytes", smp.in.ID)
		}
		fmt.Fprintf(s.w, "   record %s: %d bytes fetched, decrypted, byte-identical in %s\n",
			smp.in.ID, len(got), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (s *story) outsiderRefused() error {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	_ = s.c.host.Connect(ctx, s.a.host.AddrInfo())
	if _, err := s.c.host.Fetch(ctx, s.samples[0].in.CID); err == nil {
		return errors.New("the outsider fetched a record")
	}
	blocks, err := allBlocks(s.ctx, s.c.store)
	if err != nil {
		return err
	}
	if len(blocks) > 0 {
		return fmt.Errorf("the outsider holds %d blocks", len(blocks))
	}
	fmt.Fprintf(s.w, "   C's fetch gave up after 2s with 0 blocks received\n")
	return nil
}

func (s *story) stolenKey() error {
	_, _, err := s.samples[0].forB.Unwrap(s.c.home.Keys.Wrap)
	if !errors.Is(err, crypto.ErrUnwrap) {
		return fmt.Errorf("the outsider unwrapped the key wrapped for B: got %v, want refusal", err)
	}
	fmt.Fprintf(s.w, "   %v\n", err)
	return nil
}

func (s *story) invalidRejected() error {
	bad, err := medledger.SampleData.ReadFile(medledger.SampleInvalidBundle)
	if err != nil {
		return err
	}
	before, err := allBlocks(s.ctx, s.a.store)
	if err != nil {
		return err
	}
	_, err = node.Ingest(s.ctx, s.a.home, s.a.store, bytes.NewReader(bad), nil, nil)
	var verr *fhir.ValidationError
	if !errors.As(err, &verr) {
		return fmt.Errorf("got %v, want a FHIR validation error", err)
	}
	fmt.Fprintf(s.w, "   rejected: %v\n", err)
	after, err := allBlocks(s.ctx, s.a.store)
	if err != nil {
		return err
	}
	if len(after) != len(before) {
		return fmt.Errorf("block count went from %d to %d", len(before), len(after))
	}
	return nil
}

func allBlocks(ctx context.Context, s *storage.Store) ([][]byte, error) {
	keys, err := s.Blockstore().AllKeysChan(ctx)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for k := range keys {
		blk, err := s.Blockstore().Get(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, blk.RawData())
	}
	return out, nil
}
