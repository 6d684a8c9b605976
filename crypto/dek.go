package crypto

import (
	"bytes"
	"fmt"
	"io"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// DEK is one record's data encryption key: a Streaming AEAD key
// (AES256_GCM_HKDF_1MB) that seals exactly one record.
type DEK struct {
	handle *keyset.Handle
	saead  tink.StreamingAEAD
}

// NewDEK returns a fresh random DEK.
func NewDEK() (*DEK, error) {
	h, err := keyset.NewHandle(streamingaead.AES256GCMHKDF1MBKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("crypto: new DEK: %w", err)
	}
	return dekFromHandle(h)
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
