// Package home is a hospital node's home directory:
//
//	config.toml        the node's configuration (Config)
//	keys/kek.json      the local key encryption key (mode 0600)
//	keys/*.keyset.json the hospital's keys, encrypted under the KEK (mode 0600)
//	keys/hospital.pub.json  the public keys other hospitals need (shareable)
//	data/blocks/       the block store (ciphertext only)
//	data/dek/          the DEKs of records this hospital holds, each wrapped to itself
//	data/chain/        the consent chain's data (later)
package home

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/medledger/medledger/crypto"
)

// Layout names.
const (
	ConfigFile    = "config.toml"
	KeysDir       = "keys"
	PublicKeyFile = "hospital.pub.json"
	BlocksDir     = "data/blocks"
	ChainDir      = "data/chain"
	DEKDir        = "data/dek"
)

// DefaultChainID is the chain ID `medledger init` uses when none is given.
const DefaultChainID = "medledger-local"

// Config is config.toml.
type Config struct {
	Name        string   `toml:"name" comment:"this hospital's display name (no PHI)"`
	ChainID     string   `toml:"chain_id" comment:"the consent chain this node belongs to"`
	ListenAddrs []string `toml:"listen_addrs" comment:"libp2p listen multiaddrs (bitswap, key release)"`
}

var chainIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,48}$`)

// Validate fills defaults and rejects nonsense.
func (c *Config) Validate() error {
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" {
		return errors.New("config: name is empty")
	}
	if c.ChainID == "" {
		c.ChainID = DefaultChainID
	}
	if !chainIDPattern.MatchString(c.ChainID) {
		return fmt.Errorf("config: chain_id %q: use 1-49 lowercase letters, digits and dashes", c.ChainID)
	}
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	return nil
}

// Home is an initialised home directory with its keys loaded.
type Home struct {
	Dir    string
	Config Config
	Keys   *crypto.Hospital
}

// Path joins elem onto the home directory.
func (h *Home) Path(elem ...string) string { return filepath.Join(append([]string{h.Dir}, elem...)...) }

// ChainID is the configured chain ID.
func (h *Home) ChainID() crypto.ChainID { return crypto.ChainID(h.Config.ChainID) }

// Public is this hospital's public key record.
func (h *Home) Public() crypto.HospitalPublic { return h.Keys.Public(h.Config.Name) }

// ErrExists means Init found an existing home.
var ErrExists = errors.New("home: already initialised")

// Init creates a home in dir: config, KEK, keys, public key file, data dirs.
func Init(dir string, cfg Config) (*Home, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err == nil {
		return nil, fmt.Errorf("%w: %s exists (use another --home)", ErrExists, filepath.Join(dir, ConfigFile))
	}
	for _, d := range []string{KeysDir, BlocksDir, DEKDir, ChainDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("home: %w", err)
		}
	}
	kek, err := crypto.CreateKEK(filepath.Join(dir, KeysDir, crypto.KEKFile))
	if err != nil {
		return nil, err
	}
	keys, err := crypto.GenerateHospital()
	if err != nil {
		return nil, err
	}
	if err := keys.Save(filepath.Join(dir, KeysDir), kek); err != nil {
		return nil, err
	}
	h := &Home{Dir: dir, Config: cfg, Keys: keys}
	pub, err := json.MarshalIndent(h.Public(), "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(h.Path(KeysDir, PublicKeyFile), append(pub, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("home: %w", err)
	}
	// The config is written last: its presence marks a complete home.
	b, err := toml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("home: %w", err)
	}
	if err := os.WriteFile(h.Path(ConfigFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("home: %w", err)
	}
	return h, nil
}

// Load opens an initialised home.
func Load(dir string) (*Home, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("home: %s is not initialised (run `medledger init --home %s`)", dir, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("home: %w", err)
	}
	var cfg Config
	if err := toml.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("home: %s: %v", filepath.Join(dir, ConfigFile), err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("home: %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	kek, err := crypto.LoadKEK(filepath.Join(dir, KeysDir, crypto.KEKFile))
	if err != nil {
		return nil, err
	}
	keys, err := crypto.LoadHospital(filepath.Join(dir, KeysDir), kek)
	if err != nil {
		return nil, err
	}
	return &Home{Dir: dir, Config: cfg, Keys: keys}, nil
}
