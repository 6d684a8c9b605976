package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
)

func hospitalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "hospital", Short: "The consortium's members: votes on who leaves"}
	leave := &cobra.Command{
		Use:   "leave HOSPITAL-ID",
		Short: "Vote, signed with this hospital's operator key, that a member leave the consortium",
		Long: `Vote, signed with this hospital's operator key, that a member leave the consortium
(a hospital may vote for its own leaving). It leaves once members holding at least 2/3 of
the voting power have voted so: it is then out of the registry (no node admits its peer),
out of the validator set, and every record it held in threshold custody is re-shared to a
new set of custodians (see 'medledger record custody').`,
		Args: cobra.ExactArgs(1),
	}
	node := addNodeFlag(leave)
	leave.RunE = func(cmd *cobra.Command, args []string) error {
		id := consent.HospitalID(args[0])
		if !id.Valid() {
			return fmt.Errorf("hospital leave: %q is not a hospital ID: 1-32 lowercase letters, digits and dashes", consent.Truncate(args[0], 40))
		}
		h, err := home.Load(homeFlag(cmd))
		if err != nil {
			return err
		}
		body := consent.Body{Kind: consent.KindLeave, Leave: &consent.Leave{Hospital: id}}
		var res *consent.Committed
		err = onChainShowing(cmd.Context(), cmd.ErrOrStderr(), *node, func(ctx context.Context, c *client.Client) error {
			res, err = c.Submit(ctx, body, h.Keys.Operator)
			return err
		})
		if err != nil {
			return err
		}
		left, reshares := "false (more votes needed: 2/3 of the members' power)", ""
		for _, e := range res.Events {
			for _, a := range e.Attrs {
				switch {
				case e.Type == "leave" && a.Key == "left":
					left = "true"
				case e.Type == "leave" && a.Key == "reshares":
					reshares = a.Value
				}
			}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "voted     %s leaves\nheight    %d\nleft      %s\n", id, res.Height, left)
		if reshares != "" {
			fmt.Fprintf(cmd.OutOrStdout(), "re-shared %s records in threshold custody\n", reshares)
		}
		return nil
	}
	cmd.AddCommand(leave)
	return cmd
}
