package crypto

import (
	"encoding/base64"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/hybrid"
	"github.com/tink-crypto/tink-go/v2/hybrid/hpke"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// WrapPublicKey is a raw 32-byte X25519 public key, the HPKE recipient key of a hospital.
type WrapPublicKey []byte

const x25519KeySize = 32

// WrapKey is a hospital's HPKE private key: DHKEM_X25519_HKDF_SHA256, HKDF_SHA256,
// AES_256_GCM, without a Tink output prefix.
type WrapKey struct {
	handle *keyset.Handle
	dec    tink.HybridDecrypt
	pub    WrapPublicKey
}

func hpkeParameters() (*hpke.Parameters, error) {
	return hpke.NewParameters(hpke.ParametersOpts{
		KEMID:   hpke.DHKEM_X25519_HKDF_SHA256,
		KDFID:   hpke.HKDFSHA256,
		AEADID:  hpke.AES256GCM,
		Variant: hpke.VariantNoPrefix,
	})
}

// NewWrapKey returns a fresh HPKE key pair.
func NewWrapKey() (*WrapKey, error) {
	h, err := keyset.NewHandle(hybrid.DHKEM_X25519_HKDF_SHA256_HKDF_SHA256_AES_256_GCM_Raw_Key_Template())
	if err != nil {
		return nil, fmt.Errorf("crypto: new wrap key: %w", err)
	}
	return wrapKeyFromHandle(h)
}

func wrapKeyFromHandle(h *keyset.Handle) (*WrapKey, error) {
	e, err := h.Primary()
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap key: %w", err)
	}
	priv, ok := e.Key().(*hpke.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an HPKE private key", ErrKeyFile)
	}
	want, err := hpkeParameters()
	if err != nil {
		return nil, err
	}
	if !priv.Parameters().Equal(want) {
		return nil, fmt.Errorf("%w: HPKE key parameters are not X25519/HKDF-SHA256/AES-256-GCM without prefix", ErrKeyFile)
	}
	pk, err := priv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap key: %w", err)
	}
	dec, err := hybrid.NewHybridDecrypt(h)
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap key: %w", err)
	}
	return &WrapKey{handle: h, dec: dec, pub: pk.(*hpke.PublicKey).PublicKeyBytes()}, nil
}

// Public returns the key's raw X25519 public key.
func (k *WrapKey) Public() WrapPublicKey { return k.pub }

// Wrap seals dek for the holder of to, bound to c and to the recipient key itself.
func Wrap(dek *DEK, to WrapPublicKey, c WrapContext) ([]byte, error) {
	enc, err := hybridEncrypt(to)
	if err != nil {
		return nil, err
	}
	raw, err := dek.marshal()
	if err != nil {
		return nil, err
	}
	defer zero(raw)
	ct, err := enc.Encrypt(raw, c.info(to))
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap: %w", err)
	}
	return ct, nil
}

func hybridEncrypt(to WrapPublicKey) (tink.HybridEncrypt, error) {
	if len(to) != x25519KeySize {
		return nil, fmt.Errorf("crypto: wrap: recipient key is %d bytes, want %d", len(to), x25519KeySize)
	}
	params, err := hpkeParameters()
	if err != nil {
		return nil, err
	}
	pk, err := hpke.NewPublicKey(to, 0, params)
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap: recipient key: %w", err)
	}
	h, err := handleOf(pk)
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap: %w", err)
	}
	enc, err := hybrid.NewHybridEncrypt(h)
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap: %w", err)
	}
	return enc, nil
}

// Unwrap opens a DEK wrapped for this key under c. Any mismatch — another recipient,
// chain, record or grant, or altered bytes — gives ErrUnwrap.
func (k *WrapKey) Unwrap(wrapped []byte, c WrapContext) (*DEK, error) {
	raw, err := k.dec.Decrypt(wrapped, c.info(k.pub))
	if err != nil {
		return nil, ErrUnwrap
	}
	defer zero(raw)
	return unmarshalDEK(raw)
}

// FormatWrapPublicKey is the text form of a wrap key: standard base64 of the raw bytes.
func FormatWrapPublicKey(pub WrapPublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// ParseWrapPublicKey parses FormatWrapPublicKey's output.
func ParseWrapPublicKey(s string) (WrapPublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != x25519KeySize {
		return nil, fmt.Errorf("crypto: wrap key %q: want base64 of %d bytes", truncate(s, 60), x25519KeySize)
	}
	return WrapPublicKey(b), nil
}
