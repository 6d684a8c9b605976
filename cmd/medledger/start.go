package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/home"
)

func startCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Run this hospital's node: consent-chain validator, libp2p host (bitswap, key release), HTTP API",
		Long: `Run this hospital's node until SIGINT or SIGTERM: the CometBFT validator of the consent
chain with the consent state machine, the libp2p host serving ciphertext and the key-release
protocol to member hospitals (as the chain's registry says), and the HTTP API.

If the node fails (its consensus or storage), it stops serving keys and records, answers 503
on /healthz, and exits with status 1 and the reason in one line, for its supervisor to
restart it.

The home needs a genesis.json and the [chain] ports: see medledger testnet.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := home.Load(homeFlag(cmd))
			if err != nil {
				return err
			}
			n, err := node.Start(cmd.Context(), node.Config{Home: h})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (%s) running: api %s, chain rpc %s; stop with Ctrl-C\n",
				h.Config.Name, h.Config.ID, n.APIURL(), h.Config.Chain.RPCListen)
			select {
			case <-cmd.Context().Done():
			case <-n.Done():
			}
			cerr := n.Close()
			if err := n.Err(); err != nil {
				return err
			}
			return cerr
		},
	}
}

func testnetCmd() *cobra.Command {
	var cfg node.TestnetConfig
	cmd := &cobra.Command{
		Use:   "testnet --out DIR",
		Short: "Create the homes of an N-hospital consortium on this machine (one genesis, loopback ports)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Custodians < 0 {
				return fmt.Errorf("testnet: --custodians %d: want at least 1", cfg.Custodians)
			}
			if cfg.Custodians == 0 { // the chain's default custody (consent.Params), not node.Testnet's whole keys
				cfg.Custodians = max(1, min(cfg.Hospitals, 3))
			}
			if cfg.Threshold == 0 {
				cfg.Threshold = (cfg.Custodians + 1) / 2
			}
			homes, err := node.Testnet(cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "chain %s: %d hospitals in %s\n", homes[0].Config.ChainID, len(homes), cfg.Dir)
			switch {
			case cfg.Custodians == 1:
				fmt.Fprintf(out, "custody: each record's key whole at the hospital that ingests it\n")
			case cfg.Threshold == 1:
				fmt.Fprintf(out, "custody: each record on %d hospitals, each holding its key whole (1 of %d)\n", cfg.Custodians, cfg.Custodians)
			default:
				fmt.Fprintf(out, "custody: each record on %d hospitals, its key shared %d of %d among them\n", cfg.Custodians, cfg.Threshold, cfg.Custodians)
			}
			self, _ := os.Executable()
			for _, h := range homes {
				fmt.Fprintf(out, "  %-8s api http://%s  rpc %s  tokens %s\n", h.Config.ID, h.Config.API.Listen,
					h.Config.Chain.RPCListen, h.Path(home.TokensFile))
			}
			fmt.Fprintf(out, "start each: %s start --home %s\n", filepath.Base(self), filepath.Join(cfg.Dir, homes[0].Config.ID))
			first := homes[0].Config
			fmt.Fprintf(out, "export MEDLEDGER_NODE=http://%s MEDLEDGER_API=http://%s   # %s's node for the CLI\n",
				strings.TrimPrefix(first.Chain.RPCListen, "tcp://"), first.API.Listen, first.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Dir, "out", "", "directory for the homes (must be empty or absent)")
	cmd.Flags().IntVar(&cfg.Hospitals, "hospitals", 4, "how many hospitals")
	cmd.Flags().StringVar(&cfg.ChainID, "chain-id", "medledger-testnet", "the chain ID")
	cmd.Flags().StringVar(&cfg.EmptyBlockInterval, "empty-blocks", home.DefaultEmptyBlockInterval,
		"chain.empty_block_interval of every home: a heartbeat such as 30s, off (no blocks while idle), or 0s (continuous, for demos)")
	cmd.Flags().IntVar(&cfg.Custodians, "custodians", 0,
		"custodians of each record (r): its ciphertext on r hospitals, its key shared k-of-r among them; 1 keeps each key whole at the hospital that ingests it (default: the chain's, min(hospitals, 3))")
	cmd.Flags().IntVar(&cfg.Threshold, "threshold", 0, "key shares that release a record's key (k, 1 ≤ k ≤ r; default ⌈r/2⌉: 2 of 3)")
	cmd.MarkFlagRequired("out")
	return cmd
}
