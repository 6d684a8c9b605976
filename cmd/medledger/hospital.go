package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/consent"
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
		res, err := submitAsHospital(cmd, *node, consent.Body{Kind: consent.KindLeave, Leave: &consent.Leave{Hospital: id}})
		if err != nil {
			return err
		}
		left := "false (more votes needed: 2/3 of the members' power)"
		if v, _ := eventAttr(res, "leave", "left"); v == "true" {
			left = "true"
		}
		reshares, _ := eventAttr(res, "leave", "reshares")
		fmt.Fprintf(cmd.OutOrStdout(), "voted     %s leaves\nheight    %d\nleft      %s\n", id, res.Height, left)
		if reshares != "" {
			fmt.Fprintf(cmd.OutOrStdout(), "re-shared %s records in threshold custody\n", reshares)
		}
		return nil
	}
	cmd.AddCommand(leave)
	return cmd
}
