package crypto

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/circl/secretsharing"
	"pgregory.net/rapid"
)

// round is one re-sharing: the dealers, their deals and the sub-shares they dealt
// (subs[i][j-1] from dealers[i] for new custodian j).
type round struct {
	dealers []ShareIndex
	deals   []Commitments
	subs    [][]Share
}

// deal has each of the given old shares dealt again k-of-n.
func deal(t testing.TB, old []Share, k, n int) round {
	t.Helper()
	var r round
	for _, s := range old {
		subs, d, err := Reshare(s, k, n)
		if err != nil {
			t.Fatalf("reshare %v: %v", s, err)
		}
		r.dealers = append(r.dealers, s.Index)
		r.deals = append(r.deals, d)
		r.subs = append(r.subs, subs)
	}
	return r
}

// to is the sub-shares dealt to new custodian j, one per dealer.
func (r round) to(j ShareIndex) []Share {
	out := make([]Share, len(r.subs))
	for i, subs := range r.subs {
		out[i] = subs[j-1]
	}
	return out
}

// finish computes the new commitments and every new custodian's share, failing on
// any error.
func (r round) finish(t testing.TB, old Commitments, n int) ([]Share, Commitments) {
	t.Helper()
	comm, err := ReshareCommitments(old, r.dealers, r.deals)
	if err != nil {
		t.Fatalf("new commitments: %v", err)
	}
	shares := make([]Share, n)
	for j := range shares {
		var bad []ShareIndex
		shares[j], bad, err = CombineSubShares(ShareIndex(j+1), r.dealers, r.deals, r.to(ShareIndex(j+1)))
		if err != nil || bad != nil {
			t.Fatalf("new share %d: bad=%v err=%v", j+1, bad, err)
		}
	}
	return shares, comm
}

// Any k or more old custodians reshare to any k'-of-n': the new shares verify
// against the new commitments, which commit to the same key; any k' of them rebuild
// it, k'−1 of them do not.
func TestReshareProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 8).Draw(rt, "n")
		k := rapid.IntRange(1, n).Draw(rt, "k")
		s := sealShared(t, k, n)
		order := rapid.Permutation(s.shares).Draw(rt, "order")
		dealers := order[:rapid.IntRange(k, n).Draw(rt, "dealers")]
		n2 := rapid.IntRange(1, 8).Draw(rt, "n'")
		k2 := rapid.IntRange(1, n2).Draw(rt, "k'")
		r := deal(t, dealers, k2, n2)
		for i, d := range r.deals {
			if err := VerifyDeal(s.comm, r.dealers[i], d); err != nil {
				rt.Fatalf("deal of %d: %v", r.dealers[i], err)
			}
		}
		shares, comm := r.finish(t, s.comm, n2)
		if comm.Threshold() != k2 || !comm.points[0].IsEqual(s.comm.points[0]) {
			rt.Fatalf("new commitments: threshold %d (want %d), same key %v", comm.Threshold(), k2, comm.points[0].IsEqual(s.comm.points[0]))
		}
		for _, sh := range shares {
			if err := VerifyShare(comm, sh); err != nil {
				rt.Fatalf("new share: %v", err)
			}
		}
		newOrder := rapid.Permutation(shares).Draw(rt, "new order")
		dek, bad, err := Combine(comm, newOrder[:k2])
		if err != nil || bad != nil || !dek.secret.IsEqual(sharedSecret(rt, s, k)) || !s.opens(dek) {
			rt.Fatalf("%d new shares: bad=%v err=%v, want the original key", k2, bad, err)
		}
		if dek, _, err := Combine(comm, newOrder[:k2-1]); !errors.Is(err, ErrTooFewShares) || dek != nil {
			rt.Fatalf("%d new shares of %d needed: %v, want ErrTooFewShares", k2-1, k2, err)
		}
	})
}

