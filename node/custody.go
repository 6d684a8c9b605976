package node

// Threshold custody, the node's part: at ingest the record's key is split k-of-r
// among r custodians (this hospital and the next members in the registry's order), each
// custodian is handed its share HPKE-wrapped to its registered key over the custody
// protocol (p2p.CustodyID), fetches and pins the ciphertext, checks the share against
// the commitments on the chain, keeps it durably and accepts custody on the chain. The
// ingesting hospital keeps only its own share (unless [custody] keep_whole_key), and
// the shares it could not hand out, wrapped to their custodians, until they are
// accepted: a repair loop offers them again, a bounded number of times.

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/api"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/p2p"
)

// sharing is how an ingest shares a new record's key: Threshold of the Custodians'
// shares rebuild it; Self is this hospital's share.
type sharing struct {
	Custodians []consent.HospitalID // sorted: share i is the i-th's
	Threshold  int
	Self       crypto.ShareIndex
	KeepWhole  bool // keep the whole key too ([custody] keep_whole_key)
}

// planCustody chooses a new record's custodians: those the hospital named (checked:
// registered, this hospital among them, at most consent.MaxCustodians), else the
// chain's default custody r (genesis), r capped by the registry's members, taken from
// this hospital on in the registry's sorted order (wrapping round); and the threshold
// named (1 ≤ k ≤ r), else the chain's k capped by r. A nil sharing means one
// custodian, this hospital, holding the whole key, as without threshold custody.
func (n *Node) planCustody(named api.Custody) (*sharing, error) {
	params, err := read(n, func(r consent.Reader, _ struct{}) (consent.Params, error) { return consent.GetParams(r) }, struct{}{})
	if err != nil {
		return nil, err
	}
	custodians, err := n.chooseCustodians(named.Custodians, params.Custodians)
	if err != nil {
		return nil, err
	}
	r := len(custodians)
	k := min(params.Threshold, r)
	if named.Threshold != 0 {
		if named.Threshold < 1 || named.Threshold > r {
			return nil, &consent.Rejection{Code: consent.CodeInvalid,
				Log: fmt.Sprintf("threshold %d of %d custodians: want 1 ≤ threshold ≤ custodians", named.Threshold, r)}
		}
		k = named.Threshold
	}
	if r <= 1 {
		return nil, nil
	}
	self, found := slices.BinarySearch(custodians, n.id)
	if !found { // chooseCustodians puts this hospital among them; never split without it
		return nil, errNotMember(n.id)
	}
	return &sharing{Custodians: custodians, Threshold: k, Self: crypto.ShareIndex(self + 1),
		KeepWhole: n.home.Config.Custody.KeepWholeKey}, nil
}

// chooseCustodians is the named custodians, checked and sorted, or, if none are
// named, r members from this hospital on in the registry's order, sorted.
func (n *Node) chooseCustodians(named []consent.HospitalID, r int) ([]consent.HospitalID, error) {
	members := n.Members()
	if !slices.Contains(members, n.id) && n.refreshRegistry() == nil {
		members = n.Members() // the registry may have changed since the last refresh
	}
	if !slices.Contains(members, n.id) {
		// fail closed: a hospital that is not a member cannot be a custodian, and the
		// custodians are chosen from its place in the registry
		return nil, errNotMember(n.id)
	}
	if len(named) == 0 {
		if r = min(r, len(members)); r <= 1 {
			return []consent.HospitalID{n.id}, nil
		}
		at := max(slices.Index(members, n.id), 0)
		out := make([]consent.HospitalID, r)
		for i := range out {
			out[i] = members[(at+i)%len(members)]
		}
		slices.Sort(out)
		return out, nil
	}
	out := slices.Clone(named)
	slices.Sort(out)
	invalid := func(format string, args ...any) error {
		return &consent.Rejection{Code: consent.CodeInvalid, Log: fmt.Sprintf(format, args...)}
	}
	switch {
	case len(out) > consent.MaxCustodians:
		return nil, invalid("%d custodians: at most %d", len(out), consent.MaxCustodians)
	case len(slices.Compact(slices.Clone(out))) != len(out):
		return nil, invalid("a custodian is named twice")
	case !slices.Contains(out, n.id):
		return nil, invalid("the ingesting hospital, %s, must be one of the record's custodians", n.id)
	}
	for _, c := range out {
		if !slices.Contains(members, c) {
			return nil, &consent.Rejection{Code: consent.CodeUnknownHospital, Log: fmt.Sprintf("custodian %s is not a registered hospital", c)}
		}
	}
	return out, nil
}

