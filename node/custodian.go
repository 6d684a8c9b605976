package node

// The custodian's flow: a key release decided on committed state and recorded on the
// chain (receipt) before the key leaves, wrapped to the requester; and crypto-shredding,
// destroying this custodian's key of each record erased on the chain.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/p2p"
)

// Release answers a key-release request from a peer (p2p.Custodian): the peer must be
// a registered hospital's node, the grant must pass the chain's release check against
// committed state (granted, for that hospital, unexpired, consent not revoked, record
// not erased) and this hospital must be a custodian holding the key. The DEK goes
// out only HPKE-wrapped to the requester's registered key, bound to chain, record and
// grant; a receipt tx follows.
func (n *Node) Release(ctx context.Context, from peer.ID, req p2p.ReleaseRequest) p2p.ReleaseResponse {
	requester, ok := n.peerHospital(from)
	if !ok {
		n.metrics.releases.WithLabelValues(consent.CodeUnauthorized.String()).Inc()
		return refusal(consent.CodeUnauthorized, "peer is not a registered hospital's node")
	}
	return n.release(ctx, requester, consent.GrantID(req.Grant), req.Height)
}

// maxHeightWait bounds how long a custodian waits for its chain to reach the height
// a requester names (one or two blocks on a healthy network).
const maxHeightWait = 2 * time.Second

// receiptWait bounds how long a custodian waits for its release receipt to commit
// before it refuses as not current.
const receiptWait = 5 * time.Second

// waitHeight waits until this node has committed height h, ctx ends, or
// maxHeightWait passes; it reports whether the node reached h.
func (n *Node) waitHeight(ctx context.Context, h int64) bool {
	ctx, cancel := context.WithTimeout(ctx, maxHeightWait)
	defer cancel()
	return n.chain.WaitHeight(ctx, h) == nil
}

func refusal(code consent.Code, format string, args ...any) p2p.ReleaseResponse {
	return p2p.ReleaseResponse{Code: uint32(code), Reason: fmt.Sprintf(format, args...)}
}

// release decides a key release for requester and grant, receipt first: after its
// own checks against committed state, the custodian commits a receipt tx, which the
// chain accepts only while the grant still holds at that block (see consent's
// receipt), and answers the key only once this node has itself committed that block.
// So the key cannot leave ahead of the chain — a revocation committed before the
// receipt wins however stale this node was — and every release is in the access log
// before the key leaves. A node that cannot get its receipt committed in time (behind,
// stalled, no quorum) refuses as not current.
func (n *Node) release(ctx context.Context, requester consent.HospitalID, grant consent.GrantID, height int64) (resp p2p.ReleaseResponse) {
	defer func() {
		outcome := "released"
		if resp.Code != 0 {
			outcome = consent.Code(resp.Code).String()
			n.log.Info("key release refused", "grant", grant, "requester", requester, "code", outcome)
		}
		n.metrics.releases.WithLabelValues(outcome).Inc()
	}()
	if err := n.awaitServing(ctx, servingWait); err != nil {
		return refusal(consent.CodeNotCurrent, "this custodian cannot serve keys now: %v", err)
	}
	if !n.waitHeight(ctx, height) {
		return refusal(consent.CodeNotCurrent, "this custodian's chain is at height %d, behind the grant's %d; try again", n.chain.Height(), height)
	}
	if n.chain.CatchingUp() {
		return refusal(consent.CodeNotCurrent, "this custodian is catching up with the chain; try again")
	}
	rec, wrapped, share, err := n.prepareRelease(requester, grant)
	if err != nil {
		var rej *consent.Rejection
		if errors.As(err, &rej) {
			return refusal(rej.Code, "%s", rej.Log)
		}
		n.log.Error("release check failed", "grant", grant, "err", err)
		return refusal(consent.CodeNotCurrent, "the custodian could not read its chain state or key; try again")
	}
	rctx, cancel := context.WithTimeout(ctx, receiptWait)
	defer cancel()
	committed, err := n.submit(rctx, consent.Body{Kind: consent.KindReceipt, Receipt: &consent.Receipt{Custodian: n.id, Grant: grant}})
	if err != nil {
		var rej *consent.Rejection
		if errors.As(err, &rej) && rej.Code != consent.CodeReplay {
			return refusal(rej.Code, "%s", rej.Log)
		}
		n.log.Warn("key-release receipt not committed; nothing released", "grant", grant, "err", err)
		return refusal(consent.CodeNotCurrent, "the release could not be recorded on the chain in time; nothing was released; try again")
	}
	if err := n.Serving(); err != nil { // it failed while the receipt committed
		return refusal(consent.CodeNotCurrent, "this custodian cannot serve keys now: %v", err)
	}
	n.log.Info("key released", "grant", grant, "requester", requester, "record", rec.ID, "receipt_height", committed.Height)
	return p2p.ReleaseResponse{Record: string(rec.ID), Wrapped: wrapped, Share: uint8(share), Epoch: rec.Epoch}
}

