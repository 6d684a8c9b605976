package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/client"
)

func txCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tx", Short: "Submitted txs: did one commit?"}
	cmd.AddCommand(txStatusCmd())
	return cmd
}

func txStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status HASH",
		Short: "Whether a submitted tx committed (height, code, log), is pending in the node's mempool, or is unknown there",
		Long: "HASH is the tx's hash (64 hex digits) that a command printed when it gave up waiting.\n" +
			"unknown: the node neither committed it nor holds it: it was not received, expired, or was evicted.",
		Args: cobra.ExactArgs(1),
	}
	node := addNodeFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		hash, err := client.ParseTxHash(args[0])
		if err != nil {
			return err
		}
		var st *client.TxStatus
		if err := onChain(cmd.Context(), *node, func(ctx context.Context, c *client.Client) error {
			st, err = c.TxStatus(ctx, hash)
			return err
		}); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(cmd, st)
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "tx      %s\nstate   %s\n", st.Hash, st.State)
		switch st.State {
		case client.TxCommitted:
			outcome := "accepted"
			if st.Code != 0 {
				outcome = "rejected (" + consent.Code(st.Code).String() + ")"
			}
			fmt.Fprintf(out, "height  %d\ncode    %d %s\n", st.Height, st.Code, outcome)
			if st.Log != "" {
				fmt.Fprintf(out, "log     %s\n", st.Log)
			}
		case client.TxPending:
			fmt.Fprintf(out, "pending in the node's mempool (%d txs waiting); it commits when the chain makes progress\n", st.Pending)
		default:
			fmt.Fprintf(out, "not committed and not pending on this node (%d txs waiting): not received, expired or evicted\n", st.Pending)
		}
		return nil
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}
