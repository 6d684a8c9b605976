package node

// The requester's flow: ask the chain for access, obtain the record's key from a
// custodian over the key-release protocol, fetch the ciphertext over bitswap, and
// decrypt it.

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/p2p"
)

// Read asks the chain for access to a record for purpose and, if granted, obtains
// its key from a custodian and its ciphertext over bitswap, and decrypts it.
func (n *Node) Read(ctx context.Context, rec consent.RecordID, purpose consent.Purpose) (*api.Access, error) {
	return n.access(ctx, consent.Body{Kind: consent.KindRequest, Request: &consent.Request{Requester: n.id, Record: rec, Purpose: purpose}})
}

// Emergency is break-glass access with a coded reason: granted and flagged on the
// chain, then as Read.
func (n *Node) Emergency(ctx context.Context, rec consent.RecordID, reason string) (*api.Access, error) {
	return n.access(ctx, consent.Body{Kind: consent.KindEmergency, Emergency: &consent.Emergency{Requester: n.id, Record: rec, Reason: reason}})
}

func (n *Node) access(ctx context.Context, body consent.Body) (*api.Access, error) {
	start := time.Now()
	if err := n.servingErr(); err != nil {
		return nil, err
	}
	committed, err := n.submit(ctx, body)
	if err != nil {
		return nil, err
	}
	d, err := read(n, consent.GetDecision, consent.GrantID(committed.ID))
	if err != nil {
		return nil, err
	}
	if !d.Granted {
		n.metrics.accesses.WithLabelValues("denied").Inc()
		n.log.Info("access denied", "grant", d.ID, "record", d.Record, "reason", d.Reason)
		return nil, &api.Denied{Record: d.Record, Grant: d.ID, Reason: d.Reason}
	}
	plain, err := n.fetch(ctx, *d)
	if err != nil {
		var denied *api.Denied
		if errors.As(err, &denied) {
			n.metrics.accesses.WithLabelValues("refused").Inc()
		}
		return nil, err
	}
	n.metrics.accesses.WithLabelValues("granted").Inc()
	n.metrics.accessSeconds.Observe(time.Since(start).Seconds())
	n.log.Info("access granted", "grant", d.ID, "record", d.Record, "emergency", d.Emergency != "")
	return &api.Access{Decision: *d, Bundle: plain}, nil
}

// Fetch obtains the plaintext of a committed grant: the key from a custodian, the
// ciphertext over bitswap (or from this node's store).
func (n *Node) Fetch(ctx context.Context, grant consent.GrantID) ([]byte, error) {
	if err := n.servingErr(); err != nil {
		return nil, err
	}
	d, err := read(n, consent.GetDecision, grant)
	if err != nil {
		return nil, err
	}
	return n.fetch(ctx, *d)
}

func (n *Node) fetch(ctx context.Context, d consent.Decision) ([]byte, error) {
	rec, err := n.Record(ctx, d.Record)
	if err != nil {
		return nil, err
	}
	recID, err := crypto.ParseRecordID(string(rec.ID))
	if err != nil {
		return nil, err
	}
	root, err := cid.Decode(rec.CID)
	if err != nil {
		return nil, fmt.Errorf("node: record %s: CID: %w", rec.ID, err)
	}
	dek, err := n.obtainKey(ctx, d, *rec, recID)
	if err != nil {
		return nil, err
	}
	var ciphertext io.Reader
	if has, _ := n.store.Blockstore().Has(ctx, root); has {
		ciphertext, err = n.store.Open(ctx, root)
	} else {
		ciphertext, err = n.host.Fetch(ctx, root)
	}
	if err != nil {
		return nil, err
	}
	plain, err := decrypt(ciphertext, dek, n.home.ChainID(), recID)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(plain)
}

// servingErr is Serving's refusal as the API's 503: a node that is behind, stalled or
// failed reads no record for anyone.
func (n *Node) servingErr() error {
	if err := n.Serving(); err != nil {
		return &api.Unavailable{Reason: "node-unavailable", Detail: err.Error(), RetryAfter: 5 * time.Second}
	}
	return nil
}