// errNotMember refuses an ingest by a hospital that is not a registered member.
func errNotMember(id consent.HospitalID) error {
	return &consent.Rejection{Code: consent.CodeUnknownHospital,
		Log: fmt.Sprintf("this hospital, %s, is not a registered member: it cannot be a record's custodian", id)}
}

// keep splits dek, writes this hospital's share durably (and the whole key when
// KeepWhole) and returns every share with the commitments. On error no file is left.
func (s *sharing) keep(h *home.Home, sealed Sealed, dek *crypto.DEK, sync Syncer) ([]crypto.Share, crypto.Commitments, error) {
	if s.Self < 1 || int(s.Self) > len(s.Custodians) {
		return nil, crypto.Commitments{}, fmt.Errorf("node: share %d of %d custodians: this hospital is not among them", s.Self, len(s.Custodians))
	}
	shares, c, err := dek.Split(s.Threshold, len(s.Custodians))
	if err != nil {
		return nil, c, err
	}
	own, err := newShareFile(sealed, shares[s.Self-1], h.ChainID(), h.Keys.Wrap.Public())
	if err != nil {
		return nil, c, err
	}
	if err := own.WriteSynced(ShareKeyPath(h, sealed.ID), sync); err != nil {
		return nil, c, err
	}
	if s.KeepWhole {
		if _, err := custody(h, sealed, dek, nil, sync); err != nil {
			os.Remove(ShareKeyPath(h, sealed.ID))
			return nil, c, err
		}
	}
	return shares, c, nil
}

// newShareFile is a key file holding share s wrapped to recipient as its custodian's
// own copy (no grant).
func newShareFile(sealed Sealed, s crypto.Share, chain crypto.ChainID, recipient crypto.WrapPublicKey) (*KeyFile, error) {
	w, err := crypto.WrapShare(s, recipient, crypto.WrapContext{Chain: chain, Record: sealed.ID})
	if err != nil {
		return nil, err
	}
	return &KeyFile{Chain: chain, Record: sealed.ID.String(), CID: sealed.CID.String(), Recipient: recipient,
		Wrapped: w, Share: s.Index}, nil
}

// ShareKeyPath is where a custodian keeps its share of a record's key, wrapped to
// itself.
func ShareKeyPath(h *home.Home, id crypto.RecordID) string {
	return h.Path(home.DEKDir, id.String()+".share.json")
}

// PendingSharesDir holds the shares an ingesting hospital has not handed out yet,
// each wrapped to its custodian (useless to this hospital), and a marker for its own
// acceptance of custody, until the chain shows them accepted. They are saved before
// the record's register tx is submitted, so that no share is lost to a crash or an
// unknown outcome.
func PendingSharesDir(h *home.Home) string { return h.Path(home.DEKDir, "pending") }

// pendingShare is a share offer not yet accepted, as kept in PendingSharesDir. For the
// ingesting hospital itself (Custodian is this hospital) it carries no share: it says
// that this hospital's own acceptance of custody is still to be seen on the chain.
// Offer.Height is 0 until the record is registered.
type pendingShare struct {
	Custodian consent.HospitalID `json:"custodian"`
	Offer     p2p.ShareOffer     `json:"offer"`
	Attempts  int                `json:"attempts"`
	claim     *claim             // the ingest's claim on it (see Node.claim), while it settles it
}

func (p *pendingShare) path(h *home.Home) string { return pendingPath(h, p.Offer.Record, p.Custodian) }

func pendingPath(h *home.Home, record string, c consent.HospitalID) string {
	return filepath.Join(PendingSharesDir(h), record+"."+string(c)+".json")
}