// After custodian 3 leaves (1 and 2 reshare to a new 2-of-3), its old share does not
// combine with a new one, nor interpolate with it to the key, and no old share
// verifies against the new commitments.
func TestLeaverShareIsUseless(t *testing.T) {
	s := sealShared(t, 2, 3)
	shares, comm := deal(t, s.shares[:2], 2, 3).finish(t, s.comm, 3)
	leaver := s.shares[2]
	for _, newIdx := range []int{0, 1, 2} {
		_, bad, err := Combine(comm, []Share{leaver, shares[newIdx]})
		if !errors.Is(err, ErrTooFewShares) || !slices.Equal(bad, []ShareIndex{3}) {
			t.Errorf("old share 3 with new share %d: bad=%v err=%v, want ErrTooFewShares and bad=[3]", newIdx+1, bad, err)
		}
	}
	guess, err := secretsharing.Recover(1, []secretsharing.Share{leaver.circl(), shares[0].circl()})
	if err != nil {
		t.Fatal(err)
	}
	if wrong, err := dekFromSecret(guess); err != nil || s.opens(wrong) {
		t.Errorf("old share 3 interpolated with new share 1: err=%v, a key that opens the record", err)
	}
	for _, old := range s.shares {
		if err := VerifyShare(comm, old); !errors.Is(err, ErrBadShare) {
			t.Errorf("old %v against the new commitments: %v, want ErrBadShare", old, err)
		}
	}
}

// A sub-share altered, or dealt to another custodian, is caught and its dealer named;
// no share comes out.
func TestTamperedSubShareNamesDealer(t *testing.T) {
	s := sealShared(t, 3, 4)
	r := deal(t, pick(s.shares, 0, 1, 3), 2, 3)
	subs := r.to(2)
	subs[1] = corrupt(subs[1]) // from dealer 2
	subs[2] = r.subs[2][0]     // dealer 4's sub-share for custodian 1
	sh, bad, err := CombineSubShares(2, r.dealers, r.deals, subs)
	if !errors.Is(err, ErrBadShare) || !slices.Equal(bad, []ShareIndex{2, 4}) || sh.value != nil ||
		!strings.Contains(err.Error(), "dealers [2 4]") {
		t.Errorf("two bad sub-shares: share=%v bad=%v err=%v, want ErrBadShare naming dealers 2 and 4", sh, bad, err)
	}
	// A dealer that publishes a deal its sub-shares do not match is named too.
	swapped := slices.Clone(r.deals)
	swapped[0], swapped[2] = swapped[2], swapped[0]
	if _, bad, err := CombineSubShares(1, r.dealers, swapped, r.to(1)); !errors.Is(err, ErrBadShare) || !slices.Equal(bad, []ShareIndex{1, 4}) {
		t.Errorf("swapped deals: bad=%v err=%v, want ErrBadShare naming 1 and 4", bad, err)
	}
	malformed := map[string]struct {
		recipient ShareIndex
		dealers   []ShareIndex
		subs      []Share
	}{
		"recipient 0":   {0, r.dealers, r.to(1)},
		"too few subs":  {1, r.dealers, r.to(1)[:2]},
		"repeat dealer": {1, []ShareIndex{1, 1, 4}, r.to(1)},
	}
	for name, tc := range malformed {
		if _, _, err := CombineSubShares(tc.recipient, tc.dealers, r.deals, tc.subs); err == nil || errors.Is(err, ErrBadShare) {
			t.Errorf("%s: %v, want an error that is not ErrBadShare", name, err)
		}
	}
}

