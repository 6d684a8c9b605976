package node

// Re-sharing, the node's part (the chain's is consent/reshare.go). When a hospital
// leaves and a threshold record it held is being re-shared, each node follows the
// re-sharings on the chain after every height:
//   - an old custodian deals its share again to the new set (crypto.Reshare), each
//     sub-share HPKE-wrapped to its new custodian, in a DealShares tx;
//   - once the chain has k deals, a new custodian opens its sub-shares, combines them
//     into its new share (crypto.CombineSubShares), checks it against the new
//     commitments, holds every block of the ciphertext, keeps the share durably and
//     accepts custody of the new sharing;
//   - once the record has switched to the new epoch, a custodian destroys its shares
//     of earlier epochs, and a former custodian also unpins the ciphertext.
// A deal's sub-share that does not verify against its dealer's commitments names the
// dealer in the log, and this node does not accept custody: the record stays with its
// old custodians (fail closed) until another re-sharing.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/home"
)

// ShareKeyPathAt is where a custodian keeps its share of a record's key of the given
// epoch (ShareKeyPath for epoch 0, the sharing made at ingest).
func ShareKeyPathAt(h *home.Home, id crypto.RecordID, epoch uint32) string {
	if epoch == 0 {
		return ShareKeyPath(h, id)
	}
	return h.Path(home.DEKDir, id.String()+".share."+strconv.FormatUint(uint64(epoch), 10)+".json")
}

// shareFiles lists this custodian's share files of a record, by epoch.
func shareFiles(h *home.Home, id crypto.RecordID) (map[uint32]string, error) {
	paths, err := filepath.Glob(filepath.Join(h.Path(home.DEKDir), id.String()+".share*.json"))
	if err != nil {
		return nil, err
	}
	out := map[uint32]string{}
	for _, p := range paths {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), id.String()+".share"), ".json")
		if name == "" {
			out[0] = p
			continue
		}
		e, err := strconv.ParseUint(strings.TrimPrefix(name, "."), 10, 32)
		if err != nil || e == 0 {
			continue // not a share file's name
		}
		out[uint32(e)] = p
	}
	return out, nil
}

// heldShares lists, from one directory read at start, the records that re-sharing
// touched here: those this custodian holds a share file of another epoch than 0 of
// (a re-shared record's, or one of a round that was started again), or more than one
// (stopped between a switch and the destruction of its old share). The records held
// only in epoch 0 it returns apart (others): one of them needs a look only if this
// hospital is no longer its custodian (it handed its custody over and was down while
// the record was re-shared without it), which handedOver finds from the chain once it
// has caught up. A custodian that missed a switch into which it was re-shared is in the
// new set, and the re-sharing waits for it on the chain (followReshares).
func heldShares(h *home.Home) (look, others map[consent.RecordID]bool) {
	paths, _ := filepath.Glob(filepath.Join(h.Path(home.DEKDir), "*.share*.json"))
	files := map[consent.RecordID]int{}
	look, others = map[consent.RecordID]bool{}, map[consent.RecordID]bool{}
	for _, p := range paths {
		id, rest, _ := strings.Cut(filepath.Base(p), ".")
		if _, err := crypto.ParseRecordID(id); err != nil {
			continue
		}
		files[consent.RecordID(id)]++
		if rest != "share.json" || files[consent.RecordID(id)] > 1 {
			look[consent.RecordID(id)] = true
		}
	}
	for id := range files {
		if !look[id] {
			others[id] = true
		}
	}
	return look, others
}

