package consent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Tx is the signed envelope carried on the chain.
type Tx struct {
	Body      []byte `cbor:"1,keyasint"` // canonical CBOR of a Body; the signed bytes
	Signer    []byte `cbor:"2,keyasint"` // Ed25519 public key
	Signature []byte `cbor:"3,keyasint"` // Ed25519 over Body exactly
}

// MaxTxBytes bounds a tx.
const MaxTxBytes = 64 << 10

// The codecs are fixed at build time; their options are constants.
var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustDecMode() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   16,
		MaxArrayElements:  1024,
		MaxMapPairs:       64,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// Signer signs exact bytes with Ed25519 (crypto.SigningKey satisfies it).
type Signer interface {
	Sign(msg []byte) ([]byte, error)
	Public() ed25519.PublicKey
}

// NewBody returns a body for chainID with a fresh random nonce, valid until expiry.
func NewBody(chainID string, expiry Height) (Body, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return Body{}, fmt.Errorf("consent: nonce: %w", err)
	}
	return Body{ChainID: chainID, Nonce: nonce, Expiry: expiry}, nil
}

// Sign encodes body canonically, signs it and returns the tx bytes.
func Sign(body Body, s Signer) ([]byte, error) {
	b, err := EncodeBody(body)
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(b)
	if err != nil {
		return nil, err
	}
	return encMode.Marshal(Tx{Body: b, Signer: s.Public(), Signature: sig})
}

// EncodeBody is the canonical encoding of body: the exact bytes a signer signs. With
// Assemble it lets a signer sign elsewhere (a patient's device) and hand back only
// the signature.
func EncodeBody(body Body) ([]byte, error) {
	b, err := encMode.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("consent: encode body: %w", err)
	}
	return b, nil
}

// Assemble builds tx bytes from body bytes (EncodeBody's output), the signer's public
// key and its detached Ed25519 signature over the body bytes. It checks the shape,
// the canonical form and the signature, so a bad signature is refused before the tx
// goes anywhere.
func Assemble(body, signer, sig []byte) ([]byte, *Body, error) {
	if len(signer) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return nil, nil, reject(CodeDecode, "signer key must be 32 bytes and signature 64")
	}
	b, err := encMode.Marshal(Tx{Body: body, Signer: signer, Signature: sig})
	if err != nil {
		return nil, nil, fmt.Errorf("consent: encode tx: %w", err)
	}
	tx, decoded, err := Decode(b)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.Verify(); err != nil {
		return nil, nil, err
	}
	return b, decoded, nil
}

// Decode parses tx bytes into the envelope and its body, accepting only canonical
// encodings (so a tx has exactly one byte form, and one ID). It does not verify the
// signature (Verify does).
func Decode(b []byte) (*Tx, *Body, error) {
	if len(b) > MaxTxBytes {
		return nil, nil, reject(CodeDecode, "tx is %d bytes, max %d", len(b), MaxTxBytes)
	}
	var tx Tx
	if err := strictUnmarshal(b, &tx); err != nil {
		return nil, nil, reject(CodeDecode, "envelope: %v", err)
	}
	var body Body
	if err := strictUnmarshal(tx.Body, &body); err != nil {
		return nil, nil, reject(CodeDecode, "body: %v", err)
	}
	if len(tx.Signer) != ed25519.PublicKeySize || len(tx.Signature) != ed25519.SignatureSize {
		return nil, nil, reject(CodeDecode, "signer key must be 32 bytes and signature 64")
	}
	if err := body.checkShape(); err != nil {
		return nil, nil, err
	}
	return &tx, &body, nil
}

func strictUnmarshal(b []byte, v any) error {
	rest, err := decMode.UnmarshalFirst(b, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d bytes after the value", len(rest))
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, b) {
		return fmt.Errorf("not canonical CBOR")
	}
	return nil
}

// Verify checks the signature over the exact body bytes.
func (tx *Tx) Verify() error {
	// curve25519-voi verifies a third faster than crypto/ed25519 here, with the
	// standard library's semantics (cofactorless, non-canonical A allowed).
	if len(tx.Signer) != ed25519.PublicKeySize || len(tx.Signature) != ed25519.SignatureSize {
		return reject(CodeDecode, "signer key must be 32 bytes and signature 64")
	}
	opts := &voied25519.Options{Verify: voied25519.VerifyOptionsStdLib}
	if !voied25519.VerifyWithOptions(voied25519.PublicKey(tx.Signer), tx.Body, tx.Signature, opts) {
		return reject(CodeSignature, "signature does not verify over the body")
	}
	return nil
}

// checkShape checks that exactly the payload the kind names is present.
func (b *Body) checkShape() error {
	if len(b.Nonce) != 16 {
		return reject(CodeDecode, "nonce must be 16 bytes")
	}
	present := []bool{ // indexed by Kind
		KindProposeHospital: b.ProposeHospital != nil, KindRegisterRecord: b.RegisterRecord != nil,
		KindGrant: b.Grant != nil, KindRevoke: b.Revoke != nil, KindRequest: b.Request != nil,
		KindEmergency: b.Emergency != nil, KindReceipt: b.Receipt != nil, KindErase: b.Erase != nil,
		KindReview: b.Review != nil, KindAcceptCustody: b.AcceptCustody != nil, KindAttestErasure: b.AttestErasure != nil,
		KindLeave: b.Leave != nil, KindDealShares: b.DealShares != nil, KindHandOver: b.HandOver != nil,
	}
	n := 0
	for _, p := range present {
		if p {
			n++
		}
	}
	if n != 1 || int(b.Kind) >= len(present) || !present[b.Kind] {
		return reject(CodeDecode, "kind %s needs exactly its own payload", b.Kind)
	}
	return nil
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
