package node

// The ingest flow: a FHIR Bundle is validated, sealed under a fresh DEK into the
// block store (pinned), its DEK kept wrapped to this hospital (or shared among the
// record's custodians: custody.go), and the record registered on the chain. The CLI's
// `record put` runs the same pipeline (Ingest) without the chain, its key whole.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/fhir"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/storage"
)

// Ingest validates a FHIR Bundle, seals it into the block store (pinned) under a fresh
// DEK kept wrapped to this hospital, and registers it on the chain for patient with
// this hospital as custodian. When the chain's custody is r > 1 (planCustody), the DEK
// is shared k-of-r among r custodians instead, this hospital keeping only its share,
// and Ingest returns once the record is available (k custodians accepted custody, this
// hospital's own acceptance counting as one) or every custodian has answered; the offers still out go on in
// the background until the node closes (distribute).
// If anything fails — invalid FHIR, the chain's refusal —
// nothing is kept; if the register tx's outcome is unknown (it may still commit), the
// key (or share), the other custodians' pending share offers and the ciphertext are
// kept so that the record stays readable if it does.
func (n *Node) Ingest(ctx context.Context, patient consent.PatientID, bundle io.Reader) (*consent.Record, error) {
	return n.IngestCustody(ctx, patient, bundle, api.Custody{})
}

var _ api.CustodyIngester = (*Node)(nil)

// IngestCustody is Ingest with the custody this hospital names: its custodians (this
// hospital among them, every one registered) and a threshold within 1 ≤ k ≤ r, the
// chain's defaults for what it leaves unset (planCustody). A custody out of bounds is
// a *consent.Rejection, checked before anything is stored.
func (n *Node) IngestCustody(ctx context.Context, patient consent.PatientID, bundle io.Reader, c api.Custody) (*consent.Record, error) {
	if !patient.Valid() {
		return nil, &consent.Rejection{Code: consent.CodeInvalid, Log: "patient ID must be 64 lowercase hex digits (an Ed25519 public key)"}
	}
	share, err := n.planCustody(c)
	if err != nil {
		return nil, err
	}
	in, err := n.ingest.ingestShared(ctx, n.home, n.store, bundle, share)
	if err != nil {
		return nil, err
	}
	classes := make([]consent.DataClass, len(in.Classes))
	for i, c := range in.Classes {
		classes[i] = consent.DataClass(c)
	}
	slices.Sort(classes)
	reg := &consent.RegisterRecord{Record: consent.RecordID(in.ID.String()), CID: in.CID.String(), Patient: patient,
		Classes: slices.Compact(classes), Custodians: []consent.HospitalID{n.id}}
	var pending []*pendingShare
	var claimed *claim
	distributing := false
	defer func() {
		if !distributing {
			n.unclaim(claimed) // the repair loop takes the offers from here
		}
	}()
	if share != nil {
		reg.Custodians, reg.Threshold, reg.Commitments = share.Custodians, share.Threshold, in.commitments.Bytes()
		// every custodian's share is durable, wrapped to it, before the record may
		// commit: a share held only in memory would be lost to a crash or an unknown
		// outcome, and the record with it
		claimed = n.claim(in.ID, share.Custodians)
		if pending, err = n.saveOffers(in.ID, in.shares, share); err != nil {
			n.forget(in.ID, in.CID)
			return nil, err
		}
		for _, p := range pending {
			p.claim = claimed
		}
	}
	if _, err := n.submit(ctx, consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: reg}); err != nil {
		// Forget the record only when the chain refused it. If the outcome is unknown
		// (no quorum, the request's deadline) the register tx may still commit, and a
		// record whose key was deleted could never be read: keep key and pin.
		var rej *consent.Rejection
		if errors.As(err, &rej) {
			n.forget(in.ID, in.CID)
		} else {
			n.log.Warn("register tx outcome unknown; the record's key and ciphertext are kept", "record", in.ID.String(), "err", err)
		}
		return nil, err
	}
	n.metrics.ingested.Inc()
	rec, err := n.Record(ctx, reg.Record)
	if err != nil {
		return nil, err
	}
	if share != nil {
		distributing = true
		n.distribute(ctx, rec, pending, share)
	}
	n.log.Info("record registered", "record", rec.ID, "height", rec.Height, "bytes", in.Size,
		"custodians", len(rec.Custodians), "threshold", rec.Threshold)
	return rec, nil
}