// obtainKey gets the record's DEK for grant d from its custodians: this node's own
// custody copy when it is one (after the same checks), otherwise over the key-release
// protocol, trying custodians in turn. A custodian that refuses on the chain's word
// makes the access *api.Denied (the first such refusal); if none refused but none
// could answer either (not current, unreachable), it is *api.Unavailable: retry.
func (n *Node) obtainKey(ctx context.Context, d consent.Decision, rec consent.Record, recID crypto.RecordID) (*crypto.DEK, error) {
	wctx := crypto.WrapContext{Chain: n.home.ChainID(), Record: recID, Grant: crypto.GrantID(d.ID)}
	if rec.Shared() {
		dek, err := n.obtainShares(ctx, d, rec, wctx)
		if errors.Is(err, errReshared) || errors.As(err, new(*api.Unavailable)) || errors.As(err, new(*api.Denied)) {
			// A re-sharing may have switched the record while it was read (a custodian
			// answered for the new sharing; one not yet holding its new share refused
			// for lack of custody; one that handed its custody over refused as no
			// longer a custodian): once more, as it is now, if it changed. A refusal on
			// the chain's word comes again from the new custodians.
			if now, rerr := n.Record(ctx, rec.ID); rerr == nil && now.Epoch != rec.Epoch {
				dek, err = n.obtainShares(ctx, d, *now, wctx)
			}
		}
		if errors.Is(err, errReshared) {
			err = &api.Unavailable{Reason: "custody-unavailable", RetryAfter: 2 * time.Second,
				Detail: fmt.Sprintf("record %s is being re-shared: its custodians answered for different sharings; try again", rec.ID)}
		}
		return dek, err
	}
	var firstRefusal *api.Denied
	var errs []error
	for _, c := range rec.Custodians {
		resp, err := n.askCustodian(ctx, c, d)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("custodian %s: %w", c, err))
			continue
		case consent.Code(resp.Code) == consent.CodeNotCurrent:
			errs = append(errs, fmt.Errorf("custodian %s: %s", c, resp.Reason))
			continue
		case resp.Code != 0:
			if firstRefusal == nil {
				firstRefusal = &api.Denied{Record: d.Record, Grant: d.ID, Reason: consent.Code(resp.Code).String(), Detail: resp.Reason}
			}
			continue
		case resp.Record != string(rec.ID):
			errs = append(errs, fmt.Errorf("custodian %s answered for record %q", c, resp.Record))
			continue
		}
		dek, err := n.home.Keys.Wrap.Unwrap(resp.Wrapped, wctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("custodian %s: %w", c, err))
			continue
		}
		return dek, nil
	}
	if firstRefusal != nil {
		return nil, firstRefusal
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	n.log.Warn("no custodian released a key", "grant", d.ID, "record", rec.ID, "err", errors.Join(errs...))
	return nil, &api.Unavailable{Reason: consent.CodeNotCurrent.String(), RetryAfter: 2 * time.Second,
		Detail: fmt.Sprintf("no custodian of record %s could release its key now: %v", rec.ID, errors.Join(errs...))}
}

// askCustodian asks custodian c for grant d's key: itself directly, another over the
// key-release protocol. A failed exchange is tried once more on a fresh connection
// (a custodian that restarted leaves a stale QUIC connection that fails at once).
func (n *Node) askCustodian(ctx context.Context, c consent.HospitalID, d consent.Decision) (*p2p.ReleaseResponse, error) {
	if c == n.id {
		r := n.release(ctx, n.id, d.ID, int64(d.Height))
		return &r, nil
	}
	h, ok := n.hospital(c)
	if !ok {
		return nil, errors.New("not registered")
	}
	p, err := p2p.PeerID(ed25519.PublicKey(h.Node))
	if err != nil {
		return nil, err
	}
	req := p2p.ReleaseRequest{Grant: string(d.ID), Height: int64(d.Height)}
	var resp *p2p.ReleaseResponse
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			n.host.Disconnect(p)
		}
		if err = n.connect(ctx, h); err != nil {
			continue
		}
		if resp, err = n.host.RequestKey(ctx, p, req); err == nil || ctx.Err() != nil {
			break
		}
	}
	return resp, err
}

// ErrKeyMismatch means a key file is for another record or chain than asked.
var ErrKeyMismatch = errors.New("node: key file is for another record")

// OpenRecord opens the ciphertext of record c with the key file's DEK, which must be
// wrapped for this hospital. The plaintext is authentic only once the returned reader
// has reached io.EOF without error (see WriteFileAtomically).
func OpenRecord(h *home.Home, c cid.Cid, kf *KeyFile, ciphertext io.Reader) (io.Reader, error) {
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
	return decrypt(ciphertext, dek, h.ChainID(), id)
}

