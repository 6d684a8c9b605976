// Package home is a hospital node's home directory:
//
//	config.toml        the node's configuration (Config)
//	keys/kek.json      the local key encryption key (mode 0600)
//	keys/*.keyset.json the hospital's keys, encrypted under the KEK (mode 0600)
//	keys/hospital.pub.json  the public keys other hospitals need (shareable)
//	data/blocks/       the block store (ciphertext only)
//	data/dek/          the DEKs of records this hospital holds, each wrapped to itself
//	data/chain/        the consent chain's data (CometBFT home and the app's store)
//	genesis.json       the consent chain's genesis (validators and hospital registry)
package home

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/web"
)

// Layout names.
const (
	ConfigFile    = "config.toml"
	KeysDir       = "keys"
	PublicKeyFile = "hospital.pub.json"
	BlocksDir     = "data/blocks"
	ChainDir      = "data/chain"
	DEKDir        = "data/dek"
	GenesisFile   = "genesis.json"
	TokensFile    = "keys/api-tokens.json" // the API's bearer tokens, in clear (0600); config keeps hashes
)

// DefaultChainID is the chain ID `medledger init` uses when none is given.
const DefaultChainID = "medledger-local"

// Config is config.toml.
type Config struct {
	Name        string        `toml:"name" comment:"this hospital's display name (no PHI)"`
	ID          string        `toml:"hospital_id" comment:"this hospital's ID in the chain's registry (default: from name)"`
	ChainID     string        `toml:"chain_id" comment:"the consent chain this node belongs to"`
	ListenAddrs []string      `toml:"listen_addrs" comment:"libp2p listen multiaddrs (bitswap, key release)"`
	Chain       ChainConfig   `toml:"chain"`
	API         APIConfig     `toml:"api"`
	Web         WebConfig     `toml:"web"`
	Ingest      IngestConfig  `toml:"ingest"`
	Custody     CustodyConfig `toml:"custody"`
	LogLevel    string        `toml:"log_level" comment:"debug, info, warn or error (default info)"`
}

// CustodyConfig is the [custody] section: what the ingesting hospital keeps of a
// record in threshold custody (its key shared k-of-r among the record's custodians).
type CustodyConfig struct {
	// KeepWholeKey keeps a copy of the whole key too, wrapped to this hospital, after
	// the shares are handed out: this hospital alone could then release the record.
	KeepWholeKey bool `toml:"keep_whole_key" comment:"after sharing a record's key among its custodians, also keep the whole key (default false: keep only this hospital's share, so no single hospital can release a record)"`
}

// IngestConfig is the [ingest] section: how much ingest work the node takes on at
// once (node.IngestGate). An ingest holds its Bundle in memory while it validates
// and seals it; zero values take the defaults.
type IngestConfig struct {
	MaxConcurrent int    `toml:"max_concurrent" comment:"ingests validated and sealed at once (default 4)"`
	MaxBytes      int64  `toml:"max_bytes" comment:"bytes of Bundles held by ingests at once, each counted at its Content-Length or else at the 64 MiB Bundle limit (default 268435456, 256 MiB; memory is about 2-3 times this)"`
	MaxWait       string `toml:"max_wait" comment:"how long an ingest waits for room before it is refused with 503 and Retry-After (Go duration, default 10s)"`
}

// validate rejects negative bounds and a malformed wait.
func (c *IngestConfig) validate() error {
	if c.MaxConcurrent < 0 || c.MaxBytes < 0 {
		return fmt.Errorf("config: ingest.max_concurrent and ingest.max_bytes must not be negative (0: the default)")
	}
	if c.MaxWait != "" {
		if d, err := time.ParseDuration(c.MaxWait); err != nil || d < 0 {
			return fmt.Errorf("config: ingest.max_wait %q: use a Go duration such as 10s (empty: the default)", c.MaxWait)
		}
	}
	return nil
}

// Wait is the parsed ingest.max_wait (0 if unset). Validate has checked it.
func (c *IngestConfig) Wait() time.Duration {
	d, _ := time.ParseDuration(c.MaxWait)
	return d
}

// ChainConfig is the [chain] section: the node's CometBFT validator.
type ChainConfig struct {
	P2PListen       string   `toml:"p2p_listen" comment:"CometBFT p2p address, tcp://host:port (a fixed port: peers dial it)"`
	RPCListen       string   `toml:"rpc_listen" comment:"CometBFT RPC address for the CLI, tcp://host:port; empty disables it"`
	PersistentPeers []string `toml:"persistent_peers" comment:"the other validators, nodeid@host:port"`
	// EmptyBlockInterval is how often an idle chain makes an empty block: a duration
	// such as "30s" (the default) is a heartbeat; "off" never; "0s" one right after
	// another (≈ 7 blocks/s: steady heights for tests and demos, ≈ 250 MB of chain data
	// per node per hour). Blocks with txs are made as soon as txs arrive whichever is
	// set. The heartbeat bounds a stall that "off" can leave for good: CometBFT drops
	// txs gossiped to a peer that is still block-syncing, and a restarted proposer
	// waiting for txs it never received then never proposes.
	EmptyBlockInterval string `toml:"empty_block_interval" comment:"how often an idle chain makes an empty block: a Go duration such as 30s (default: a heartbeat), off (never; a restarted proposer can then stall the chain until the next tx reaches it), or 0s (continuously: tests and demos)"`
}

