package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/node/chainbench"
)

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine: `bench chain` (the default) measures the consent chain",
		Args:  cobra.NoArgs,
	}
	chain := benchChainCmd()
	cmd.RunE = chain.RunE
	cmd.Flags().AddFlagSet(chain.Flags())
	cmd.AddCommand(chain)
	return cmd
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
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
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