// decrypt returns a reader of the plaintext of the record id sealed in r. The plaintext
// is authentic only once the reader has returned io.EOF without error.
func decrypt(r io.Reader, dek *crypto.DEK, chain crypto.ChainID, id crypto.RecordID) (io.Reader, error) {
	return dek.Decrypt(r, crypto.Binding{Chain: chain, Record: id})
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

// errReshared: too few shares of the record as read, and a custodian answered with a
// share of a later sharing (a re-sharing switched the record meanwhile).
var errReshared = errors.New("node: the record was re-shared while its shares were asked")

// shareAnswer is one custodian's answer to a share request: its share (not yet
// verified), a refusal on the chain's word, or why it gave none.
type shareAnswer struct {
	custodian consent.HospitalID
	share     crypto.Share
	refusal   *api.Denied
	err       error
	stale     bool // the share is of another epoch than the record as read
}

// obtainShares gets a threshold record's key for grant d: it asks every custodian for
// its share at once and combines the first k that verify against the record's
// commitments (crypto.Combine), not waiting for the rest. A custodian whose share does
// not verify is named in the log (never the share). With fewer than k valid shares the
// access is *api.Denied if a custodian refused on the chain's word, else
// *api.Unavailable naming the custody that is missing.
func (n *Node) obtainShares(ctx context.Context, d consent.Decision, rec consent.Record, wctx crypto.WrapContext) (*crypto.DEK, error) {
	comm, err := crypto.ParseCommitments(rec.Commitments)
	if err != nil {
		return nil, fmt.Errorf("node: record %s: share commitments: %w", rec.ID, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan shareAnswer, len(rec.Custodians))
	for i, c := range rec.Custodians {
		go func() { answers <- n.askShare(ctx, c, crypto.ShareIndex(i+1), rec.Epoch, d, wctx) }()
	}
	var got []crypto.Share
	var reachable, missing []string
	var refusal *api.Denied
	var stale bool
	named := map[crypto.ShareIndex]bool{}
	for range rec.Custodians {
		a := <-answers
		switch {
		case a.refusal != nil:
			refusal = cmp.Or(refusal, a.refusal)
			missing = append(missing, fmt.Sprintf("%s refused: %s", a.custodian, a.refusal.Detail))
			continue
		case a.err != nil:
			missing = append(missing, fmt.Sprintf("%s: %v", a.custodian, a.err))
			stale = stale || a.stale
			continue
		}
		got = append(got, a.share)
		dek, bad, err := crypto.Combine(comm, got)
		for _, i := range bad {
			if !named[i] {
				named[i] = true
				liar := rec.Custodians[i-1]
				missing = append(missing, fmt.Sprintf("%s sent an invalid share", liar))
				n.log.Error("custodian released a share that does not verify against the record's commitments",
					"custodian", liar, "share", int(i), "grant", d.ID, "record", rec.ID)
			}
		}
		if !named[a.share.Index] {
			reachable = append(reachable, string(a.custodian))
		}
		if err == nil {
			return dek, nil
		}
	}
	if refusal != nil {
		return nil, refusal
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if stale {
		return nil, errReshared
	}
	detail := fmt.Sprintf("record %s needs %d of its %d custodians' key shares; valid shares from: %s; missing: %s",
		rec.ID, rec.Threshold, len(rec.Custodians), listOrNone(reachable), strings.Join(missing, "; "))
	n.log.Warn("too few custodians released a key share", "grant", d.ID, "record", rec.ID, "detail", detail)
	return nil, &api.Unavailable{Reason: "custody-unavailable", RetryAfter: 2 * time.Second, Detail: detail}
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// askShare asks custodian c for its share (index i) of grant d's record key and opens
// it. A refusal for lack of custody (the custodian holds no share, or has not accepted
// custody on the chain) counts as missing custody, not as the chain's word on the grant.
func (n *Node) askShare(ctx context.Context, c consent.HospitalID, i crypto.ShareIndex, epoch uint32, d consent.Decision, wctx crypto.WrapContext) shareAnswer {
	a := shareAnswer{custodian: c}
	resp, err := n.askCustodian(ctx, c, d)
	switch {
	case err != nil:
		a.err = err
	case consent.Code(resp.Code) == consent.CodeNotCurrent || consent.Code(resp.Code) == consent.CodeUnknownRecord ||
		consent.Code(resp.Code) == consent.CodeNoCustody:
		a.err = errors.New(resp.Reason)
	case resp.Code != 0:
		a.refusal = &api.Denied{Record: d.Record, Grant: d.ID, Reason: consent.Code(resp.Code).String(), Detail: resp.Reason}
	case resp.Epoch != epoch:
		// re-shared since this node read the record: not a lie, a share of the new sharing
		a.err = fmt.Errorf("answered with a share of the record's epoch %d, not %d (re-shared)", resp.Epoch, epoch)
		a.stale = true
	case resp.Record != string(d.Record) || crypto.ShareIndex(resp.Share) != i:
		a.err = fmt.Errorf("answered for record %q share %d, not share %d", resp.Record, resp.Share, i)
	default:
		a.share, a.err = n.home.Keys.Wrap.UnwrapShare(resp.Wrapped, wctx, i)
	}
	return a
}