// claim is who settles a pending offer now: an ingest (paths are its offers'), or a
// repair round (Node.settling).
type claim struct{ paths []string }

// save writes p durably, replacing an earlier version.
func (p *pendingShare) save(h *home.Home, sync Syncer) error {
	if err := os.MkdirAll(PendingSharesDir(h), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	path := p.path(h)
	if err := writeTemp(PendingSharesDir(h), b, sync, func(tmp string) error { return os.Rename(tmp, path) }); err != nil {
		return err
	}
	return syncDir(PendingSharesDir(h), sync)
}

// done removes p once its custodian's acceptance is known.
func (p *pendingShare) done(n *Node) {
	if err := os.Remove(p.path(n.home)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		n.log.Warn("pending share not removed", "record", p.Offer.Record, "custodian", p.Custodian, "err", err)
	}
}

// removePending removes every pending offer of record id (the chain refused its
// register tx, or it was erased).
func removePending(h *home.Home, id consent.RecordID) error {
	paths, err := filepath.Glob(filepath.Join(PendingSharesDir(h), string(id)+".*.json"))
	if err != nil {
		return err
	}
	for _, path := range paths {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// claim marks the pending offers of record id to custodians as being settled by their
// ingest, from before they are saved until each offer's first settle ends (distribute),
// so that the repair loop does not offer them at the same time (an own acceptance
// submitted twice, or a share offered twice at once).
func (n *Node) claim(id crypto.RecordID, custodians []consent.HospitalID) *claim {
	c := new(claim)
	for _, h := range custodians {
		c.paths = append(c.paths, pendingPath(n.home, id.String(), h))
		n.settling.Store(c.paths[len(c.paths)-1], c)
	}
	return c
}

// unclaim ends claim c on whichever of its offers it still holds (a claim another has
// taken since stays); c may be nil.
func (n *Node) unclaim(c *claim) {
	if c == nil {
		return
	}
	for _, path := range c.paths {
		n.settling.CompareAndDelete(path, c)
	}
}

// saveOffers saves, durably and before the record is registered, what the ingest has
// to hand out: each other custodian's share wrapped to its registered key, and the
// marker of this hospital's own acceptance. On error none is left.
func (n *Node) saveOffers(id crypto.RecordID, shares []crypto.Share, s *sharing) ([]*pendingShare, error) {
	out := make([]*pendingShare, len(s.Custodians))
	for i, c := range s.Custodians {
		p, err := n.pendingOffer(id, c, shares[i])
		if err != nil {
			if rerr := removePending(n.home, consent.RecordID(id.String())); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return nil, fmt.Errorf("node: save custodian %s's share offer: %w", c, err)
		}
		out[i] = p
	}
	return out, nil
}

// distribute hands out a freshly registered record's shares, saved as pending
// (saveOffers): its own acceptance it submits itself, each other custodian's share is
// offered, all at once, in the background under the node's context (they do not end
// with the request, and they end when the node closes). It returns once Threshold
// acceptances are in (this hospital's own counts as one) and this node's committed state
// shows the record available, or once every custodian has answered, or when ctx ends.
// The offers still out go on; what is not accepted stays pending for repair.
func (n *Node) distribute(ctx context.Context, rec *consent.Record, pending []*pendingShare, s *sharing) {
	results := make(chan settled, len(pending))
	for i, p := range pending {
		p.Offer.Height = int64(rec.Height)
		settle := func(bg context.Context) {
			defer n.settling.CompareAndDelete(p.path(n.home), p.claim)
			results <- settled{p.Custodian, n.settle(bg, rec, p)}
		}
		if !n.background(settle) {
			for _, q := range pending[i:] { // the node is closing: the offers stay pending, for repair at its next start
				n.settling.CompareAndDelete(q.path(n.home), q.claim)
			}
			return
		}
	}
	available := make(chan struct{})
	if !n.background(func(context.Context) { n.tally(rec, s, results, len(pending), available) }) {
		return
	}
	select {
	case <-available:
		n.awaitAvailable(ctx, rec.ID)
	case <-ctx.Done():
	case <-n.ctx.Done():
	}
}

// settled is one custodian's outcome of distribute: nil once it accepted custody.
type settled struct {
	custodian consent.HospitalID
	err       error
}

// tally reads the outcomes of a record's n offers; it closes available at the
// Threshold'th acceptance, or when all n are in, and then reports the custodians that
// did not accept (their offers stay pending for repair).
func (n *Node) tally(rec *consent.Record, s *sharing, results <-chan settled, count int, available chan<- struct{}) {
	accepted := 0
	var failed []string
	for range count {
		// Every settle ends: an offer within custodyTimeout, this hospital's own
		// acceptance when its tx commits, leaves the mempool or the chain stalls.
		r := <-results
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.custodian, r.err))
			continue
		}
		if accepted++; accepted == s.Threshold {
			close(available)
		}
	}
	if accepted < s.Threshold {
		close(available)
	}
	if len(failed) > 0 {
		n.log.Warn("custody not accepted by every custodian yet; the ingest hospital offers again",
			"record", rec.ID, "threshold", s.Threshold, "custodians", len(s.Custodians), "accepted", accepted, "failed", strings.Join(failed, "; "))
	}
}

