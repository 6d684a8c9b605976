package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/node/accessbench"
	"github.com/medledger/medledger/node/chainbench"
)

func benchCmd() *cobra.Command {
	var (
		chainCfg  chainbench.Config
		accessCfg accessbench.Config
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "bench [--json]",
		Short: "Measure this machine: the consent chain (`bench chain`), then key release and revocation (`bench access`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !asJSON {
				chainCfg.Progress, accessCfg.Progress = cmd.ErrOrStderr(), cmd.ErrOrStderr()
			}
			chain, err := chainbench.Run(cmd.Context(), chainCfg)
			if err != nil {
				return err
			}
			access, err := accessbench.Run(cmd.Context(), accessCfg)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd, map[string]any{"chain": chain, "access": access})
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "\nconsent chain")
			if err := chain.WriteTable(out); err != nil {
				return err
			}
			fmt.Fprintln(out, "\nkey release and revocation")
			return access.WriteTable(out)
		},
	}
	cmd.Flags().DurationVar(&chainCfg.Duration, "duration", 15*time.Second, "the chain benchmark's measured window for each app")
	cmd.Flags().IntVar(&accessCfg.Samples, "samples", 100, "key releases measured")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON (and no progress)")
	cmd.AddCommand(benchChainCmd(), benchAccessCmd())
	return cmd
}

func writeJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func benchChainCmd() *cobra.Command {
	var (
		cfg    chainbench.Config
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "chain [--duration 15s] [--concurrency N] [--json]",
		Short: "Committed consent txs per second and commit latency on 4 validators in this process, against CometBFT's kvstore",
		Long: `Runs 4 validators on 127.0.0.1 in this process, first with the consent state machine
(signed grants and access requests), then with CometBFT's kvstore example app under the
same configuration, and reports committed txs per second, commit latency (submitted to
committed) under load and one tx at a time, and the ratio of the two throughputs.
Without --concurrency it searches for the number of submitters at which each chain
saturates. A full run takes two to three minutes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !asJSON {
				cfg.Progress = cmd.ErrOrStderr()
			}
			res, err := chainbench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd, res)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return res.WriteTable(cmd.OutOrStdout())
		},
	}
	cmd.Flags().DurationVar(&cfg.Duration, "duration", 15*time.Second, "the measured window for each app, after a warm-up")
	cmd.Flags().IntVar(&cfg.Concurrency, "concurrency", 0, "txs in flight (submitters); 0 searches for the level that saturates each chain")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (and no progress)")
	return cmd
}

func benchAccessCmd() *cobra.Command {
	var (
		cfg    accessbench.Config
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "access [--samples 100] [--json]",
		Short: "Key release (request → plaintext) next to bare commit latency, and revoke → first denial, on 4 hospital nodes",
		Long: `Starts four hospital nodes on 127.0.0.1 in this process (validators, libp2p hosts,
block stores), ingests a Synthea record at one, has its patient consent, and measures,
interleaved in one run: the bare commit latency of a signed tx, and key release — an
access request submitted at another hospital until the record's plaintext is in hand
(the chain's decision, the custodian's check and HPKE-wrapped key over libp2p, the
ciphertext over bitswap, decryption). Then revocations: revoke submitted until the next
request's denial is in hand, and how many blocks after the revocation it was decided.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !asJSON {
				cfg.Progress = cmd.ErrOrStderr()
			}
			res, err := accessbench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd, res)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return res.WriteTable(cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&cfg.Samples, "samples", 100, "key releases (and bare commits) measured")
	cmd.Flags().IntVar(&cfg.Revocations, "revocations", 10, "revocations measured")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (and no progress)")
	return cmd
}
