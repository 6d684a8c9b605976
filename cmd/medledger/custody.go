package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/consent"
)

func recordCustodyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "custody RECORD-ID",
		Short: "Show a record's custody: custodians, threshold, acceptances, and who has not attested its erasure (the node's API, a staff token)",
		Args:  cobra.ExactArgs(1),
	}
	api := addAPIFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id := consent.RecordID(args[0])
		if !id.Valid() {
			return fmt.Errorf("record custody: %q is not a record ID: 32 lowercase hex digits", consent.Truncate(args[0], 80))
		}
		a, err := api.open("record custody", staff)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
		defer cancel()
		var st consent.CustodyStatus
		if err := a.Get(ctx, "/records/"+string(id)+"/custody", nil, &st); err != nil {
			return err
		}
		printCustody(cmd.OutOrStdout(), &st)
		return nil
	}
	return cmd
}

func printCustody(out io.Writer, st *consent.CustodyStatus) {
	held := "whole key"
	if st.Threshold > 0 {
		held = fmt.Sprintf("%d of %d shares", st.Threshold, len(st.Custodians))
	}
	fmt.Fprintf(out, "record       %s\n", st.Record)
	fmt.Fprintf(out, "custodians   %s (%s)\n", join(st.Custodians), held)
	fmt.Fprintf(out, "accepted     %s\n", attesters(st.Accepted))
	fmt.Fprintf(out, "available    %t\n", st.Available)
	if st.Epoch > 0 {
		fmt.Fprintf(out, "epoch        %d (re-shared)\n", st.Epoch)
	}
	if rs := st.Resharing; rs != nil {
		fmt.Fprintf(out, "re-sharing   to %s (epoch %d): dealt by %s%s, accepted by %s\n", join(rs.To), rs.Epoch,
			orNone(join(rs.Dealers)), map[bool]string{true: " (all deals in)", false: ""}[rs.Dealt], attesters(rs.Accepted))
	}
	if st.Erased == 0 {
		return
	}
	fmt.Fprintf(out, "erased       at height %d\n", st.Erased)
	fmt.Fprintf(out, "attested     %s\n", attesters(st.Attested))
	fmt.Fprintf(out, "unattested   %s\n", orNone(join(st.Unattested)))
	if len(st.Departed) > 0 {
		fmt.Fprintf(out, "departed     %s (left the consortium without attesting)\n", join(st.Departed))
	}
	fmt.Fprintf(out, "complete     %t\n", st.ErasureComplete)
}

func attesters(as []consent.Attestation) string {
	ids := make([]consent.HospitalID, len(as))
	for i, a := range as {
		ids[i] = a.Custodian
	}
	return orNone(join(ids))
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