// availableWait bounds how long distribute waits, once Threshold custodians accepted,
// for this node's committed state to show it (the other custodians' acceptances
// commit in blocks this node may not have applied yet).
const availableWait = 5 * time.Second

// awaitAvailable waits until this node's committed state shows record id available,
// ctx ends or availableWait passes.
func (n *Node) awaitAvailable(ctx context.Context, id consent.RecordID) {
	ctx, cancel := context.WithTimeout(ctx, availableWait)
	defer cancel()
	for {
		h := n.chain.Height()
		if st, err := read(n, consent.Custody, id); err != nil || st.Available {
			return
		}
		if n.chain.WaitHeight(ctx, h+1) != nil {
			return
		}
	}
}

// background runs f in a goroutine under the node's context, counted in n.wg so that
// Close waits for it; it reports false (and runs nothing) once the node is closing.
func (n *Node) background(f func(ctx context.Context)) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
	return true
}

// settle has p's custodian accept custody of rec: this hospital on the chain (under
// the node's context), another custodian by an offer. Once accepted, p goes.
func (n *Node) settle(ctx context.Context, rec *consent.Record, p *pendingShare) error {
	if p.Custodian != n.id {
		return n.offer(ctx, p)
	}
	if err := n.acceptCustody(n.ctx, rec); err != nil {
		return err
	}
	p.done(n)
	return nil
}

// pendingOffer saves custodian c's pending offer of record id: share wrapped to c's
// registered key, or for this hospital the marker of its own acceptance (no share).
func (n *Node) pendingOffer(id crypto.RecordID, c consent.HospitalID, share crypto.Share) (*pendingShare, error) {
	p := &pendingShare{Custodian: c, Offer: p2p.ShareOffer{Record: id.String(), Share: uint8(share.Index)}}
	if c != n.id {
		h, ok := n.hospital(c)
		if !ok {
			return nil, errors.New("not registered")
		}
		w, err := crypto.WrapShare(share, crypto.WrapPublicKey(h.Wrap), crypto.WrapContext{Chain: n.home.ChainID(), Record: id})
		if err != nil {
			return nil, err
		}
		p.Offer.Wrapped = w
	}
	return p, p.save(n.home, n.ingest.sync)
}

// offer offers a pending share to its custodian; once accepted, the pending copy goes.
func (n *Node) offer(ctx context.Context, p *pendingShare) error {
	h, ok := n.hospital(p.Custodian)
	if !ok {
		return errors.New("not registered")
	}
	pid, err := p2p.PeerID(ed25519.PublicKey(h.Node))
	if err != nil {
		return err
	}
	if err := n.connect(ctx, h); err != nil {
		return err
	}
	ans, err := n.host.OfferShare(ctx, pid, p.Offer)
	switch {
	case err != nil:
		return err
	case ans.Code != 0:
		return fmt.Errorf("refused (%s): %s", consent.Code(ans.Code), ans.Reason)
	}
	p.done(n)
	return nil
}

