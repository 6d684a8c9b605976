package node

// The custodian's flow: a key release decided on committed state and recorded on the
// chain (receipt) before the key leaves, wrapped to the requester; and crypto-shredding,
// destroying this custodian's key of each record erased on the chain.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
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
	n.mu.RLock()
	requester, ok := n.registry.byPeer[from]
	n.mu.RUnlock()
	if !ok {
		// The registry may have changed since the last refresh.
		if err := n.refreshRegistry(); err == nil {
			n.mu.RLock()
			requester, ok = n.registry.byPeer[from]
			n.mu.RUnlock()
		}
	}
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
	if err := n.Serving(); err != nil {
		return refusal(consent.CodeNotCurrent, "this custodian cannot serve keys now: %v", err)
	}
	if !n.waitHeight(ctx, height) {
		return refusal(consent.CodeNotCurrent, "this custodian's chain is at height %d, behind the grant's %d; try again", n.chain.Height(), height)
	}
	if n.chain.CatchingUp() {
		return refusal(consent.CodeNotCurrent, "this custodian is catching up with the chain; try again")
	}
	record, wrapped, err := n.prepareRelease(requester, grant)
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
	n.log.Info("key released", "grant", grant, "requester", requester, "record", record, "receipt_height", committed.Height)
	return p2p.ReleaseResponse{Record: string(record), Wrapped: wrapped}
}

// prepareRelease is the custodian's own check before it commits a receipt, and the
// key it would answer: the chain's release check on this node's committed state (with
// the wall clock: the receipt's block time decides in the end), this hospital a
// custodian holding the key, the requester registered; then the DEK HPKE-wrapped to the
// requester's registered key, bound to chain, record and grant. A refusal is a
// *consent.Rejection; any other error is this node's own failure.
func (n *Node) prepareRelease(requester consent.HospitalID, grant consent.GrantID) (consent.RecordID, []byte, error) {
	rec, err := n.checkRelease(requester, grant, time.Now().Unix())
	if err != nil {
		return "", nil, err
	}
	if !slices.Contains(rec.Custodians, n.id) {
		return "", nil, &consent.Rejection{Code: consent.CodeUnauthorized, Log: "this hospital is not a custodian of the record"}
	}
	h, ok := n.hospital(requester)
	if !ok {
		return "", nil, &consent.Rejection{Code: consent.CodeUnknownHospital, Log: "requester is not registered"}
	}
	recID, err := crypto.ParseRecordID(string(rec.ID))
	if err != nil {
		return "", nil, &consent.Rejection{Code: consent.CodeInvalid, Log: "record ID"}
	}
	dek, err := CustodyDEK(n.home, recID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil, &consent.Rejection{Code: consent.CodeUnknownRecord, Log: "this custodian does not hold the record's key"}
	case err != nil: // a read or unwrap failure here is this node's, not the chain's word
		return "", nil, fmt.Errorf("node: custody key of record %s: %w", rec.ID, err)
	}
	wrapped, err := crypto.Wrap(dek, crypto.WrapPublicKey(h.Wrap), crypto.WrapContext{Chain: n.home.ChainID(), Record: recID, Grant: crypto.GrantID(grant)})
	if err != nil {
		return "", nil, fmt.Errorf("node: wrap the key of record %s: %w", rec.ID, err)
	}
	return rec.ID, wrapped, nil
}

// checkRelease is consent's release check on this node's committed state, at the later
// of the last block's time and now (Unix seconds: this node's clock), and the record
// it would release. A failed check is the *consent.Rejection saying which.
func (n *Node) checkRelease(requester consent.HospitalID, grant consent.GrantID, now int64) (*consent.Record, error) {
	var rec *consent.Record
	_, err := n.chain.ReadCommitted(func(r consent.Reader) error {
		last, err := consent.BlockTime(r)
		if err != nil {
			return err
		}
		_, rec, err = consent.CheckRelease(r, grant, requester, max(last, now))
		return err
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

// shredErased destroys this custodian's copy of the key of every record erased since
// the log index from (crypto-shredding: the ciphertext becomes unreadable everywhere)
// and unpins its ciphertext (a block-store GC then reclaims it; GC is not run here,
// where it could race an ingest between its import and its pin). It returns the log
// size it read to.
func (n *Node) shredErased(ctx context.Context, from uint64) (uint64, error) {
	events, size, err := n.eventsSince(from, consent.AuditFilter{Hospital: n.id, Kind: consent.AuditRecordErased})
	if err != nil {
		return from, err
	}
	for _, e := range events {
		if !slices.Contains(e.Custodians, n.id) {
			continue
		}
		rec, err := n.Record(ctx, e.Record)
		if err != nil {
			return from, err
		}
		id, err := crypto.ParseRecordID(string(rec.ID))
		if err != nil {
			return from, err
		}
		if err := os.Remove(CustodyKeyPath(n.home, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return from, fmt.Errorf("node: destroy the key of erased record %s: %w", rec.ID, err)
		}
		if c, err := cid.Decode(rec.CID); err == nil {
			if err := n.store.Unpin(ctx, c); err != nil {
				n.log.Warn("unpin of an erased record failed", "record", rec.ID, "err", err)
			}
		}
		n.log.Info("erased record's key destroyed", "record", rec.ID, "height", e.Height)
	}
	return size, nil
}