// APIConfig is the [api] section: the node's HTTP API.
type APIConfig struct {
	Listen string     `toml:"listen" comment:"HTTP API address, host:port; empty disables the API"`
	Tokens []APIToken `toml:"tokens" comment:"bearer tokens by role, as hex SHA-256 (the tokens themselves are in keys/api-tokens.json)"`
	// Limits (api.Limits): durations are Go durations, "" or 0 the default.
	RequestTimeout    string `toml:"request_timeout" comment:"server-side deadline of a request; past it the client gets 503 with Retry-After (default 30s)"`
	IngestTimeout     string `toml:"ingest_timeout" comment:"deadline of an ingest (POST /fhir/Bundle), its upload included (default 5m)"`
	ReadHeaderTimeout string `toml:"read_header_timeout" comment:"time to send a request's headers (default 5s)"`
	ReadTimeout       string `toml:"read_timeout" comment:"time to send a whole request, body included, but an ingest (default 15s)"`
	WriteTimeout      string `toml:"write_timeout" comment:"from a request's headers to the end of its answer, above request_timeout (default request_timeout + 15s; a large record gets more)"`
	IdleTimeout       string `toml:"idle_timeout" comment:"keep-alive connection between requests (default 60s)"`
	MaxHeaderBytes    int    `toml:"max_header_bytes" comment:"largest request header (default 65536)"`
	MaxConns          int    `toml:"max_conns" comment:"open API connections (default 1024; never more than half the process's open-file limit)"`
	ClientRate        int    `toml:"client_rate" comment:"anonymous consent operations a minute per client address, IPv6 per /64 (default 60)"`
	ClientBurst       int    `toml:"client_burst" comment:"anonymous consent operations at once per client address (default 30)"`
	PatientRate       int    `toml:"patient_rate" comment:"consent writes a minute per patient key (default 10)"`
	PatientBurst      int    `toml:"patient_burst" comment:"consent writes at once per patient key (default 10)"`
}

// Timeouts are the [api] durations by key, parsed (0: unset). Validate has checked them.
func (a *APIConfig) Timeouts() map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, v := range a.timeouts() {
		d, _ := time.ParseDuration(v)
		out[k] = d
	}
	return out
}

func (a *APIConfig) timeouts() map[string]string {
	return map[string]string{
		"request_timeout": a.RequestTimeout, "ingest_timeout": a.IngestTimeout,
		"read_header_timeout": a.ReadHeaderTimeout, "read_timeout": a.ReadTimeout,
		"write_timeout": a.WriteTimeout, "idle_timeout": a.IdleTimeout,
	}
}

// validate rejects a malformed or negative duration and a negative number.
func (a *APIConfig) validate() error {
	for k, v := range a.timeouts() {
		if v == "" {
			continue
		}
		if d, err := time.ParseDuration(v); err != nil || d < 0 {
			return fmt.Errorf("config: api.%s %q: use a Go duration such as 30s (empty: the default)", k, v)
		}
	}
	for k, v := range map[string]int{"max_header_bytes": a.MaxHeaderBytes, "max_conns": a.MaxConns,
		"client_rate": a.ClientRate, "client_burst": a.ClientBurst, "patient_rate": a.PatientRate, "patient_burst": a.PatientBurst} {
		if v < 0 {
			return fmt.Errorf("config: api.%s is %d: use a positive number (0: the default)", k, v)
		}
	}
	return nil
}

// WebConfig is the [web] section: the patient's and the privacy officer's pages,
// served on the API's address.
type WebConfig struct {
	// PublicOrigin is the pages' origin as browsers reach them through a reverse
	// proxy that terminates TLS (web.Config.PublicOrigin); Validate puts it in the
	// browser's form.
	PublicOrigin string `toml:"public_origin" comment:"the pages' address as browsers reach them through a TLS-terminating reverse proxy, scheme://host[:port] with no path (e.g. https://records.example.org); the pages then accept only requests from it and make Secure cookies if it is https; empty: the address the node is reached at (no proxy); X-Forwarded-* headers are never trusted"`
}

// validate rejects a public origin that is not scheme://host[:port] and puts it in
// the form browsers send.
func (w *WebConfig) validate() error {
	if w.PublicOrigin == "" {
		return nil
	}
	o, err := web.ParseOrigin(w.PublicOrigin)
	if err != nil {
		return fmt.Errorf("config: web.public_origin %q: %v", w.PublicOrigin, err)
	}
	w.PublicOrigin = o
	return nil
}