// servingWait bounds how long a custodian that is unavailable for a moment (a block or
// two behind its peers just after catching up, say) waits to be current again before
// it refuses a release as not current.
const servingWait = 2 * time.Second

// awaitServing is Serving, waiting up to max (and ctx) for a node that is unavailable to
// become current; a failed node is refused at once. Releasing stays receipt first, so
// waiting here only spares the requester a retry.
func (n *Node) awaitServing(ctx context.Context, max time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	for {
		err := n.Serving()
		if err == nil || !errors.Is(err, ErrUnavailable) {
			return err
		}
		h := n.chain.Height()
		wait, stop := context.WithTimeout(ctx, 250*time.Millisecond) // health is judged on facts, not only heights
		n.chain.WaitHeight(wait, h+1)
		stop()
		if ctx.Err() != nil {
			return err
		}
	}
}

// prepareRelease is the custodian's own check before it commits a receipt, and the
// key it would answer: the chain's release check on this node's committed state (with
// the wall clock: the receipt's block time decides in the end), this hospital a
// custodian holding the key, the requester registered; then the DEK — or, for a record
// in threshold custody, this custodian's share of it (its index returned) —
// HPKE-wrapped to the requester's registered key, bound to chain, record and grant
// (and share index). A refusal is a *consent.Rejection; any other error is this node's
// own failure.
func (n *Node) prepareRelease(requester consent.HospitalID, grant consent.GrantID) (*consent.Record, []byte, crypto.ShareIndex, error) {
	rec, err := n.checkRelease(requester, grant, time.Now().Unix())
	if err != nil {
		return nil, nil, 0, err
	}
	h, ok := n.hospital(requester)
	if !ok {
		return nil, nil, 0, &consent.Rejection{Code: consent.CodeUnknownHospital, Log: "requester is not registered"}
	}
	recID, err := crypto.ParseRecordID(string(rec.ID))
	if err != nil {
		return nil, nil, 0, &consent.Rejection{Code: consent.CodeInvalid, Log: "record ID"}
	}
	wctx := crypto.WrapContext{Chain: n.home.ChainID(), Record: recID, Grant: crypto.GrantID(grant)}
	if rec.Shared() {
		wrapped, idx, err := n.wrapShare(rec, recID, crypto.WrapPublicKey(h.Wrap), wctx)
		return rec, wrapped, idx, err
	}
	dek, err := CustodyDEK(n.home, recID)
	if err := custodyErr(rec, "key", err); err != nil {
		return nil, nil, 0, err
	}
	wrapped, err := crypto.Wrap(dek, crypto.WrapPublicKey(h.Wrap), wctx)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("node: wrap the key of record %s: %w", rec.ID, err)
	}
	return rec, wrapped, 0, nil
}

// custodyErr is how a failure to open this custodian's key (or share) of rec answers:
// a refusal when it does not hold one, else this node's own failure.
func custodyErr(rec *consent.Record, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return &consent.Rejection{Code: consent.CodeUnknownRecord, Log: "this custodian does not hold the record's " + what}
	default: // a read or unwrap failure here is this node's, not the chain's word
		return fmt.Errorf("node: custody %s of record %s: %w", what, rec.ID, err)
	}
}

// wrapShare wraps this custodian's share of a threshold record for a requester. The
// ShareHook, a test seam, alters the share first: a custodian that lies. Its plaintext
// encoding is zeroed once parsed.
func (n *Node) wrapShare(rec *consent.Record, id crypto.RecordID, to crypto.WrapPublicKey, wctx crypto.WrapContext) ([]byte, crypto.ShareIndex, error) {
	s, err := n.ownShare(rec, id)
	if err := custodyErr(rec, "share", err); err != nil {
		return nil, 0, err
	}
	if n.shareHook != nil {
		b := s.Bytes()
		n.shareHook(b)
		s, err = crypto.ParseShare(b)
		clear(b)
		if err != nil {
			return nil, 0, err
		}
	}
	wrapped, err := crypto.WrapShare(s, to, wctx)
	if err != nil {
		return nil, 0, fmt.Errorf("node: wrap the share of record %s: %w", rec.ID, err)
	}
	return wrapped, s.Index, nil
}

