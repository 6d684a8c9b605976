package node

// The key file: a DEK wrapped for one hospital, the format of a custodian's own
// copy of a record's key and of the file `record put` writes and `record get --key`
// reads.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medledger/medledger/crypto"
)

// KeyFile is a DEK wrapped for one hospital, with everything needed to use it: the
// JSON file `medledger record put` writes and `medledger record get --key` reads.
type KeyFile struct {
	Chain     crypto.ChainID       `json:"chain_id"`
	Record    string               `json:"record_id"`
	CID       string               `json:"cid"`
	Grant     crypto.GrantID       `json:"grant_id,omitempty"`
	Recipient crypto.WrapPublicKey `json:"recipient"`
	Wrapped   []byte               `json:"wrapped_dek"`
	// Share, if set, says Wrapped holds that share of the DEK (crypto.WrapShare), a
	// custodian's own copy of its share of a record in threshold custody; Unwrap
	// does not open it.
	Share crypto.ShareIndex `json:"share,omitempty"`
}

// NewKeyFile wraps dek for recipient under grant.
func NewKeyFile(s Sealed, dek *crypto.DEK, chain crypto.ChainID, grant crypto.GrantID, recipient crypto.WrapPublicKey) (*KeyFile, error) {
	w, err := crypto.Wrap(dek, recipient, crypto.WrapContext{Chain: chain, Record: s.ID, Grant: grant})
	if err != nil {
		return nil, err
	}
	return &KeyFile{Chain: chain, Record: s.ID.String(), CID: s.CID.String(), Grant: grant, Recipient: recipient, Wrapped: w}, nil
}

// Unwrap opens the key file with this hospital's wrap key.
func (k *KeyFile) Unwrap(key *crypto.WrapKey) (*crypto.DEK, crypto.RecordID, error) {
	id, err := crypto.ParseRecordID(k.Record)
	if err != nil {
		return nil, id, fmt.Errorf("record: key file: %w", err)
	}
	dek, err := key.Unwrap(k.Wrapped, crypto.WrapContext{Chain: k.Chain, Record: id, Grant: k.Grant})
	return dek, id, err
}

// Syncer makes what was written to f (a file, or a directory's entries) durable:
// (*os.File).Sync, or a test's recorder or fault.
type Syncer func(f *os.File) error

// Write writes the key file to path, mode 0600, refusing to overwrite, and makes
// it durable before it returns (WriteSynced with (*os.File).Sync).
func (k *KeyFile) Write(path string) error { return k.WriteSynced(path, (*os.File).Sync) }

// WriteSynced writes the key file to a temporary file beside path, syncs it, links
// it into place (refusing to overwrite) and syncs the directory, so that once it
// returns nil the key survives a crash or power loss; after a crash before that,
// path is absent or whole. On error path does not exist (it is removed if it was
// linked but its directory could not be synced).
func (k *KeyFile) WriteSynced(path string, sync Syncer) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := writeTemp(dir, append(b, '\n'), sync, func(tmp string) error { return os.Link(tmp, path) }); err != nil {
		return fmt.Errorf("record: key file: %w", err)
	}
	if err := syncDir(dir, sync); err != nil {
		os.Remove(path)
		return fmt.Errorf("record: key file: %w", err)
	}
	return nil
}

// writeTemp writes b to a new file in dir (mode 0600), syncs it and hands its name
// to place; the temporary name is removed in any case.
func writeTemp(dir string, b []byte, sync Syncer, place func(tmp string) error) error {
	f, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := sync(f); err != nil {
		f.Close()
		return fmt.Errorf("sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return place(f.Name())
}

// syncDir makes dir's entries durable.
func syncDir(dir string, sync Syncer) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := sync(d); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ReadKeyFile reads a key file written by Write.
func ReadKeyFile(path string) (*KeyFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("record: key file: %w", err)
	}
	var k KeyFile
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("record: key file %s is not a medledger key file: %v", path, err)
	}
	if k.Record == "" || k.CID == "" || len(k.Wrapped) == 0 {
		return nil, fmt.Errorf("record: key file %s lacks record_id, cid or wrapped_dek", path)
	}
	return &k, nil
}
