package consent_test

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

// A body signed elsewhere (a patient's device) assembles into the same tx Sign makes;
// a signature over anything else is refused.
func TestAssembleDetachedSignature(t *testing.T) {
	key := consenttest.NewKey("patient")
	body, err := consent.NewBody("chain", 10)
	if err != nil {
		t.Fatal(err)
	}
	body.Kind, body.Revoke = consent.KindRevoke, &consent.Revoke{Consent: "00112233445566778899aabbccddeeff"}
	b, err := consent.EncodeBody(body)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := key.Sign(b)
	tx, decoded, err := consent.Assemble(b, key.Public(), sig)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := consent.Sign(body, key)
	if string(tx) != string(want) || decoded.Revoke.Consent != body.Revoke.Consent {
		t.Fatal("assembled tx differs from the signed one")
	}
	var rej *consent.Rejection
	other, _ := key.Sign(append(b, 0))
	if _, _, err := consent.Assemble(b, key.Public(), other); !errors.As(err, &rej) || rej.Code != consent.CodeSignature {
		t.Fatalf("a signature over other bytes: %v", err)
	}
	if _, _, err := consent.Assemble(b, key.Public(), sig[:10]); !errors.As(err, &rej) || rej.Code != consent.CodeDecode {
		t.Fatalf("a short signature: %v", err)
	}
	if _, _, err := consent.Assemble(append([]byte{0xa0}, b...), key.Public(), sig); !errors.As(err, &rej) || rej.Code != consent.CodeDecode {
		t.Fatalf("bytes that are not a body: %v", err)
	}
}

// Tx.Verify accepts exactly the signatures crypto/ed25519 accepts: valid ones, and
// none with a flipped bit in the signature, the key or the body (other clients verify
// with the standard library).
func TestVerifyAgreesWithStdlib(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		priv := ed25519.NewKeyFromSeed(rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "seed"))
		body := rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(t, "body")
		tx := consent.Tx{Body: body, Signer: priv.Public().(ed25519.PublicKey), Signature: ed25519.Sign(priv, body)}
		if rapid.Bool().Draw(t, "flip") {
			field := [][]byte{tx.Body, tx.Signer, tx.Signature}[rapid.IntRange(0, 2).Draw(t, "field")]
			field[rapid.IntRange(0, len(field)-1).Draw(t, "byte")] ^= 1 << rapid.IntRange(0, 7).Draw(t, "bit")
		}
		std := ed25519.Verify(tx.Signer, tx.Body, tx.Signature)
		if got := tx.Verify() == nil; got != std {
			t.Fatalf("Verify accepts: %v, crypto/ed25519: %v", got, std)
		}
	})
}
