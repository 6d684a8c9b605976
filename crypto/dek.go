package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/cloudflare/circl/group"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/key"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/secretdata"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
	"github.com/tink-crypto/tink-go/v2/streamingaead/aesgcmhkdf"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// DEK is one record's data encryption key: a Streaming AEAD key
// (AES256_GCM_HKDF_1MB) that seals exactly one record.
type DEK struct {
	handle *keyset.Handle
	saead  tink.StreamingAEAD
	// secret is the Ristretto255 scalar the key was derived from (NewDEK, Combine),
	// which Split shares; nil for a DEK read from a wrapped keyset.
	secret group.Scalar
}

// dekLabel is the HKDF info that derives a DEK's key material from its secret.
const dekLabel = "medledger/dek-from-secret/v1"

// NewDEK returns a fresh random DEK, derived from a random secret that Split can share.
func NewDEK() (*DEK, error) {
	return dekFromSecret(custodyGroup.RandomScalar(rand.Reader))
}

// dekFromSecret derives the DEK's 32 bytes of AES256_GCM_HKDF_1MB key material from
// secret with HKDF-SHA256, so the same secret always gives the same key.
func dekFromSecret(secret group.Scalar) (*DEK, error) {
	s, err := secret.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("crypto: DEK secret: %w", err)
	}
	defer zero(s)
	ikm, err := hkdf.Key(sha256.New, s, nil, dekLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("crypto: DEK key material: %w", err)
	}
	defer zero(ikm)
	params, err := aesgcmhkdf.NewParameters(aesgcmhkdf.ParametersOpts{
		KeySizeInBytes: 32, DerivedKeySizeInBytes: 32, HKDFHashType: aesgcmhkdf.SHA256, SegmentSizeInBytes: 1 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("crypto: DEK parameters: %w", err)
	}
	key, err := aesgcmhkdf.NewKey(params, secretdata.NewBytesFromData(ikm, insecuresecretdataaccess.Token{}))
	if err != nil {
		return nil, fmt.Errorf("crypto: DEK key: %w", err)
	}
	h, err := handleOf(key)
	if err != nil {
		return nil, fmt.Errorf("crypto: DEK keyset: %w", err)
	}
	d, err := dekFromHandle(h)
	if err != nil {
		return nil, err
	}
	d.secret = secret.Copy()
	return d, nil
}

// handleOf is a keyset holding k alone, as its primary key.
func handleOf(k key.Key) (*keyset.Handle, error) {
	km := keyset.NewManager()
	id, err := km.AddKey(k)
	if err != nil {
		return nil, err
	}
	if err := km.SetPrimary(id); err != nil {
		return nil, err
	}
	return km.Handle()
}

func dekFromHandle(h *keyset.Handle) (*DEK, error) {
	p, err := streamingaead.New(h)
	if err != nil {
		return nil, fmt.Errorf("crypto: DEK primitive: %w", err)
	}
	return &DEK{handle: h, saead: p}, nil
}

// Encrypt returns a writer that seals what is written to it into w, bound to b.
// Close must be called to write the final segment; an unclosed stream does not decrypt.
func (d *DEK) Encrypt(w io.Writer, b Binding) (io.WriteCloser, error) {
	ew, err := d.saead.NewEncryptingWriter(w, b.associatedData())
	if err != nil {
		return nil, fmt.Errorf("crypto: encrypt: %w", err)
	}
	return ew, nil
}

// Decrypt returns a reader of the plaintext sealed in r under b. Reads fail with
// ErrDecrypt as soon as a segment does not authenticate, so no unauthenticated byte is
// ever returned (segments before a damaged one are authentic and may already have
// been read); a truncated stream fails at its end. Treat the output as the record only
// once Read has returned io.EOF.
func (d *DEK) Decrypt(r io.Reader, b Binding) (io.Reader, error) {
	dr, err := d.saead.NewDecryptingReader(r, b.associatedData())
	if err != nil {
		return nil, ErrDecrypt
	}
	return &decryptReader{r: dr}, nil
}

type decryptReader struct{ r io.Reader }

func (d *decryptReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		return n, ErrDecrypt
	}
	return n, err
}

// marshal serialises the DEK's keyset for wrapping. The caller must zero the result.
func (d *DEK) marshal() ([]byte, error) {
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(d.handle, keyset.NewBinaryWriter(&buf)); err != nil {
		return nil, fmt.Errorf("crypto: serialise DEK: %w", err)
	}
	return buf.Bytes(), nil
}

func unmarshalDEK(b []byte) (*DEK, error) {
	h, err := insecurecleartextkeyset.Read(keyset.NewBinaryReader(bytes.NewReader(b)))
	if err != nil {
		return nil, ErrUnwrap
	}
	return dekFromHandle(h)
}

func zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
