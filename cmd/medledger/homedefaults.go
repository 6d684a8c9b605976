package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"

	"github.com/medledger/medledger/node/home"
)

// Where a command finds its node. For --node (CometBFT RPC) and --api (the HTTP API)
// the order is: the flag; else $MEDLEDGER_NODE / $MEDLEDGER_API; else the home's
// config (--home, else $MEDLEDGER_HOME, else ~/.medledger): http://<chain.rpc_listen>
// and http://<api.listen>; else, for --node only, http://127.0.0.1:26657. A home that
// is absent or unreadable gives nothing (the built-in default stays).

// nodeDefaultsFromHome fills --node and --api of cmd, where it has them and neither
// the flag nor the environment set them, from the home's config.
func nodeDefaultsFromHome(cmd *cobra.Command) error {
	rpc, api := homeAddrs(homeFlag(cmd))
	fill := func(flag, env, value string) error {
		f := cmd.Flags().Lookup(flag)
		if f == nil || f.Changed || os.Getenv(env) != "" || value == "" {
			return nil
		}
		return cmd.Flags().Set(flag, value)
	}
	if err := fill("node", "MEDLEDGER_NODE", rpc); err != nil {
		return err
	}
	return fill("api", "MEDLEDGER_API", api)
}

// homeAddrs reads dir's config.toml for the node's RPC and API as http:// URLs ("" for
// each that is unset, or if the config cannot be read). It reads only the config: no
// keys are opened.
func homeAddrs(dir string) (rpc, api string) {
	if dir == "" {
		return "", ""
	}
	b, err := os.ReadFile(filepath.Join(dir, home.ConfigFile))
	if err != nil {
		return "", ""
	}
	var cfg home.Config
	if toml.Unmarshal(b, &cfg) != nil {
		return "", ""
	}
	if r, ok := strings.CutPrefix(cfg.Chain.RPCListen, "tcp://"); ok && r != "" {
		rpc = "http://" + r
	}
	if cfg.API.Listen != "" && !strings.HasSuffix(cfg.API.Listen, ":0") {
		api = "http://" + cfg.API.Listen
	}
	return rpc, api
}