// handedOver moves to n.reshared the records of n.unchecked (heldShares' others) that
// the chain no longer lists this hospital a custodian of, once the node can show its
// state is current (Serving: a node behind would see custodies it has since handed
// over). It reports whether the look was made.
func (n *Node) handedOver() bool {
	n.mu.Lock()
	unchecked := n.unchecked
	n.mu.Unlock()
	if unchecked == nil {
		return true
	}
	if n.Serving() != nil { // not current: catching up, behind its peers, or alone
		return false
	}
	held, err := read(n, consent.HeldRecords, n.id)
	if err != nil {
		n.log.Warn("re-sharing: the records this hospital holds could not be read", "err", err)
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for id := range unchecked {
		if _, found := slices.BinarySearch(held, id); !found {
			n.reshared[id] = true // dropStale finds whether it was re-shared without this hospital
			delete(n.unchecked, id)
		}
	}
	// Serving says the node is current as far as its peers tell; the look is made again
	// for a while, in case a peer that told it had not caught up either.
	if time.Since(n.startedAt) > handedOverWindow {
		n.unchecked = nil
	}
	return true
}

// handedOverWindow is how long after start handedOver looks again at the records held
// only in epoch 0 (at each re-sharing round of the loop).
const handedOverWindow = 2 * time.Minute

// reshareStepWait bounds one step of a re-sharing (a deal, or taking a new share with
// its blocks): a step that does not finish is tried again at a later height.
const reshareStepWait = time.Minute

// reshareLoop follows the re-sharings after each new height (and every repair
// interval, for a chain that makes no blocks), apart from the registry's loop so that a
// slow fetch holds up nothing else.
func (n *Node) reshareLoop() {
	defer n.wg.Done()
	n.onHeights(repairInterval, func() {
		n.handedOver()
		n.followReshares(n.ctx)
	})
}

// followReshares takes this node's part in every re-sharing in progress, then
// destroys the shares re-sharings made stale. A node that is not current (catching up,
// say) only notes the re-sharings it sees pass: a deal or a share taken from an old
// state would be refused, and the wait for it would hold up this loop.
func (n *Node) followReshares(ctx context.Context) {
	list, err := read(n, func(r consent.Reader, _ struct{}) ([]consent.Reshare, error) { return consent.Reshares(r) }, struct{}{})
	if err != nil {
		n.log.Warn("re-sharing check failed", "err", err)
		return
	}
	n.mu.Lock()
	for _, rs := range list {
		n.reshared[rs.Record] = true
	}
	n.mu.Unlock()
	if n.Serving() != nil {
		return
	}
	for _, rs := range list {
		if ctx.Err() != nil {
			return
		}
		step, cancel := context.WithTimeout(ctx, reshareStepWait)
		err := n.reshareStep(step, &rs)
		cancel()
		if err != nil {
			n.log.Warn("re-sharing", "record", rs.Record, "epoch", rs.Epoch, "err", err)
		}
	}
	n.dropStaleShares(ctx)
}

// reshareStep deals this custodian's share, or takes its new share, as rs needs.
func (n *Node) reshareStep(ctx context.Context, rs *consent.Reshare) error {
	rec, err := n.Record(ctx, rs.Record)
	if err != nil {
		return err
	}
	switch {
	case rec.Erased != 0:
		return nil
	case rs.Switched && rec.Epoch == rs.Epoch:
		// a late new custodian: its acceptance now counts for the record itself
		st, err := n.Custody(ctx, rec.ID)
		if err != nil || !slices.Contains(rec.Custodians, n.id) ||
			slices.ContainsFunc(st.Accepted, func(a consent.Attestation) bool { return a.Custodian == n.id }) {
			return err
		}
		return n.takeReshared(ctx, rec, rs)
	case rec.Epoch+1 != rs.Epoch:
		return nil
	case !rs.Ready() && slices.Contains(rs.From, n.id) && !slices.ContainsFunc(rs.Deals, func(d consent.Deal) bool { return d.Dealer == n.id }):
		return n.deal(ctx, rec, rs)
	case rs.Ready() && slices.Contains(rs.To, n.id) && !slices.ContainsFunc(rs.Accepted, func(a consent.Attestation) bool { return a.Custodian == n.id }):
		return n.takeReshared(ctx, rec, rs)
	}
	return nil
}

// deal deals this custodian's share of rec again to rs's new custodians.
func (n *Node) deal(ctx context.Context, rec *consent.Record, rs *consent.Reshare) error {
	sealed, err := sealedOf(rec)
	if err != nil {
		return err
	}
	own, err := n.ownShare(rec, sealed.ID)
	if err != nil {
		return fmt.Errorf("open this custodian's share: %w", err)
	}
	subs, commitments, err := crypto.Reshare(own, rs.Threshold, len(rs.To))
	if err != nil {
		return err
	}
	rctx := crypto.ReshareContext{Chain: n.home.ChainID(), Record: sealed.ID, Epoch: rs.Epoch, Round: uint64(rs.Height), Dealer: own.Index}
	wrapped := make([][]byte, len(subs))
	for i, s := range subs {
		h, ok := n.hospital(rs.To[i])
		if !ok {
			return fmt.Errorf("new custodian %s is not in the registry", rs.To[i])
		}
		if wrapped[i], err = crypto.WrapSubShare(s, crypto.WrapPublicKey(h.Wrap), rctx); err != nil {
			return err
		}
	}
	_, err = n.submit(ctx, consent.Body{Kind: consent.KindDealShares, DealShares: &consent.DealShares{
		Dealer: n.id, Record: rec.ID, Epoch: rs.Epoch, Round: rs.Height, Commitments: commitments.Bytes(), Shares: wrapped}})
	if ignorable(err) {
		return nil
	}
	if err == nil {
		n.log.Info("re-sharing: share dealt", "record", rec.ID, "epoch", rs.Epoch)
	}
	return err
}

// ignorable reports whether a chain's refusal means the step is no longer needed: done
// already, or the re-sharing moved on.
func ignorable(err error) bool {
	var rej *consent.Rejection
	return errors.As(err, &rej) && (rej.Code == consent.CodeDuplicate || rej.Code == consent.CodeErased)
}

// takeReshared makes this hospital's share of rs's new sharing from the deals, checks
// it, holds the record's blocks, keeps the share and accepts custody of the new sharing.
func (n *Node) takeReshared(ctx context.Context, rec *consent.Record, rs *consent.Reshare) error {
	sealed, err := sealedOf(rec)
	if err != nil {
		return err
	}
	me, _ := rs.ShareIndexIn(n.id)
	newC, err := crypto.ParseCommitments(rs.Commitments)
	if err != nil {
		return err
	}
	dealers := make([]crypto.ShareIndex, len(rs.Deals))
	deals := make([]crypto.Commitments, len(rs.Deals))
	subs := make([]crypto.Share, len(rs.Deals))
	var unopened []string
	for i, d := range rs.Deals {
		dealers[i] = d.Index
		if deals[i], err = crypto.ParseCommitments(d.Commitments); err != nil {
			return err
		}
		rctx := crypto.ReshareContext{Chain: n.home.ChainID(), Record: sealed.ID, Epoch: rs.Epoch, Round: uint64(rs.Height), Dealer: d.Index}
		if int(me) > len(d.Shares) {
			return fmt.Errorf("the deal of %s has no sub-share for this custodian", d.Dealer)
		}
		if subs[i], err = n.home.Keys.Wrap.UnwrapSubShare(d.Shares[me-1], rctx, me); err != nil {
			unopened = append(unopened, string(d.Dealer))
		}
	}
	if len(unopened) > 0 {
		n.log.Error("re-sharing: a dealer's sub-share does not open with this custodian's key; custody not accepted",
			"record", rec.ID, "epoch", rs.Epoch, "dealers", strings.Join(unopened, ","))
		return nil
	}
	share, bad, err := crypto.CombineSubShares(me, dealers, deals, subs)
	if len(bad) > 0 {
		var names []string
		for _, b := range bad {
			if j := slices.Index(dealers, b); j >= 0 {
				names = append(names, string(rs.Deals[j].Dealer))
			}
		}
		n.log.Error("re-sharing: a dealer's sub-share does not verify against its commitments; custody not accepted",
			"record", rec.ID, "epoch", rs.Epoch, "dealers", strings.Join(names, ","))
		return nil
	}
	if err != nil {
		return err
	}
	if err := crypto.VerifyShare(newC, share); err != nil {
		return fmt.Errorf("the new share does not verify against the new commitments: %w", err)
	}
	if err := n.host.FetchAll(ctx, sealed.CID); err != nil {
		return err
	}
	if err := n.store.Pin(ctx, sealed.CID); err != nil {
		return err
	}
	if err := n.keepShare(sealed, share, rs.Epoch); err != nil {
		return err
	}
	_, err = n.submit(ctx, consent.Body{Kind: consent.KindAcceptCustody, AcceptCustody: &consent.AcceptCustody{
		Custodian: n.id, Record: rec.ID, Commitments: rs.CommitmentsHash()}})
	if ignorable(err) {
		return nil
	}
	if err == nil {
		n.log.Info("re-sharing: new share taken and custody accepted", "record", rec.ID, "epoch", rs.Epoch)
	}
	return err
}

// keepShare writes share as this custodian's share of epoch, durably. A file there
// already (a crash before the acceptance, or an earlier round of the re-sharing that
// was started again) is kept if it holds this share and replaced if not.
func (n *Node) keepShare(sealed Sealed, share crypto.Share, epoch uint32) error {
	path := ShareKeyPathAt(n.home, sealed.ID, epoch)
	if kf, err := ReadKeyFile(path); err == nil {
		held, err := n.home.Keys.Wrap.UnwrapShare(kf.Wrapped, crypto.WrapContext{Chain: n.home.ChainID(), Record: sealed.ID}, kf.Share)
		a, b := share.Bytes(), held.Bytes()
		same := err == nil && bytes.Equal(a, b)
		clear(a)
		clear(b)
		if same {
			return nil
		}
		if err := os.Remove(path); err != nil {
			return err
		}
	}
	kf, err := newShareFile(sealed, share, n.home.ChainID(), n.home.Keys.Wrap.Public())
	if err != nil {
		return err
	}
	return kf.WriteSynced(path, n.ingest.sync)
}

// dropStaleShares destroys, for every record this node took part in re-sharing, its
// shares but that of the record's current epoch while it is a custodian and that of
// the re-sharing in progress while it is in its new set, and unpins the ciphertext of
// a record it is no longer a custodian of.
func (n *Node) dropStaleShares(ctx context.Context) {
	n.mu.Lock()
	ids := make([]consent.RecordID, 0, len(n.reshared))
	for id := range n.reshared {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		done, err := n.dropStale(ctx, id)
		if err != nil {
			n.log.Warn("re-sharing: stale shares not destroyed", "record", id, "err", err)
			continue
		}
		if done {
			n.mu.Lock()
			delete(n.reshared, id)
			n.mu.Unlock()
		}
	}
}

// dropStale destroys this node's stale shares of record id; done means no re-sharing
// of it is in progress any more.
func (n *Node) dropStale(ctx context.Context, id consent.RecordID) (done bool, err error) {
	// The record and its re-sharing from one state: read apart, a record read before a
	// switch and a re-sharing read after it settled would make a new custodian's share
	// look stale.
	type view struct {
		rec *consent.Record
		rs  *consent.Reshare
	}
	v, _, err := readState(n, func(r consent.Reader) (view, error) {
		rec, err := consent.GetRecord(r, id)
		if err != nil {
			return view{}, err
		}
		rs, err := consent.GetReshare(r, id)
		return view{rec, rs}, err
	})
	if errors.Is(err, api.ErrNotFound) {
		return true, nil // not registered (yet): nothing was re-shared
	}
	if err != nil {
		return false, err
	}
	rec, rs := v.rec, v.rs
	sealed, err := sealedOf(rec)
	if err != nil {
		return false, err
	}
	files, err := shareFiles(n.home, sealed.ID)
	if err != nil {
		return false, err
	}
	for epoch, path := range files {
		current := epoch == rec.Epoch && slices.Contains(rec.Custodians, n.id)
		next := rs != nil && epoch == rs.Epoch && slices.Contains(rs.To, n.id)
		if current || next {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		n.log.Info("re-sharing: a share no longer held destroyed", "record", id, "epoch", epoch)
	}
	if !slices.Contains(rec.Custodians, n.id) && (rs == nil || !slices.Contains(rs.To, n.id)) {
		// No longer a custodian, nor to be one: the whole key an ingesting hospital may
		// have kept ([custody] keep_whole_key) goes, and the ciphertext (its pin looked
		// up, not inferred from the share files, which an earlier pass may have removed).
		if err := os.Remove(CustodyKeyPath(n.home, sealed.ID)); err == nil {
			n.log.Info("re-sharing: the whole key of a record no longer held destroyed", "record", id)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		pinned, err := n.store.IsPinned(ctx, sealed.CID)
		if err != nil {
			return false, err
		}
		if pinned {
			if err := n.store.Unpin(ctx, sealed.CID); err != nil {
				return false, err
			}
			n.log.Info("re-sharing: the ciphertext of a record no longer held unpinned", "record", id)
		}
	}
	return rs == nil, nil
}
