package node

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/chain"
	"github.com/medledger/medledger/node/home"
)

// TestnetConfig configures Testnet.
type TestnetConfig struct {
	Dir       string // the homes go to Dir/<hospital id>
	Hospitals int    // how many (1-64)
	ChainID   string // default "medledger-testnet"
	// EmptyBlockInterval is each node's chain.empty_block_interval (default "0s": a
	// block right after another, for tests and demos; `medledger testnet` gives the
	// production default, a heartbeat: home.DefaultEmptyBlockInterval).
	EmptyBlockInterval string
	// Custodians and Threshold are the consortium's default custody in genesis (r and
	// k: each record's ciphertext on r custodians, its key shared k-of-r among them).
	// Zero Custodians keeps each record's key whole with the hospital that ingests it
	// (1 of 1).
	Custodians, Threshold int
}

// testnetNames are the consortium's hospitals, in order (fictional).
var testnetNames = []struct{ id, name string }{
	{"ada", "Ada General Hospital"},
	{"bayside", "Bayside Medical Center"},
	{"city", "City Children's Hospital"},
	{"dunmore", "Dunmore Community Clinic"},
	{"elmwood", "Elmwood University Hospital"},
	{"fairview", "Fairview Regional"},
	{"glenn", "Glenn Memorial"},
	{"harbor", "Harbor Health"},
}

// Power is each testnet hospital's voting power, on the chain and in the registry.
const testnetPower = 10

// Testnet creates the homes of a consortium on this machine: each with its own keys,
// loopback ports (CometBFT p2p and RPC, libp2p TCP and QUIC, HTTP API), API tokens
// (keys/api-tokens.json; config.toml keeps their hashes), every other validator as a
// persistent peer, and one genesis.json naming every hospital (names, operator, node
// and HPKE keys, libp2p addresses) as validator and registry member.
func Testnet(cfg TestnetConfig) ([]*home.Home, error) {
	if cfg.Hospitals < 1 || cfg.Hospitals > 64 {
		return nil, fmt.Errorf("node: testnet: %d hospitals (1-64)", cfg.Hospitals)
	}
	if cfg.ChainID == "" {
		cfg.ChainID = "medledger-testnet"
	}
	if cfg.EmptyBlockInterval == "" {
		cfg.EmptyBlockInterval = "0s"
	}
	if entries, err := os.ReadDir(cfg.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("node: testnet: %s is not empty", cfg.Dir)
	}
	homes := make([]*home.Home, cfg.Hospitals)
	g := consent.Genesis{Params: consent.Params{Custodians: 1, Threshold: 1}}
	if cfg.Custodians > 0 { // a zero Threshold takes the chain's default for r
		g.Params.Custodians, g.Params.Threshold = cfg.Custodians, cfg.Threshold
	}
	if r, k := g.Params.Custodians, g.Params.Threshold; r > cfg.Hospitals || r > consent.MaxCustodians || k < 0 || k > r {
		return nil, fmt.Errorf("node: testnet: custody %d of %d custodians: want 1 ≤ threshold ≤ custodians ≤ hospitals (%d)", k, r, cfg.Hospitals)
	}
	gen := &cmttypes.GenesisDoc{
		ChainID:         cfg.ChainID,
		GenesisTime:     time.Now().UTC(),
		InitialHeight:   1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
	}
	for i := range homes {
		id, name := fmt.Sprintf("hospital-%d", i+1), fmt.Sprintf("Hospital %d", i+1)
		if i < len(testnetNames) {
			id, name = testnetNames[i].id, testnetNames[i].name
		}
		tcp, err1 := chain.FreePort()
		udp, err2 := chain.FreePort()
		p2pPort, err3 := chain.FreePort()
		rpcPort, err4 := chain.FreePort()
		apiPort, err5 := chain.FreePort()
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			return nil, fmt.Errorf("node: testnet: %w", err)
		}
		c := home.Config{
			Name: name, ID: id, ChainID: cfg.ChainID,
			ListenAddrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", tcp), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", udp)},
			Chain: home.ChainConfig{
				P2PListen:          fmt.Sprintf("tcp://127.0.0.1:%d", p2pPort),
				RPCListen:          fmt.Sprintf("tcp://127.0.0.1:%d", rpcPort),
				EmptyBlockInterval: cfg.EmptyBlockInterval,
			},
			API: home.APIConfig{Listen: fmt.Sprintf("127.0.0.1:%d", apiPort)},
		}
		tokens := map[string]string{}
		for _, role := range home.Roles {
			tok, err := newToken()
			if err != nil {
				return nil, err
			}
			tokens[role] = tok
			sum := sha256.Sum256([]byte(tok))
			c.API.Tokens = append(c.API.Tokens, home.APIToken{Role: role, SHA256: hex.EncodeToString(sum[:])})
		}
		h, err := home.Init(filepath.Join(cfg.Dir, id), c)
		if err != nil {
			return nil, err
		}
		if err := writeJSON(h.Path(home.TokensFile), tokens, 0o600); err != nil {
			return nil, err
		}
		homes[i] = h
		g.Hospitals = append(g.Hospitals, consent.Hospital{ID: consent.HospitalID(id), Name: name, Power: testnetPower,
			Operator: h.Keys.Operator.Public(), Node: h.Keys.Node.Public(), Wrap: h.Keys.Wrap.Public(), Addrs: c.ListenAddrs})
		gen.Validators = append(gen.Validators, chain.ValidatorFromKey(h.Keys.Node.Public(), testnetPower, id))
	}
	appState, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	gen.AppState = appState
	if err := gen.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("node: testnet: genesis: %w", err)
	}
	for i, h := range homes {
		for j, o := range homes {
			if i == j {
				continue
			}
			nk, err := o.Keys.Node.Ed25519PrivateKey()
			if err != nil {
				return nil, err
			}
			h.Config.Chain.PersistentPeers = append(h.Config.Chain.PersistentPeers, chain.P2PAddr(nk, o.Config.Chain.P2PListen))
		}
		if err := h.Save(); err != nil {
			return nil, err
		}
		if err := gen.SaveAs(h.Path(home.GenesisFile)); err != nil {
			return nil, fmt.Errorf("node: testnet: %w", err)
		}
	}
	return homes, nil
}

// ReadTokens reads a home's API bearer tokens by role (written by Testnet).
func ReadTokens(h *home.Home) (map[string]string, error) {
	b, err := os.ReadFile(h.Path(home.TokensFile))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	var t map[string]string
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("node: %s: %w", h.Path(home.TokensFile), err)
	}
	return t, nil
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func writeJSON(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), mode); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}
