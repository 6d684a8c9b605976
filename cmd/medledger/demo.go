package main

import (
	"github.com/spf13/cobra"

	"github.com/medledger/medledger/internal/demo"
)

func demoCmd() *cobra.Command {
	var cfg demo.Config
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole story on a 4-hospital consortium on this machine with embedded Synthea data; exits 0 only if every step behaves",
		Args:  cobra.NoArgs,
		Long: `Run the whole story on a 4-hospital consortium on this machine with embedded Synthea data.
The hospitals' homes go to a temporary directory, removed after, unless --home names one
(empty or absent). It exits 0 only if every step behaves as expected.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("home") {
				cfg.Dir = homeFlag(cmd)
			}
			return demo.Run(cmd.Context(), cmd.OutOrStdout(), cfg)
		},
	}
	cmd.Flags().BoolVar(&cfg.Serve, "serve", false, "keep the network up after the story and print the API and web pages' URLs")
	return cmd
}