// maxOfferAttempts bounds how often the repair loop offers a pending share; after
// that it stays pending and is reported, for an operator.
const maxOfferAttempts = 20

// repairInterval is how often the repair loop looks at pending shares.
const repairInterval = 5 * time.Second

// repairCustody offers every pending share again whose custodian has not accepted
// custody yet (one attempt each, counted, maxOfferAttempts at most), and drops those
// the chain shows accepted or whose record was erased. This hospital's own pending
// acceptance it submits again. A record not (yet) on the chain is skipped: its
// register tx may still commit, and if the chain refused it the ingest removed its
// offers (forget). Offers go out maxDials at a time, so that one custodian slow to
// answer (an offer may take custodyTimeout) holds up no other.
func (n *Node) repairCustody(ctx context.Context) {
	entries, err := os.ReadDir(PendingSharesDir(n.home))
	if err != nil {
		return // none yet
	}
	var offers errgroup.Group
	offers.SetLimit(maxDials)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || ctx.Err() != nil {
			continue
		}
		path := filepath.Join(PendingSharesDir(n.home), e.Name())
		offers.Go(func() error {
			if err := n.repairOne(ctx, path); err != nil {
				n.log.Warn("custody repair", "file", e.Name(), "err", err)
			}
			return nil
		})
	}
	offers.Wait()
}

func (n *Node) repairOne(ctx context.Context, path string) error {
	mine := new(claim)
	if _, busy := n.settling.LoadOrStore(path, mine); busy {
		return nil // its ingest is settling it
	}
	defer n.settling.CompareAndDelete(path, mine)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var p pendingShare
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	st, err := read(n, consent.Custody, consent.RecordID(p.Offer.Record))
	var rej *consent.Rejection
	switch {
	case errors.As(err, &rej) && rej.Code == consent.CodeUnknownRecord:
		return nil // not registered (yet)
	case err != nil:
		return err
	}
	if _, member := n.hospital(p.Custodian); st.Erased != 0 || !member || st.Epoch > 0 ||
		slices.ContainsFunc(st.Accepted, func(a consent.Attestation) bool { return a.Custodian == p.Custodian }) {
		// accepted, erased, the custodian left, or the record was re-shared (the offer
		// is of the sharing made at ingest; a new custodian takes its share from the deals)
		return os.Remove(path)
	}
	if p.Attempts >= maxOfferAttempts {
		return nil // reported once, at the last attempt
	}
	rec, err := n.Record(ctx, st.Record)
	if err != nil {
		return err
	}
	p.Offer.Height = int64(rec.Height)
	p.Attempts++
	if err := p.save(n.home, n.ingest.sync); err != nil {
		return err
	}
	if err := n.settle(ctx, rec, &p); err != nil {
		if p.Attempts == maxOfferAttempts {
			return fmt.Errorf("custodian %s did not accept its share in %d offers; no more are made (the offer stays in %s): %w",
				p.Custodian, p.Attempts, PendingSharesDir(n.home), err)
		}
		return fmt.Errorf("offer %d to %s: %w", p.Attempts, p.Custodian, err)
	}
	n.log.Info("custody repaired: custodian accepted its share", "record", p.Offer.Record, "custodian", p.Custodian, "attempt", p.Attempts)
	return nil
}

// AcceptShare answers a share offer (p2p.Keeper): the offerer must be a registered
// hospital and a custodian of the record; this hospital must be the custodian of the
// share's index; the share must open with this hospital's wrap key and verify against
// the record's commitments on the chain. Then the custodian fetches every block of the
// ciphertext and pins it, keeps the share durably and accepts custody on the chain,
// and only then answers yes.
func (n *Node) AcceptShare(ctx context.Context, from peer.ID, offer p2p.ShareOffer) p2p.ShareAnswer {
	offerer, ok := n.peerHospital(from)
	if !ok {
		return shareRefusal(consent.CodeUnauthorized, "peer is not a registered hospital's node")
	}
	if !n.waitHeight(ctx, offer.Height) {
		return shareRefusal(consent.CodeNotCurrent, "this custodian's chain is behind the record's registration; try again")
	}
	rec, err := n.Record(ctx, consent.RecordID(offer.Record))
	if err != nil {
		return shareRefusal(consent.CodeUnknownRecord, "record %s: %v", offer.Record, err)
	}
	if err := n.takeShare(ctx, rec, offerer, offer); err != nil {
		var rej *consent.Rejection
		if errors.As(err, &rej) {
			return shareRefusal(rej.Code, "%s", rej.Log)
		}
		n.log.Warn("share offer not taken", "record", rec.ID, "from", offerer, "err", err)
		return shareRefusal(consent.CodeNotCurrent, "this custodian could not take custody now: %v", err)
	}
	return p2p.ShareAnswer{}
}

