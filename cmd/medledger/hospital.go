package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/client"
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
new set of custodians (see 'medledger record custody').

A leaving validator takes its voting power with it: the vote is refused (nothing is sent) if the
validators this node reaches, without the one leaving, would hold no more than 2/3 of
the power, since the chain would then stop making blocks until enough of the others are
back. Bring them back first, or vote with --force.`,
		Args: cobra.ExactArgs(1),
	}
	node := addNodeFlag(leave)
	force := leave.Flags().Bool("force", false, "vote even if, once the hospital left, the validators this node reaches would hold no more than 2/3 of the power (the chain would stop)")
	leave.RunE = func(cmd *cobra.Command, args []string) error {
		id := consent.HospitalID(args[0])
		if !id.Valid() {
			return fmt.Errorf("hospital leave: %q is not a hospital ID: 1-32 lowercase letters, digits and dashes", consent.Truncate(args[0], 40))
		}
		var check []func(context.Context, *client.Client) error
		if !*force {
			check = append(check, func(ctx context.Context, c *client.Client) error { return leaveKeepsQuorum(ctx, c, id) })
		}
		res, err := submitAsHospital(cmd, *node, consent.Body{Kind: consent.KindLeave, Leave: &consent.Leave{Hospital: id}}, check...)
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

// leaveKeepsQuorum refuses a vote after which, were id to leave, the validators c's node
// reaches would hold no more than 2/3 of the power. An ID not in the registry is left
// for the chain to refuse.
func leaveKeepsQuorum(ctx context.Context, c *client.Client, id consent.HospitalID) error {
	var hs []consent.Hospital
	if err := c.Query(ctx, "/hospitals", &hs); err != nil {
		return fmt.Errorf("reading the chain's hospital registry: %w", err)
	}
	i := slices.IndexFunc(hs, func(h consent.Hospital) bool { return h.ID == id })
	if i < 0 {
		return nil
	}
	r, err := c.ReachableWithout(ctx, ed25519.PublicKey(hs[i].Node))
	if err != nil {
		return err
	}
	if !r.Quorum() {
		return fmt.Errorf("once %s left, the validators this node reaches would hold %d of %d of the voting power (%d of %d validators), "+
			"not more than 2/3: the chain would stop making blocks; bring the others back first, or vote with --force",
			id, r.PowerUp, r.PowerUp+r.PowerDown, r.Reachable, r.Total)
	}
	return nil
}
