package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/p2p"
)

func initCmd() *cobra.Command {
	var cfg home.Config
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a hospital node's home: config, keys (encrypted under a local KEK), data dirs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := home.Init(homeFlag(cmd), cfg)
			if err != nil {
				return err
			}
			id, err := p2p.PeerID(h.Keys.Node.Public())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "home       %s\n", h.Dir)
			fmt.Fprintf(out, "hospital   %s\n", h.Config.Name)
			fmt.Fprintf(out, "chain      %s\n", h.Config.ChainID)
			fmt.Fprintf(out, "peer       %s\n", id)
			fmt.Fprintf(out, "public     %s\n", h.Path(home.KeysDir, home.PublicKeyFile))
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Name, "name", "hospital", "this hospital's display name")
	cmd.Flags().StringVar(&cfg.ChainID, "chain-id", home.DefaultChainID, "the consent chain's ID")
	return cmd
}
