package node

import (
	"testing"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
)

// A sharing whose own index is not among its custodians (this hospital not in the
// registry) is refused before the key is split or anything is written: no panic.
func TestCustodyKeepRefusesOutsider(t *testing.T) {
	dek, err := crypto.NewDEK()
	if err != nil {
		t.Fatal(err)
	}
	for _, self := range []crypto.ShareIndex{0, 4} {
		s := &sharing{Custodians: []consent.HospitalID{"a", "b", "c"}, Threshold: 2, Self: self}
		if shares, _, err := s.keep(nil, Sealed{}, dek, nil); err == nil || shares != nil {
			t.Errorf("share %d of 3: got %d shares, %v; want an error", self, len(shares), err)
		}
	}
}