// forget drops a record this node sealed but could not register: its DEK or share,
// its pending share offers and its pin.
func (n *Node) forget(id crypto.RecordID, c cid.Cid) {
	os.Remove(CustodyKeyPath(n.home, id))
	os.Remove(ShareKeyPath(n.home, id))
	if err := removePending(n.home, consent.RecordID(id.String())); err != nil {
		n.log.Warn("pending share offers not removed", "record", id.String(), "err", err)
	}
	if err := n.store.Unpin(context.Background(), c); err != nil {
		n.log.Warn("unpin failed", "record", id.String(), "err", err)
	}
}

// Progress is told how many bytes of how many have passed; total is 0 when unknown.
type Progress func(done, total int64)

// Ingested is the outcome of ingesting a FHIR Bundle.
type Ingested struct {
	Sealed
	Key     *KeyFile
	Patient string   // the Bundle's Patient resource id (pseudonymous), if it has one
	Classes []string // resource types in the Bundle (data classes)
	// shares and commitments are the record key's shares, when it was shared among
	// custodians (then Key is nil): secret, held only until handed out.
	shares      []crypto.Share
	commitments crypto.Commitments
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
// durable. With a sharing the DEK is split among the custodians instead: this
// hospital's share is written (and the whole key only if the sharing keeps it), and
// every share returned in the Ingested for the caller to hand out.
func ingest(ctx context.Context, h *home.Home, store *storage.Store, bundle io.Reader, to crypto.WrapPublicKey, progress Progress, sync Syncer, s *sharing) (*Ingested, error) {
	b, err := fhir.ReadRecord(bundle, fhir.Limits{MaxBytes: maxBundleBytes}) // valid R4, and a Bundle type a record may be
	if err != nil {
		return nil, err
	}
	src := NewProgressReader(bytes.NewReader(b.Raw), int64(len(b.Raw)), progress)
	sealed, dek, err := seal(ctx, store, h.ChainID(), src)
	if err != nil {
		return nil, err
	}
	patient, _ := b.PatientID()
	in := &Ingested{Sealed: sealed, Patient: patient, Classes: b.ResourceTypes()}
	if s != nil {
		in.shares, in.commitments, err = s.keep(h, sealed, dek, sync)
	} else {
		in.Key, err = custody(h, sealed, dek, to, sync)
	}
	if err != nil {
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
func custody(h *home.Home, sealed Sealed, dek *crypto.DEK, to crypto.WrapPublicKey, sync Syncer) (*KeyFile, error) {
	own, err := NewKeyFile(sealed, dek, h.ChainID(), "", h.Keys.Wrap.Public())
	if err != nil {
		return nil, err
	}
	kf := own
	if to != nil {
		if kf, err = NewKeyFile(sealed, dek, h.ChainID(), "", to); err != nil {
			return nil, err
		}
	}
	if err := own.WriteSynced(CustodyKeyPath(h, sealed.ID), sync); err != nil {
		return nil, err
	}
	return kf, nil
}

// Sealed describes a record sealed into a block store.
type Sealed struct {
	ID   crypto.RecordID // chosen before encryption, bound into the ciphertext
	CID  cid.Cid         // root of the ciphertext's UnixFS DAG
	Size int64           // ciphertext bytes
}

// seal encrypts plaintext under a fresh DEK, bound to chain and a fresh record ID, and
// imports the ciphertext into store as it is produced (memory stays flat). The caller
// keeps the DEK only wrapped.
func seal(ctx context.Context, store *storage.Store, chain crypto.ChainID, plaintext io.Reader) (Sealed, *crypto.DEK, error) {
	id, err := crypto.NewRecordID()
	if err != nil {
		return Sealed{}, nil, err
	}
	dek, err := crypto.NewDEK()
	if err != nil {
		return Sealed{}, nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		w, err := dek.Encrypt(pw, crypto.Binding{Chain: chain, Record: id})
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		if _, err := io.Copy(w, plaintext); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(w.Close())
	}()
	c, n, err := store.Import(ctx, pr)
	pr.CloseWithError(errors.New("record: import ended")) // unblocks the encryptor on failure
	if err != nil {
		return Sealed{}, nil, fmt.Errorf("record: seal: %w", err)
	}
	return Sealed{ID: id, CID: c, Size: n}, dek, nil
}

// NewProgressReader reports each read of r to report.
func NewProgressReader(r io.Reader, total int64, report Progress) io.Reader {
	if report == nil {
		return r
	}
	return &progressReader{r: r, total: total, report: report}
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
