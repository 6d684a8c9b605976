package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/home"
)

func recordHandOverCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hand-over [--to HOSPITAL-ID | --withdraw] RECORD-ID",
		Short: "Hand this hospital's custody of a threshold record over to another member, signed with its operator key",
		Long: `Hand this hospital's custody of a record in threshold custody over to another member
(--to; without it the chain chooses a member that is not a custodian), signed with this
hospital's operator key. The record is re-shared on the chain to its other custodians
and that member, without any of them rebuilding its key: each custodian, this one too,
deals its share again; the new member combines its sub-shares into a share that
verifies against the new commitments, fetches and pins the ciphertext and accepts
custody. Until k new custodians have accepted, this hospital keeps its share and
releases it as before; then it destroys it and unpins the ciphertext. Follow it with
'medledger record custody'. Until then, --withdraw ends the hand-over (say this hospital
lost its share and too few others can deal).`,
		Args: cobra.ExactArgs(1),
	}
	to := cmd.Flags().String("to", "", "the member to hand custody over to (default: one the chain chooses)")
	withdraw := cmd.Flags().Bool("withdraw", false, "withdraw this hospital's hand-over of the record instead (before the new sharing is in force)")
	node := addNodeFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id := consent.RecordID(args[0])
		if !id.Valid() {
			return fmt.Errorf("record hand-over: %q is not a record ID: 32 lowercase hex digits", consent.Truncate(args[0], 80))
		}
		if *withdraw && *to != "" {
			return errors.New("record hand-over: --withdraw names no member: leave out --to")
		}
		if *to != "" && !consent.HospitalID(*to).Valid() {
			return fmt.Errorf("record hand-over: --to %q is not a hospital ID: 1-32 lowercase letters, digits and dashes", consent.Truncate(*to, 40))
		}
		h, err := home.Load(homeFlag(cmd))
		if err != nil {
			return err
		}
		res, err := submitAsHospital(cmd, *node, consent.Body{Kind: consent.KindHandOver, HandOver: &consent.HandOver{
			Custodian: consent.HospitalID(h.Config.ID), Record: id, To: consent.HospitalID(*to), Withdraw: *withdraw}})
		if err != nil {
			return err
		}
		if *withdraw {
			fmt.Fprintf(cmd.OutOrStdout(), "record     %s\nheight     %d\nwithdrawn  the hand-over; the record stays with its custodians\n", id, res.Height)
			return nil
		}
		in, _ := eventAttr(res, "reshare", "in")
		epoch, _ := eventAttr(res, "reshare", "epoch")
		fmt.Fprintf(cmd.OutOrStdout(), "record     %s\nheight     %d\nhanded to  %s\nre-sharing to epoch %s started; this hospital keeps its share until the new sharing is in force\n",
			id, res.Height, in, epoch)
		return nil
	}
	return cmd
}
