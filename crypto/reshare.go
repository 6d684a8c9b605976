package crypto

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/math/polynomial"
	"github.com/cloudflare/circl/secretsharing"
)

// Re-sharing moves a record key from one set of custodians to another without anyone
// rebuilding it (Desmedt–Jajodia redistribution, with Feldman commitments checked at
// every step):
//
//  1. Each dealer d of a set D of at least k old custodians deals its old share again,
//     k'-of-n' (Reshare): a sub-share for each new custodian and commitments G_d to
//     its dealing polynomial, which it publishes.
//  2. Anyone computes the new commitments from the old ones and the published deals
//     (ReshareCommitments); it checks every deal against the old commitments and that
//     the new commitments commit to the same key.
//  3. Each new custodian j combines the sub-shares dealt to it (CombineSubShares) into
//     its new share, which verifies against the new commitments.
//
// Every party must use the same dealer set D: the Lagrange coefficients depend on it.
// A dealer whose deal or sub-share does not verify cannot be dropped by one party
// alone; the round is restarted with another D.

const reshareLabel = "medledger/reshare-wrap/v1"

// ReshareContext is what a wrapped sub-share is bound to (its HPKE context info),
// besides the recipient's index and public key: the record, the re-sharing (Epoch,
// counting the record's re-sharings, and Round, naming one attempt at it: a
// re-sharing started again for another new set is another round) and the dealer that
// dealt it.
type ReshareContext struct {
	Chain  ChainID
	Record RecordID
	Epoch  uint32
	Round  uint64
	Dealer ShareIndex
}

// Reshare deals s again k-of-n: sub-share j (Index j, 1..n) is for the new custodian
// with index j, and the commitments are to the dealing polynomial, whose constant
// term is s's value (VerifyDeal checks this against the old commitments). The
// sub-shares are secret like shares; the commitments are public. It needs a share
// and 1 ≤ k ≤ n ≤ MaxShares.
func Reshare(s Share, k, n int) ([]Share, Commitments, error) {
	if !s.Index.Valid() || s.value == nil {
		return nil, Commitments{}, fmt.Errorf("crypto: reshare: share %d is not a share", s.Index)
	}
	if k < 1 || k > n || n > MaxShares {
		return nil, Commitments{}, fmt.Errorf("crypto: reshare %d of %d: want 1 ≤ k ≤ n ≤ %d", k, n, MaxShares)
	}
	ss := secretsharing.New(rand.Reader, uint(k-1), s.value)
	raw := ss.Share(uint(n))
	subs := make([]Share, n)
	for i, r := range raw {
		subs[i] = Share{Index: ShareIndex(i + 1), value: r.Value}
	}
	return subs, Commitments{points: ss.CommitSecret()}, nil
}

// publicShare is share i's public value, g^f(i), from the commitments (Horner's rule
// in the exponent). c must have at least one point.
func publicShare(c Commitments, i ShareIndex) group.Element {
	x := indexScalar(i)
	sum := custodyGroup.NewElement().Set(c.points[len(c.points)-1])
	for m := len(c.points) - 2; m >= 0; m-- {
		sum.Mul(sum, x)
		sum.Add(sum, c.points[m])
	}
	return sum
}

// VerifyDeal checks that deal commits to a dealing of the dealer's share of the
// record committed to by old: its constant term is the public value of share dealer.
// ErrBadShare (naming the dealer) if not, or if old or deal is empty or the dealer's
// index is not a share index.
func VerifyDeal(old Commitments, dealer ShareIndex, deal Commitments) error {
	if old.Threshold() == 0 || !dealer.Valid() || deal.Threshold() == 0 || deal.Threshold() > MaxShares ||
		!publicShare(old, dealer).IsEqual(deal.points[0]) {
		return fmt.Errorf("%w: the deal of dealer %d does not commit to its share", ErrBadShare, dealer)
	}
	return nil
}

// ReshareCommitments computes the new commitments of a re-sharing from the old
// commitments and the deals of dealers (deals[i] from dealers[i]). It refuses
// malformed input (no dealers, lengths that differ, a repeated or invalid dealer
// index, deals of different thresholds), a deal that does not verify (VerifyDeal,
// ErrBadShare naming the dealer) and fewer dealers than old's threshold
// (ErrTooFewShares). Its result commits to the same key as old (checked), with the
// deals' threshold.
func ReshareCommitments(old Commitments, dealers []ShareIndex, deals []Commitments) (Commitments, error) {
	if err := checkDeals(dealers, deals); err != nil {
		return Commitments{}, err
	}
	for i, d := range dealers {
		if err := VerifyDeal(old, d, deals[i]); err != nil {
			return Commitments{}, err
		}
	}
	if len(dealers) < old.Threshold() {
		return Commitments{}, fmt.Errorf("%w: %d dealers of the %d needed to reshare", ErrTooFewShares, len(dealers), old.Threshold())
	}
	lambda := lagrangeAtZero(dealers)
	pts := make([]group.Element, deals[0].Threshold())
	for m := range pts {
		pts[m] = custodyGroup.NewElement()
		for i, deal := range deals {
			pts[m].Add(pts[m], custodyGroup.NewElement().Mul(deal.points[m], lambda[i]))
		}
	}
	if !pts[0].IsEqual(old.points[0]) {
		// Verified deals from at least k dealers always commit to the old key; fail closed anyway.
		return Commitments{}, fmt.Errorf("%w: the deals do not commit to the record's key", ErrBadShare)
	}
	return Commitments{points: pts}, nil
}

