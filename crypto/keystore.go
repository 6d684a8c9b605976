package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// KEK is the local key encryption key under which every other keyset at rest is
// encrypted: an AES256_GCM Tink keyset kept in its own file of mode 0600. (A KMS such
// as Vault transit can take its place later; the keyset files do not change.)
type KEK struct{ aead tink.AEAD }

// NewKEK returns a fresh KEK that lives only in memory until SaveKEK.
func NewKEK() (*KEK, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("crypto: new KEK: %w", err)
	}
	return kekFromHandle(h)
}

func kekFromHandle(h *keyset.Handle) (*KEK, error) {
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("%w: KEK: %v", ErrKeyFile, err)
	}
	return &KEK{aead: a}, nil
}

// CreateKEK generates a KEK and writes it to path (mode 0600). It refuses to overwrite.
func CreateKEK(path string) (*KEK, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("crypto: new KEK: %w", err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return nil, fmt.Errorf("crypto: KEK: %w", err)
	}
	defer zero(buf.Bytes())
	if err := writeNew(path, buf.Bytes()); err != nil {
		return nil, err
	}
	return kekFromHandle(h)
}

// LoadKEK reads a KEK written by CreateKEK.
func LoadKEK(path string) (*KEK, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer zero(b)
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return nil, fmt.Errorf("%w %s: not a KEK keyset", ErrKeyFile, path)
	}
	return kekFromHandle(h)
}

// saveKeyset writes h encrypted under kek, with purpose bound in as associated data so
// that one key file cannot be swapped for another.
func saveKeyset(path string, h *keyset.Handle, kek *KEK, purpose string) error {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewJSONWriter(&buf), kek.aead, []byte(purpose)); err != nil {
		return fmt.Errorf("crypto: encrypt keyset %s: %w", filepath.Base(path), err)
	}
	return writeNew(path, buf.Bytes())
}

func loadKeyset(path string, kek *KEK, purpose string) (*keyset.Handle, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	h, err := keyset.ReadWithAssociatedData(keyset.NewJSONReader(bytes.NewReader(b)), kek.aead, []byte(purpose))
	if err != nil {
		return nil, fmt.Errorf("%w %s: does not decrypt under this KEK as a %s key", ErrKeyFile, path, purpose)
	}
	return h, nil
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %s: not found", ErrKeyFile, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	return b, nil
}

// writeNew writes data to a new file of mode 0600, durably, refusing to replace one.
func writeNew(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("crypto: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("crypto: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("crypto: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("crypto: sync %s: %w", path, err)
	}
	return f.Close()
}

// SaveSigningKey writes k to path encrypted under kek; purpose names the role
// ("operator", "node", "patient") and must be given again to load it.
func SaveSigningKey(path string, k *SigningKey, kek *KEK, purpose string) error {
	return saveKeyset(path, k.handle, kek, "medledger ed25519 "+purpose)
}

// LoadSigningKey reads a key written by SaveSigningKey with the same purpose.
func LoadSigningKey(path string, kek *KEK, purpose string) (*SigningKey, error) {
	h, err := loadKeyset(path, kek, "medledger ed25519 "+purpose)
	if err != nil {
		return nil, err
	}
	return signingKeyFromHandle(h)
}

// SaveWrapKey writes k to path encrypted under kek.
func SaveWrapKey(path string, k *WrapKey, kek *KEK) error {
	return saveKeyset(path, k.handle, kek, "medledger hpke wrap")
}

// LoadWrapKey reads a key written by SaveWrapKey.
func LoadWrapKey(path string, kek *KEK) (*WrapKey, error) {
	h, err := loadKeyset(path, kek, "medledger hpke wrap")
	if err != nil {
		return nil, err
	}
	return wrapKeyFromHandle(h)
}
