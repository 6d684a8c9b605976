package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/record"
	"github.com/medledger/medledger/storage"
)

// Progress is told how many bytes of how many have passed; total is 0 when unknown.
type Progress func(done, total int64)

// Ingested is the outcome of ingesting a FHIR Bundle.
type Ingested struct {
	record.Sealed
	Key     *record.KeyFile
	Patient string   // the Bundle's Patient resource id (pseudonymous), if it has one
	Classes []string // resource types in the Bundle (data classes)
}

// maxBundleBytes is the largest Bundle an ingest takes (fhir.Limits.MaxBytes), and
// what an ingest whose size is not announced counts against IngestGate's bytes.
const maxBundleBytes = 64 << 20

// Ingest validates a FHIR Bundle, seals it under a fresh DEK into the home's block
// store (pinned), and wraps the DEK for the recipient (this hospital if nil). Invalid
// input is rejected before anything is written. It runs through a gate of its own made
// from the home's [ingest] config (one ingest: the CLI's `record put`); a node's
// ingests share the node's IngestGate, so that its caps hold across them.
//
// When it returns, the custodian's own copy of the DEK is durable on disk (synced
// with its directory), so the record may be registered on the chain; on any error
// nothing is kept: no key file, no pin.
func Ingest(ctx context.Context, h *home.Home, store *storage.Store, bundle io.Reader, to crypto.WrapPublicKey, progress Progress) (*Ingested, error) {
	return NewIngestGate(h.Config.Ingest).Ingest(ctx, h, store, bundle, to, progress)
}

// ingest is Ingest once the gate has let it in; the gate's sync makes the DEK file
// durable.
func ingest(ctx context.Context, h *home.Home, store *storage.Store, bundle io.Reader, to crypto.WrapPublicKey, progress Progress, sync record.Syncer) (*Ingested, error) {
	b, err := fhir.ReadRecord(bundle, fhir.Limits{MaxBytes: maxBundleBytes}) // valid R4, and a Bundle type a record may be
	if err != nil {
		return nil, err
	}
	src := NewProgressReader(bytes.NewReader(b.Raw), int64(len(b.Raw)), progress)
	sealed, dek, err := record.Seal(ctx, store, h.ChainID(), src)
	if err != nil {
		return nil, err
	}
	patient, _ := b.PatientID()
	in := &Ingested{Sealed: sealed, Patient: patient, Classes: b.ResourceTypes()}
	if in.Key, err = custody(h, sealed, dek, to, sync); err != nil {
		if uerr := store.Unpin(context.WithoutCancel(ctx), sealed.CID); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return nil, err
	}
	return in, nil
}

// custody writes the custodian's own copy of dek, wrapped to itself (custody grant
// ""), durably; and returns the key file for to (that copy when to is nil). On error
// no key file is left.
func custody(h *home.Home, sealed record.Sealed, dek *crypto.DEK, to crypto.WrapPublicKey, sync record.Syncer) (*record.KeyFile, error) {
	own, err := record.NewKeyFile(sealed, dek, h.ChainID(), "", h.Keys.Wrap.Public())
	if err != nil {
		return nil, err
	}
	kf := own
	if to != nil {
		if kf, err = record.NewKeyFile(sealed, dek, h.ChainID(), "", to); err != nil {
			return nil, err
		}
	}
	if err := own.WriteSynced(CustodyKeyPath(h, sealed.ID), sync); err != nil {
		return nil, err
	}
	return kf, nil
}

// CustodyKeyPath is where a custodian keeps a record's DEK, wrapped to itself.
func CustodyKeyPath(h *home.Home, id crypto.RecordID) string {
	return h.Path(home.DEKDir, id.String()+".key.json")
}

// CustodyDEK opens the custodian's own copy of a record's DEK.
func CustodyDEK(h *home.Home, id crypto.RecordID) (*crypto.DEK, error) {
	kf, err := record.ReadKeyFile(CustodyKeyPath(h, id))
	if err != nil {
		return nil, err
	}
	dek, _, err := kf.Unwrap(h.Keys.Wrap)
	return dek, err
}

// ErrKeyMismatch means a key file is for another record or chain than asked.
var ErrKeyMismatch = errors.New("node: key file is for another record")

// OpenRecord opens the ciphertext of record c with the key file's DEK, which must be
// wrapped for this hospital. The plaintext is authentic only once the returned reader
// has reached io.EOF without error (see WriteFileAtomically).
func OpenRecord(h *home.Home, c cid.Cid, kf *record.KeyFile, ciphertext io.Reader) (io.Reader, error) {
	if kf.CID != c.String() {
		return nil, fmt.Errorf("%w: it names CID %s", ErrKeyMismatch, kf.CID)
	}
	if kf.Chain != h.ChainID() {
		return nil, fmt.Errorf("%w: it is for chain %q, this node is on %q", ErrKeyMismatch, kf.Chain, h.ChainID())
	}
	dek, id, err := kf.Unwrap(h.Keys.Wrap)
	if err != nil {
		return nil, err
	}
	return record.Open(ciphertext, dek, h.ChainID(), id)
}

// NewProgressReader reports each read of r to report.
func NewProgressReader(r io.Reader, total int64, report Progress) io.Reader {
	if report == nil {
		return r
	}
	return &progressReader{r: r, total: total, report: report}
}

// WriteFileAtomically copies r into a temporary file beside path and renames it into
// place only if r ends cleanly; on failure nothing is left behind.
func WriteFileAtomically(path string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".medledger-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

type progressReader struct {
	r      io.Reader
	done   int64
	total  int64
	report Progress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.report(p.done, p.total)
	return n, err
}
