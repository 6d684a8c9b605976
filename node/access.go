package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/p2p"
	"github.com/medledger/medledger/node/record"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

var patientPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Ingest validates a FHIR Bundle, seals it into the block store (pinned) under a fresh
// DEK kept wrapped to this hospital, and registers it on the chain for patient with
// this hospital as custodian. If anything fails — invalid FHIR, the chain's refusal —
// nothing is kept; if the register tx's outcome is unknown (it may still commit), the
// key and ciphertext are kept so that the record stays readable if it does.
func (n *Node) Ingest(ctx context.Context, patient consent.PatientID, bundle io.Reader) (*consent.Record, error) {
	if !patientPattern.MatchString(string(patient)) {
		return nil, &consent.Rejection{Code: consent.CodeInvalid, Log: "patient ID must be 64 lowercase hex digits (an Ed25519 public key)"}
	}
	in, err := n.ingest.Ingest(ctx, n.home, n.store, bundle, nil, nil)
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
	if _, _, err := n.submit(ctx, consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: reg}); err != nil {
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
	var rec consent.Record
	if _, err := n.query("/record/"+string(reg.Record), nil, &rec); err != nil {
		return nil, err
	}
	n.log.Info("record registered", "record", rec.ID, "height", rec.Height, "bytes", in.Size)
	return &rec, nil
}

// forget drops a record this node sealed but could not register: its DEK and pin.
func (n *Node) forget(id crypto.RecordID, c cid.Cid) {
	os.Remove(CustodyKeyPath(n.home, id))
	if err := n.store.Unpin(context.Background(), c); err != nil {
		n.log.Warn("unpin failed", "record", id.String(), "err", err)
	}
}

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
	committed, _, err := n.submit(ctx, body)
	if err != nil {
		return nil, err
	}
	var d consent.Decision
	if _, err := n.query("/grant/"+string(committed.ID), nil, &d); err != nil {
		return nil, err
	}
	if !d.Granted {
		n.metrics.accesses.WithLabelValues("denied").Inc()
		n.log.Info("access denied", "grant", d.ID, "record", d.Record, "reason", d.Reason)
		return nil, &api.Denied{Record: d.Record, Grant: d.ID, Reason: d.Reason}
	}
	plain, err := n.fetch(ctx, d)
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
	return &api.Access{Decision: d, Bundle: plain}, nil
}

// Fetch obtains the plaintext of a committed grant: the key from a custodian, the
// ciphertext over bitswap (or from this node's store).
func (n *Node) Fetch(ctx context.Context, grant consent.GrantID) ([]byte, error) {
	if err := n.servingErr(); err != nil {
		return nil, err
	}
	var d consent.Decision
	if _, err := n.query("/grant/"+string(grant), nil, &d); err != nil {
		return nil, err
	}
	return n.fetch(ctx, d)
}

func (n *Node) fetch(ctx context.Context, d consent.Decision) ([]byte, error) {
	var rec consent.Record
	if _, err := n.query("/record/"+string(d.Record), nil, &rec); err != nil {
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
	dek, err := n.obtainKey(ctx, d, rec, recID)
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
	plain, err := record.Open(ciphertext, dek, n.home.ChainID(), recID)
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
	if n.chain.Height() >= h {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, maxHeightWait)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for n.chain.Height() < h {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
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
	committed, _, err := n.submit(rctx, consent.Body{Kind: consent.KindReceipt, Receipt: &consent.Receipt{Custodian: n.id, Grant: grant}})
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
	var rel consent.Release
	_, err := n.query("/release/"+string(grant)+"/"+string(requester), []byte(strconv.FormatInt(time.Now().Unix(), 10)), &rel)
	switch {
	case errors.Is(err, api.ErrNotFound):
		return "", nil, &consent.Rejection{Code: consent.CodeUnknownGrant, Log: "no such grant"}
	case err != nil:
		return "", nil, err
	}
	if !slices.Contains(rel.Record.Custodians, n.id) {
		return "", nil, &consent.Rejection{Code: consent.CodeUnauthorized, Log: "this hospital is not a custodian of the record"}
	}
	h, ok := n.hospital(requester)
	if !ok {
		return "", nil, &consent.Rejection{Code: consent.CodeUnknownHospital, Log: "requester is not registered"}
	}
	recID, err := crypto.ParseRecordID(string(rel.Record.ID))
	if err != nil {
		return "", nil, &consent.Rejection{Code: consent.CodeInvalid, Log: "record ID"}
	}
	dek, err := CustodyDEK(n.home, recID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil, &consent.Rejection{Code: consent.CodeUnknownRecord, Log: "this custodian does not hold the record's key"}
	case err != nil: // a read or unwrap failure here is this node's, not the chain's word
		return "", nil, fmt.Errorf("node: custody key of record %s: %w", rel.Record.ID, err)
	}
	wrapped, err := crypto.Wrap(dek, crypto.WrapPublicKey(h.Wrap), crypto.WrapContext{Chain: n.home.ChainID(), Record: recID, Grant: crypto.GrantID(grant)})
	if err != nil {
		return "", nil, fmt.Errorf("node: wrap the key of record %s: %w", rel.Record.ID, err)
	}
	return rel.Record.ID, wrapped, nil
}