// APIToken is one bearer token's role and hash.
type APIToken struct {
	Role   string `toml:"role" json:"role"`
	SHA256 string `toml:"sha256" json:"sha256"`
}

var (
	notIDChars = regexp.MustCompile(`[^a-z0-9]+`)
)

// IDFromName is a hospital ID made from a display name ("Ada General" → "ada-general").
func IDFromName(name string) string {
	id := strings.Trim(notIDChars.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(id) > 32 {
		id = strings.TrimRight(id[:32], "-")
	}
	return id
}

// Validate fills defaults and rejects nonsense.
func (c *Config) Validate() error {
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" {
		return errors.New("config: name is empty")
	}
	if c.ID == "" {
		c.ID = IDFromName(c.Name)
	}
	if !consent.HospitalID(c.ID).Valid() {
		return fmt.Errorf("config: hospital_id %q: use 1-32 lowercase letters, digits and dashes", c.ID)
	}
	if c.ChainID == "" {
		c.ChainID = DefaultChainID
	}
	if !consent.ValidChainID(c.ChainID) {
		return fmt.Errorf("config: chain_id %q: use 1-49 lowercase letters, digits and dashes", c.ChainID)
	}
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	if c.Chain.P2PListen != "" && !strings.HasPrefix(c.Chain.P2PListen, "tcp://") {
		return fmt.Errorf("config: chain.p2p_listen %q: use tcp://host:port", c.Chain.P2PListen)
	}
	if c.Chain.RPCListen != "" && !strings.HasPrefix(c.Chain.RPCListen, "tcp://") {
		return fmt.Errorf("config: chain.rpc_listen %q: use tcp://host:port", c.Chain.RPCListen)
	}
	if c.Chain.RPCListen != "" && !loopback(strings.TrimPrefix(c.Chain.RPCListen, "tcp://")) {
		return fmt.Errorf("config: chain.rpc_listen %q: the RPC serves every block and tx of the chain (its whole content) without "+
			"authentication; bind it to 127.0.0.1 or [::1] (an authenticating proxy may front it)", c.Chain.RPCListen)
	}
	if c.Chain.EmptyBlockInterval == "" {
		c.Chain.EmptyBlockInterval = DefaultEmptyBlockInterval
	}
	if c.Chain.EmptyBlockInterval != EmptyBlocksOff {
		if d, err := time.ParseDuration(c.Chain.EmptyBlockInterval); err != nil || d < 0 {
			return fmt.Errorf("config: chain.empty_block_interval %q: use off, or a Go duration such as 5m or 0s", c.Chain.EmptyBlockInterval)
		}
	}
	if err := c.API.validate(); err != nil {
		return err
	}
	if err := c.Web.validate(); err != nil {
		return err
	}
	if err := c.Ingest.validate(); err != nil {
		return err
	}
	for _, t := range c.API.Tokens {
		if !slices.Contains(Roles, t.Role) {
			return fmt.Errorf("config: api.tokens: role %q: use one of %s", t.Role, strings.Join(Roles, ", "))
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
			return fmt.Errorf("config: api.tokens: sha256 of a %s token must be 64 hex digits", t.Role)
		}
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log_level %q: use debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// Roles are the API's bearer-token roles.
var Roles = []string{"admin", "clinician", "privacy-officer"}

// EmptyBlocksOff is chain.empty_block_interval's value for no empty blocks.
const EmptyBlocksOff = "off"

// DefaultEmptyBlockInterval is chain.empty_block_interval's default: one empty block
// per 30 s while idle (≈ 2 small blocks a minute), which also bounds how long a
// proposer that missed a pending tx can hold the chain (see ChainConfig).
const DefaultEmptyBlockInterval = "30s"

// EmptyBlockInterval is the parsed chain.empty_block_interval, as
// chain.Config.EmptyBlockInterval takes it (chain.NoEmptyBlocks for "off"; the default
// when unset).
func (c *Config) EmptyBlockInterval() time.Duration {
	v := c.Chain.EmptyBlockInterval
	switch v {
	case EmptyBlocksOff:
		return chain.NoEmptyBlocks
	case "":
		v = DefaultEmptyBlockInterval
	}
	d, _ := time.ParseDuration(v)
	return d
}

// Home is an initialised home directory with its keys loaded.
type Home struct {
	Dir    string
	Config Config
	Keys   *crypto.Hospital
}

// Save rewrites config.toml (after Init; e.g. testnet filling in ports and peers).
func (h *Home) Save() error {
	if err := h.Config.Validate(); err != nil {
		return err
	}
	b, err := toml.Marshal(h.Config)
	if err != nil {
		return fmt.Errorf("home: %w", err)
	}
	return writeFileAtomically(h.Path(ConfigFile), b, 0o600)
}

func writeFileAtomically(path string, b []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("home: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("home: %w", err)
	}
	if err := errors.Join(f.Chmod(mode), f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("home: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("home: %w", err)
	}
	return nil
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

// loopback reports whether hostport's host is a loopback address (or localhost).
func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
