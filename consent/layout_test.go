package consent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

// A state made by a binary with another key layout (an older one has no layout key)
// halts the node at its next block, with a message saying what to do, instead of being
// misread (e.g. its nonces missed, which would let committed txs apply again).
func TestOtherStateLayoutHalts(t *testing.T) {
	m, st := consent.NewMachine(), consenttest.NewMemStore()
	b := consent.Block{Height: 1, Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	if err := m.InitChain(st, "layout", consenttest.WorldGenesis(), consent.Block{Time: b.Time}); err != nil {
		t.Fatal(err)
	}
	if err := m.EndBlock(st, b); err != nil {
		t.Fatalf("a state in this layout: %v", err)
	}
	for name, v := range map[string][]byte{"older (no layout)": nil, "layout 2": {0x02}, "layout 3": {0x03}, "layout 4": {0x04}, "layout 5": {0x05}, "layout 6": {0x06}, "newer": {0x08}} {
		if v == nil {
			st.Delete([]byte("m/layout"))
		} else {
			st.Set([]byte("m/layout"), v)
		}
		err := m.EndBlock(st, b)
		if err == nil || !strings.Contains(err.Error(), "replay the chain from genesis") {
			t.Errorf("%s state: EndBlock %v, want a halt that says what to do", name, err)
		}
	}
}
