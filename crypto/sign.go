package crypto

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
	tinked25519 "github.com/tink-crypto/tink-go/v2/signature/ed25519"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// PublicKey is a raw 32-byte Ed25519 public key (RFC 8032).
type PublicKey = ed25519.PublicKey

// SigningKey is an Ed25519 private key held in a Tink keyset. Its signatures are
// standard Ed25519 (no Tink output prefix), so any Ed25519 implementation verifies them.
type SigningKey struct {
	handle *keyset.Handle
	signer tink.Signer
	pub    PublicKey
}

// NewSigningKey returns a fresh Ed25519 key.
func NewSigningKey() (*SigningKey, error) {
	h, err := keyset.NewHandle(signature.ED25519KeyWithoutPrefixTemplate())
	if err != nil {
		return nil, fmt.Errorf("crypto: new signing key: %w", err)
	}
	return signingKeyFromHandle(h)
}

func signingKeyFromHandle(h *keyset.Handle) (*SigningKey, error) {
	priv, err := ed25519Private(h)
	if err != nil {
		return nil, err
	}
	s, err := signature.NewSigner(h)
	if err != nil {
		return nil, fmt.Errorf("crypto: signer: %w", err)
	}
	pk, err := priv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("crypto: signing key: %w", err)
	}
	return &SigningKey{handle: h, signer: s, pub: pk.(*tinked25519.PublicKey).KeyBytes()}, nil
}

func ed25519Private(h *keyset.Handle) (*tinked25519.PrivateKey, error) {
	e, err := h.Primary()
	if err != nil {
		return nil, fmt.Errorf("crypto: signing key: %w", err)
	}
	priv, ok := e.Key().(*tinked25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an Ed25519 private key", ErrKeyFile)
	}
	if v := priv.Parameters().(*tinked25519.Parameters).Variant(); v != tinked25519.VariantNoPrefix {
		return nil, fmt.Errorf("%w: Ed25519 key has output prefix %v, want none", ErrKeyFile, v)
	}
	return priv, nil
}

// Sign signs msg exactly as given.
func (k *SigningKey) Sign(msg []byte) ([]byte, error) {
	sig, err := k.signer.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("crypto: sign: %w", err)
	}
	return sig, nil
}

// Public returns the raw public key.
func (k *SigningKey) Public() PublicKey { return k.pub }

// Ed25519PrivateKey exports the private key in the standard library's form. It exists
// only to hand the node key to libp2p and CometBFT, which need it raw to be the node's
// identity; nothing else should call it.
func (k *SigningKey) Ed25519PrivateKey() (ed25519.PrivateKey, error) {
	priv, err := ed25519Private(k.handle)
	if err != nil {
		return nil, err
	}
	seed := priv.PrivateKeyBytes().Data(insecuresecretdataaccess.Token{})
	defer zero(seed)
	return ed25519.NewKeyFromSeed(seed), nil
}

// Verify checks a standard Ed25519 signature over msg exactly as given.
func Verify(pub PublicKey, msg, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key is %d bytes, want %d", ErrBadSignature, len(pub), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(pub, msg, sig) {
		return ErrBadSignature
	}
	return nil
}

// FormatPublicKey is the text form of a public key: standard base64 of the raw bytes.
func FormatPublicKey(pub PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// ParsePublicKey parses FormatPublicKey's output.
func ParsePublicKey(s string) (PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("crypto: public key %q: want base64 of %d bytes", truncate(s, 60), ed25519.PublicKeySize)
	}
	return PublicKey(b), nil
}
