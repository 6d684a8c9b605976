package main

import (
	"github.com/spf13/cobra"

	"github.com/medledger/medledger/node/demo"
)

func demoCmd() *cobra.Command {
	var cfg demo.Config
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the record-store story on this machine with embedded Synthea data; exits 0 only if every step behaves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo.Run(cmd.Context(), cmd.OutOrStdout(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.Dir, "dir", "", "keep the hospitals' homes here (default: a temporary directory, removed after)")
	return cmd
}