func shareRefusal(code consent.Code, format string, args ...any) p2p.ShareAnswer {
	return p2p.ShareAnswer{Code: uint32(code), Reason: fmt.Sprintf(format, args...)}
}

// takeShare checks an offer against rec, then keeps the ciphertext and the share and
// accepts custody. A refusal on the offer's merits is a *consent.Rejection.
func (n *Node) takeShare(ctx context.Context, rec *consent.Record, offerer consent.HospitalID, offer p2p.ShareOffer) error {
	idx, ok := rec.ShareIndex(n.id)
	switch {
	case !slices.Contains(rec.Custodians, offerer):
		return &consent.Rejection{Code: consent.CodeUnauthorized, Log: "the offerer is not a custodian of the record"}
	case !ok || idx != crypto.ShareIndex(offer.Share):
		return &consent.Rejection{Code: consent.CodeUnauthorized, Log: "this hospital is not the custodian of that share"}
	case rec.Erased != 0:
		return &consent.Rejection{Code: consent.CodeErased, Log: "the record was erased"}
	}
	sealed, err := sealedOf(rec)
	if err != nil {
		return err
	}
	if err := n.checkShare(rec, sealed, idx, offer.Wrapped); err != nil {
		return err
	}
	if err := n.host.FetchAll(ctx, sealed.CID); err != nil {
		return err
	}
	if err := n.store.Pin(ctx, sealed.CID); err != nil {
		return err
	}
	kf := &KeyFile{Chain: n.home.ChainID(), Record: sealed.ID.String(), CID: sealed.CID.String(),
		Recipient: n.home.Keys.Wrap.Public(), Wrapped: offer.Wrapped, Share: idx}
	if err := kf.WriteSynced(ShareKeyPath(n.home, sealed.ID), n.ingest.sync); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	err = n.acceptCustody(ctx, rec)
	if erasedSince(err) || (err == nil && n.erasedNow(rec.ID)) {
		// the erase committed during the fetch: this node's shredder may have passed
		// it already, so the share and pin written after it go here
		n.dropShare(sealed)
	}
	return err
}

// erasedSince reports whether err is the chain's refusal of an erased record.
func erasedSince(err error) bool {
	var rej *consent.Rejection
	return errors.As(err, &rej) && rej.Code == consent.CodeErased
}

// erasedNow reports whether the committed state shows record id erased.
func (n *Node) erasedNow(id consent.RecordID) bool {
	st, err := read(n, consent.Custody, id)
	return err == nil && st.Erased != 0
}