// A deal verifies only as a dealing of the dealer's own share of this record.
func TestVerifyDealRejects(t *testing.T) {
	s := sealShared(t, 2, 3)
	other := sealShared(t, 2, 3)
	_, d1, err := Reshare(s.shares[0], 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	_, foreign, err := Reshare(other.shares[1], 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyDeal(s.comm, 1, d1); err != nil {
		t.Errorf("an honest deal: %v", err)
	}
	cases := map[string]struct {
		old    Commitments
		dealer ShareIndex
		deal   Commitments
	}{
		"wrong dealer":    {s.comm, 2, d1},
		"dealer 0":        {s.comm, 0, d1},
		"other record":    {s.comm, 2, foreign},
		"other old":       {other.comm, 1, d1},
		"empty deal":      {s.comm, 1, Commitments{}},
		"empty old":       {Commitments{}, 1, d1},
		"old as the deal": {s.comm, 1, s.comm},
	}
	for name, tc := range cases {
		if err := VerifyDeal(tc.old, tc.dealer, tc.deal); !errors.Is(err, ErrBadShare) || !strings.Contains(err.Error(), "dealer") {
			t.Errorf("%s: %v, want ErrBadShare naming the dealer", name, err)
		}
	}
	if _, _, err := Reshare(Share{}, 2, 3); err == nil {
		t.Error("reshare of the zero Share: no error")
	}
	for _, kn := range [][2]int{{0, 3}, {4, 3}, {2, 17}} {
		if _, _, err := Reshare(s.shares[0], kn[0], kn[1]); err == nil {
			t.Errorf("reshare %d of %d: no error", kn[0], kn[1])
		}
	}
}

func TestReshareCommitmentsRejects(t *testing.T) {
	s := sealShared(t, 2, 3)
	r := deal(t, s.shares, 2, 3)
	_, d3, err := Reshare(s.shares[2], 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		dealers []ShareIndex
		deals   []Commitments
		want    error
	}{
		"empty":               {nil, nil, nil},
		"fewer deals":         {r.dealers, r.deals[:2], nil},
		"duplicate dealer":    {[]ShareIndex{1, 1}, r.deals[:2], nil},
		"dealer 0":            {[]ShareIndex{0, 1}, r.deals[:2], nil},
		"mixed thresholds":    {r.dealers, []Commitments{r.deals[0], r.deals[1], d3}, nil},
		"too few dealers":     {r.dealers[:1], r.deals[:1], ErrTooFewShares},
		"deal of another":     {[]ShareIndex{1, 2}, []Commitments{r.deals[1], r.deals[0]}, ErrBadShare},
		"dealers out of step": {[]ShareIndex{2, 3}, r.deals[:2], ErrBadShare},
	}
	for name, tc := range cases {
		c, err := ReshareCommitments(s.comm, tc.dealers, tc.deals)
		if err == nil || c.Threshold() != 0 || (tc.want != nil && !errors.Is(err, tc.want)) ||
			(tc.want == ErrBadShare && !strings.Contains(err.Error(), "dealer")) {
			t.Errorf("%s: threshold %d, %v; want no commitments and error %v (naming the dealer if ErrBadShare)", name, c.Threshold(), err, tc.want)
		}
	}
}

func TestWrapSubShareBindsContext(t *testing.T) {
	s := sealShared(t, 2, 3)
	r := deal(t, s.shares[:2], 2, 3)
	ada, _ := NewWrapKey()
	bay, _ := NewWrapKey()
	c := ReshareContext{Chain: s.b.Chain, Record: s.b.Record, Epoch: 1, Round: 7, Dealer: 2}
	sub := r.subs[1][2] // dealer 2's sub-share for custodian 3
	wrapped, err := WrapSubShare(sub, ada.Public(), c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ada.UnwrapSubShare(wrapped, c, 3)
	if err != nil || got.Index != 3 || VerifyShare(r.deals[1], got) != nil {
		t.Fatalf("unwrap: %v, %v; want dealer 2's verified sub-share for 3", got, err)
	}
	with := func(f func(*ReshareContext)) ReshareContext { x := c; f(&x); return x }
	cases := map[string]struct {
		key       *WrapKey
		c         ReshareContext
		recipient ShareIndex
	}{
		"other key":       {bay, c, 3},
		"other chain":     {ada, with(func(x *ReshareContext) { x.Chain = "other" }), 3},
		"other record":    {ada, with(func(x *ReshareContext) { x.Record = mustRecordID(t) }), 3},
		"other epoch":     {ada, with(func(x *ReshareContext) { x.Epoch = 2 }), 3},
		"other round":     {ada, with(func(x *ReshareContext) { x.Round = 8 }), 3},
		"other dealer":    {ada, with(func(x *ReshareContext) { x.Dealer = 1 }), 3},
		"other recipient": {ada, c, 2},
	}
	for name, tc := range cases {
		if _, err := tc.key.UnwrapSubShare(wrapped, tc.c, tc.recipient); !errors.Is(err, ErrUnwrap) {
			t.Errorf("%s: %v, want ErrUnwrap", name, err)
		}
	}
	flipped := bytes.Clone(wrapped)
	flipped[len(flipped)-1] ^= 1
	if _, err := ada.UnwrapSubShare(flipped, c, 3); !errors.Is(err, ErrUnwrap) {
		t.Errorf("altered: %v, want ErrUnwrap", err)
	}
	// A wrapped sub-share never opens as a share or a DEK, nor they as a sub-share.
	wc := WrapContext{Chain: c.Chain, Record: c.Record}
	if _, err := ada.UnwrapShare(wrapped, wc, 3); !errors.Is(err, ErrUnwrap) {
		t.Errorf("sub-share unwrapped as a share: %v, want ErrUnwrap", err)
	}
	if _, err := ada.Unwrap(wrapped, wc); !errors.Is(err, ErrUnwrap) {
		t.Errorf("sub-share unwrapped as a DEK: %v, want ErrUnwrap", err)
	}
	ws, err := WrapShare(s.shares[2], ada.Public(), wc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ada.UnwrapSubShare(ws, c, 3); !errors.Is(err, ErrUnwrap) {
		t.Errorf("share unwrapped as a sub-share: %v, want ErrUnwrap", err)
	}
	dek, _ := NewDEK()
	wd, _ := Wrap(dek, ada.Public(), wc)
	if _, err := ada.UnwrapSubShare(wd, c, 3); !errors.Is(err, ErrUnwrap) {
		t.Errorf("DEK unwrapped as a sub-share: %v, want ErrUnwrap", err)
	}
	if _, err := WrapSubShare(Share{}, ada.Public(), c); err == nil {
		t.Error("wrapping the zero Share: no error")
	}
	if _, err := WrapSubShare(sub, ada.Public(), with(func(x *ReshareContext) { x.Dealer = 0 })); err == nil {
		t.Error("wrapping for dealer 0: no error")
	}
}

// Whatever bytes stand in for one dealer's sub-share, CombineSubShares either names
// that dealer or gives a share that verifies against the new commitments.
func FuzzCombineSubShares(f *testing.F) {
	s := sealShared(f, 2, 3)
	r := deal(f, s.shares[:2], 2, 2)
	comm, err := ReshareCommitments(s.comm, r.dealers, r.deals)
	if err != nil {
		f.Fatal(err)
	}
	subs := r.to(1)
	f.Add(subs[1].Bytes())
	f.Add(corrupt(subs[1]).Bytes())
	f.Add(r.subs[1][1].Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		sub, err := ParseShare(b)
		if err != nil {
			return
		}
		given := []Share{subs[0], sub}
		sh, bad, err := CombineSubShares(1, r.dealers, r.deals, given)
		if err != nil {
			if !errors.Is(err, ErrBadShare) || !slices.Equal(bad, []ShareIndex{2}) {
				t.Fatalf("bad=%v err=%v, want ErrBadShare naming dealer 2", bad, err)
			}
			return
		}
		if err := VerifyShare(comm, sh); err != nil {
			t.Fatalf("accepted sub-share gave a share that does not verify: %v", err)
		}
	})
}
