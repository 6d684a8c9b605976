package crypto

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Hospital is the key material of one member hospital:
//   - Operator signs the hospital's chain transactions;
//   - Node is the node's identity on the network (its libp2p peer ID and CometBFT node
//     ID), so the peer that serves blocks and the validator are the same hospital;
//   - Wrap receives DEKs wrapped for this hospital.
type Hospital struct {
	Operator *SigningKey
	Node     *SigningKey
	Wrap     *WrapKey
}

// Key file names inside a key directory.
const (
	KEKFile      = "kek.json"
	operatorFile = "operator.keyset.json"
	nodeFile     = "node.keyset.json"
	wrapFile     = "wrap.keyset.json"
)

// GenerateHospital returns fresh keys for a hospital.
func GenerateHospital() (*Hospital, error) {
	op, err := NewSigningKey()
	if err != nil {
		return nil, err
	}
	node, err := NewSigningKey()
	if err != nil {
		return nil, err
	}
	w, err := NewWrapKey()
	if err != nil {
		return nil, err
	}
	return &Hospital{Operator: op, Node: node, Wrap: w}, nil
}

// Save writes the hospital's keys into dir, each encrypted under kek, mode 0600. It
// refuses to overwrite existing key files.
func (h *Hospital) Save(dir string, kek *KEK) error {
	if err := SaveSigningKey(filepath.Join(dir, operatorFile), h.Operator, kek, "operator"); err != nil {
		return err
	}
	if err := SaveSigningKey(filepath.Join(dir, nodeFile), h.Node, kek, "node"); err != nil {
		return err
	}
	return SaveWrapKey(filepath.Join(dir, wrapFile), h.Wrap, kek)
}

// LoadHospital reads keys written by Save.
func LoadHospital(dir string, kek *KEK) (*Hospital, error) {
	op, err := LoadSigningKey(filepath.Join(dir, operatorFile), kek, "operator")
	if err != nil {
		return nil, err
	}
	node, err := LoadSigningKey(filepath.Join(dir, nodeFile), kek, "node")
	if err != nil {
		return nil, err
	}
	w, err := LoadWrapKey(filepath.Join(dir, wrapFile), kek)
	if err != nil {
		return nil, err
	}
	return &Hospital{Operator: op, Node: node, Wrap: w}, nil
}

// HospitalPublic is what other members need to know of a hospital's keys. Its JSON
// form is the public key file that `medledger record put --for` reads.
type HospitalPublic struct {
	Name     string        `json:"name"`
	Operator PublicKey     `json:"operator_key"`
	Node     PublicKey     `json:"node_key"`
	Wrap     WrapPublicKey `json:"wrap_key"`
}

// Public returns the public half of h under the given display name.
func (h *Hospital) Public(name string) HospitalPublic {
	return HospitalPublic{Name: name, Operator: h.Operator.Public(), Node: h.Node.Public(), Wrap: h.Wrap.Public()}
}

// Validate checks every key has its proper size.
func (p HospitalPublic) Validate() error {
	switch {
	case len(p.Operator) != 32:
		return fmt.Errorf("crypto: hospital %q: operator_key must be 32 bytes (base64), got %d", p.Name, len(p.Operator))
	case len(p.Node) != 32:
		return fmt.Errorf("crypto: hospital %q: node_key must be 32 bytes (base64), got %d", p.Name, len(p.Node))
	case len(p.Wrap) != x25519KeySize:
		return fmt.Errorf("crypto: hospital %q: wrap_key must be 32 bytes (base64), got %d", p.Name, len(p.Wrap))
	}
	return nil
}

// ReadHospitalPublic reads and validates a public key file.
func ReadHospitalPublic(path string) (HospitalPublic, error) {
	var p HospitalPublic
	b, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("crypto: hospital public key file: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("crypto: hospital public key file %s: %v", path, err)
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("hospital public key file %s: %w", path, err)
	}
	return p, nil
}