// dropShare removes this custodian's share of an erased record and its pin.
func (n *Node) dropShare(sealed Sealed) {
	if err := os.Remove(ShareKeyPath(n.home, sealed.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		n.log.Warn("share of an erased record not removed", "record", sealed.ID.String(), "err", err)
	}
	if err := n.store.Unpin(context.Background(), sealed.CID); err != nil {
		n.log.Warn("unpin of an erased record failed", "record", sealed.ID.String(), "err", err)
	}
}

// checkShare opens a share wrapped to this hospital as its own copy and verifies it
// against the record's commitments.
func (n *Node) checkShare(rec *consent.Record, sealed Sealed, idx crypto.ShareIndex, wrapped []byte) error {
	c, err := crypto.ParseCommitments(rec.Commitments)
	if err != nil {
		return err
	}
	s, err := n.home.Keys.Wrap.UnwrapShare(wrapped, crypto.WrapContext{Chain: n.home.ChainID(), Record: sealed.ID}, idx)
	if err != nil {
		return &consent.Rejection{Code: consent.CodeInvalid, Log: "the share does not open with this custodian's key for this record and index"}
	}
	if err := crypto.VerifyShare(c, s); err != nil {
		return &consent.Rejection{Code: consent.CodeInvalid, Log: "the share does not verify against the record's commitments"}
	}
	return nil
}

// acceptCustody says on the chain that this custodian holds rec's blocks and a valid
// share; an earlier acceptance counts.
func (n *Node) acceptCustody(ctx context.Context, rec *consent.Record) error {
	_, err := n.submit(ctx, consent.Body{Kind: consent.KindAcceptCustody, AcceptCustody: &consent.AcceptCustody{
		Custodian: n.id, Record: rec.ID, Commitments: rec.CommitmentsHash()}})
	var rej *consent.Rejection
	var un *api.Unavailable
	switch {
	case errors.As(err, &rej) && rej.Code == consent.CodeDuplicate:
		return nil
	case errors.As(err, &un) && un.Reason == txDropped:
		// dropped, most likely, because another acceptance of this hospital committed
		if st, rerr := read(n, consent.Custody, rec.ID); rerr == nil &&
			slices.ContainsFunc(st.Accepted, func(a consent.Attestation) bool { return a.Custodian == n.id }) {
			return nil
		}
	}
	return err
}

// sealedOf is a registered record's sealed form: its record ID and root CID.
func sealedOf(rec *consent.Record) (Sealed, error) {
	id, err := crypto.ParseRecordID(string(rec.ID))
	if err != nil {
		return Sealed{}, err
	}
	c, err := cid.Decode(rec.CID)
	if err != nil {
		return Sealed{}, fmt.Errorf("node: record %s: CID: %w", rec.ID, err)
	}
	return Sealed{ID: id, CID: c}, nil
}

// ownShare opens this custodian's own share of a threshold record, of the record's
// current epoch, and checks it against the record's commitments.
func (n *Node) ownShare(rec *consent.Record, id crypto.RecordID) (crypto.Share, error) {
	idx, ok := rec.ShareIndex(n.id)
	if !ok {
		return crypto.Share{}, &consent.Rejection{Code: consent.CodeUnauthorized, Log: "this hospital holds no share of the record"}
	}
	kf, err := ReadKeyFile(ShareKeyPathAt(n.home, id, rec.Epoch))
	if err != nil {
		return crypto.Share{}, err
	}
	s, err := n.home.Keys.Wrap.UnwrapShare(kf.Wrapped, crypto.WrapContext{Chain: n.home.ChainID(), Record: id}, idx)
	if err != nil {
		return crypto.Share{}, err
	}
	c, err := crypto.ParseCommitments(rec.Commitments)
	if err != nil {
		return crypto.Share{}, err
	}
	if err := crypto.VerifyShare(c, s); err != nil { // another sharing's: never release or deal it
		return crypto.Share{}, &consent.Rejection{Code: consent.CodeNoCustody,
			Log: "this custodian's share does not verify against the record's commitments"}
	}
	return s, nil
}

// peerHospital is the registered hospital whose node is peer p, re-reading the
// registry once if p is not in it (it may have changed since the last refresh).
func (n *Node) peerHospital(p peer.ID) (consent.HospitalID, bool) {
	n.mu.RLock()
	h, ok := n.registry.byPeer[p]
	n.mu.RUnlock()
	if ok || n.refreshRegistry() != nil {
		return h, ok
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	h, ok = n.registry.byPeer[p]
	return h, ok
}

var _ api.CustodyReader = (*Node)(nil)

// Custody is a record's custody from committed state: its custodians and threshold,
// who accepted custody, whether it is available, and for an erased record who has
// attested the erasure and who has not.
func (n *Node) Custody(_ context.Context, id consent.RecordID) (*consent.CustodyStatus, error) {
	return read(n, consent.Custody, id)
}