// checkRelease is consent's release check on this node's committed state, at the later
// of the last block's time and now (Unix seconds: this node's clock), and the record
// it would release; then that this hospital is a custodian of it that has accepted
// custody (consent.CheckCustodian: a share that never verified is never released). A
// failed check is the *consent.Rejection saying which.
func (n *Node) checkRelease(requester consent.HospitalID, grant consent.GrantID, now int64) (*consent.Record, error) {
	var rec *consent.Record
	_, err := n.chain.ReadCommitted(func(r consent.Reader) error {
		last, err := consent.BlockTime(r)
		if err != nil {
			return err
		}
		if _, rec, err = consent.CheckRelease(r, grant, requester, max(last, now)); err != nil {
			return err
		}
		return consent.CheckCustodian(r, rec, n.id)
	})
	return rec, err
}

// CustodyKeyPath is where a custodian keeps a record's DEK, wrapped to itself.
func CustodyKeyPath(h *home.Home, id crypto.RecordID) string {
	return h.Path(home.DEKDir, id.String()+".key.json")
}

// CustodyDEK opens the custodian's own copy of a record's DEK.
func CustodyDEK(h *home.Home, id crypto.RecordID) (*crypto.DEK, error) {
	kf, err := ReadKeyFile(CustodyKeyPath(h, id))
	if err != nil {
		return nil, err
	}
	dek, _, err := kf.Unwrap(h.Keys.Wrap)
	return dek, err
}

// shredErased destroys this custodian's copy of the key (or its share of it) of every
// record erased since the log index from (crypto-shredding: the ciphertext becomes
// unreadable everywhere), unpins its ciphertext (a block-store GC then reclaims it; GC
// is not run here, where it could race an ingest between its import and its pin) and
// attests the erasure on the chain, unless the chain shows it attested already. It
// returns the log size it read to; on error it is called again from the same index
// (destroying what is destroyed is a no-op), so a custodian that was down attests when
// it is back.
func (n *Node) shredErased(ctx context.Context, from uint64) (uint64, error) {
	events, size, err := n.eventsSince(from, consent.AuditFilter{Hospital: n.id, Kind: consent.AuditRecordErased})
	if err != nil {
		return from, err
	}
	for _, e := range events {
		if !slices.Contains(e.Custodians, n.id) {
			continue
		}
		if err := n.shred(ctx, e.Record); err != nil {
			return from, err
		}
	}
	return size, nil
}

// shred destroys this custodian's key and share of an erased record and the share
// offers it still held for other custodians, unpins its ciphertext and attests the
// erasure.
func (n *Node) shred(ctx context.Context, id consent.RecordID) error {
	st, err := read(n, consent.Custody, id)
	if err != nil {
		return err
	}
	rec, err := n.Record(ctx, id)
	if err != nil {
		return err
	}
	sealed, err := sealedOf(rec)
	if err != nil {
		return err
	}
	shares, err := shareFiles(n.home, sealed.ID)
	if err != nil {
		return err
	}
	for _, path := range append(slices.Collect(maps.Values(shares)), CustodyKeyPath(n.home, sealed.ID)) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("node: destroy the key of erased record %s: %w", rec.ID, err)
		}
	}
	if err := removePending(n.home, rec.ID); err != nil {
		return fmt.Errorf("node: destroy the pending share offers of erased record %s: %w", rec.ID, err)
	}
	if err := n.store.Unpin(ctx, sealed.CID); err != nil {
		n.log.Warn("unpin of an erased record failed", "record", rec.ID, "err", err)
	}
	if !slices.Contains(st.Unattested, n.id) {
		return nil // attested before, at an earlier start
	}
	_, err = n.submit(ctx, consent.Body{Kind: consent.KindAttestErasure, AttestErasure: &consent.AttestErasure{Custodian: n.id, Record: rec.ID}})
	var rej *consent.Rejection
	switch {
	case errors.As(err, &rej) && rej.Code != consent.CodeDuplicate:
		// The chain's word is final: retrying would hold up every later erasure.
		n.log.Error("erasure attestation refused by the chain", "record", rec.ID, "code", rej.Code.String(), "reason", rej.Log)
		return nil
	case err != nil && rej == nil:
		return fmt.Errorf("node: attest the erasure of record %s: %w", rec.ID, err)
	}
	n.log.Info("erased record's key destroyed and erasure attested", "record", rec.ID, "height", rec.Erased)
	return nil
}