// CombineSubShares computes the new share of recipient from the sub-shares dealt to
// it (subs[i] dealt by dealers[i], whose published deal is deals[i]). It refuses
// malformed input as ReshareCommitments does, and an invalid recipient. Each sub-share
// is checked against its deal first: if any does not verify (altered, for another
// recipient, or its dealer lies) it returns no share, the dealers at fault (sorted)
// and ErrBadShare naming them. The share it returns verifies against the
// commitments ReshareCommitments computes from the same dealers and deals; the
// recipient should still check it (VerifyShare) before keeping it.
func CombineSubShares(recipient ShareIndex, dealers []ShareIndex, deals []Commitments, subs []Share) (Share, []ShareIndex, error) {
	if !recipient.Valid() {
		return Share{}, nil, fmt.Errorf("crypto: combine sub-shares: recipient %d is not a share index", recipient)
	}
	if err := checkDeals(dealers, deals); err != nil {
		return Share{}, nil, err
	}
	if len(subs) != len(dealers) {
		return Share{}, nil, fmt.Errorf("crypto: reshare: %d sub-shares from %d dealers", len(subs), len(dealers))
	}
	var bad []ShareIndex
	for i, sub := range subs {
		if sub.Index != recipient || VerifyShare(deals[i], sub) != nil {
			bad = append(bad, dealers[i])
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return Share{}, bad, fmt.Errorf("%w: sub-shares for share %d from dealers %v; restart the round without them", ErrBadShare, recipient, bad)
	}
	lambda := lagrangeAtZero(dealers)
	v := custodyGroup.NewScalar()
	for i, sub := range subs {
		v.Add(v, custodyGroup.NewScalar().Mul(lambda[i], sub.value))
	}
	return Share{Index: recipient, value: v}, nil, nil
}

// checkDeals checks the shape of a re-sharing's dealers and deals: at least one
// dealer, one deal each, dealers valid and distinct, deals all of one threshold k'
// with 1 ≤ k' ≤ MaxShares.
func checkDeals(dealers []ShareIndex, deals []Commitments) error {
	if len(dealers) == 0 || len(dealers) != len(deals) || len(dealers) > MaxShares {
		return fmt.Errorf("crypto: reshare: %d dealers and %d deals, want as many of each, 1 to %d", len(dealers), len(deals), MaxShares)
	}
	var seen [MaxShares + 1]bool
	for _, d := range dealers {
		if !d.Valid() || seen[d] {
			return fmt.Errorf("crypto: reshare: dealer %d is invalid or repeated", d)
		}
		seen[d] = true
	}
	k := deals[0].Threshold()
	for i, deal := range deals {
		if deal.Threshold() != k || k < 1 || k > MaxShares {
			return fmt.Errorf("crypto: reshare: the deal of dealer %d has threshold %d, want all equal, 1 to %d", dealers[i], deal.Threshold(), MaxShares)
		}
	}
	return nil
}

// lagrangeAtZero returns λ_d for each dealer d: the Lagrange basis polynomials of the
// dealers' indices evaluated at 0. The dealers must be valid and distinct.
func lagrangeAtZero(dealers []ShareIndex) []group.Scalar {
	xs := make([]group.Scalar, len(dealers))
	for i, d := range dealers {
		xs[i] = indexScalar(d)
	}
	zeroX := custodyGroup.NewScalar()
	lambda := make([]group.Scalar, len(dealers))
	for i := range xs {
		lambda[i] = polynomial.LagrangeBase(uint(i), xs, zeroX)
	}
	return lambda
}

// info is what a wrapped sub-share is bound to: the ReshareContext, the recipient's
// index and public key, under a label of its own so that a wrapped sub-share never
// opens as a wrapped share or DEK, nor they as a sub-share.
func (c ReshareContext) info(recipient ShareIndex, key WrapPublicKey) []byte {
	return appendFields(nil, []byte(reshareLabel), []byte(c.Chain), c.Record[:],
		binary.BigEndian.AppendUint32(nil, c.Epoch), binary.BigEndian.AppendUint64(nil, c.Round),
		[]byte{byte(c.Dealer)}, []byte{byte(recipient)}, key)
}

// WrapSubShare seals sub (dealt by c.Dealer to the custodian with index sub.Index)
// for the holder of to, bound to c, to sub's index and to the recipient key, with
// the HPKE that Wrap uses.
func WrapSubShare(sub Share, to WrapPublicKey, c ReshareContext) ([]byte, error) {
	if !sub.Index.Valid() || sub.value == nil || !c.Dealer.Valid() {
		return nil, fmt.Errorf("crypto: wrap sub-share: sub-share %d from dealer %d is not a sub-share", sub.Index, c.Dealer)
	}
	enc, err := hybridEncrypt(to)
	if err != nil {
		return nil, err
	}
	raw := sub.Bytes()
	defer zero(raw)
	ct, err := enc.Encrypt(raw, c.info(sub.Index, to))
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap sub-share: %w", err)
	}
	return ct, nil
}

// UnwrapSubShare opens the sub-share for recipient wrapped for this key under c. Any
// mismatch — another key, chain, record, epoch, dealer or recipient index, altered
// bytes, or a wrapped share or DEK — gives ErrUnwrap. The sub-share still has to
// verify against its dealer's deal (CombineSubShares checks it).
func (k *WrapKey) UnwrapSubShare(wrapped []byte, c ReshareContext, recipient ShareIndex) (Share, error) {
	raw, err := k.dec.Decrypt(wrapped, c.info(recipient, k.pub))
	if err != nil {
		return Share{}, ErrUnwrap
	}
	defer zero(raw)
	s, err := ParseShare(raw)
	if err != nil || s.Index != recipient {
		return Share{}, ErrUnwrap
	}
	return s, nil
}
