package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/spf13/cobra"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/audit"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/replay"
)

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The access log: query it, follow it, prove entries against signed headers, replay the chain",
	}
	cmd.AddCommand(auditEventsCmd(), auditFollowCmd(), auditProofCmd(), auditVerifyCmd(),
		auditAccountingCmd(), auditEmergenciesCmd(), auditReviewCmd())
	return cmd
}

// filterFlags are the access log's query filters.
type filterFlags struct {
	patient, hospital, kind, from, to string
}

func (f *filterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.patient, "patient", "", "a patient ID")
	cmd.Flags().StringVar(&f.hospital, "hospital", "", "a hospital ID (requester, custodian or recipient)")
	cmd.Flags().StringVar(&f.kind, "kind", "", "an event kind: "+kindList())
	cmd.Flags().StringVar(&f.from, "from", "", "from this date or time (2026-01-02 or RFC 3339), inclusive")
	cmd.Flags().StringVar(&f.to, "to", "", "until this date or time, inclusive (a date: to its end)")
}

func kindList() string {
	ks := make([]string, len(consent.AuditKinds))
	for i, k := range consent.AuditKinds {
		ks[i] = string(k)
	}
	return strings.Join(ks, ", ")
}

func (f *filterFlags) filter() (consent.AuditFilter, error) {
	out := consent.AuditFilter{Patient: consent.PatientID(f.patient), Hospital: consent.HospitalID(f.hospital), Kind: consent.AuditKind(f.kind)}
	if f.kind != "" && !slices.Contains(consent.AuditKinds, out.Kind) {
		return out, fmt.Errorf("--kind %q: use one of %s", f.kind, kindList())
	}
	var err error
	if out.From, err = parseWhen("--from", f.from); err != nil {
		return out, err
	}
	if out.To, err = parseWhen("--to", f.to); err != nil {
		return out, err
	}
	if len(f.to) == len(time.DateOnly) {
		out.To += 24*60*60 - 1 // a date: to its end
	}
	return out, nil
}

func auditEventsCmd() *cobra.Command {
	var (
		f      filterFlags
		before uint64
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "events [--patient ID] [--hospital ID] [--kind KIND] [--from DATE] [--to DATE]",
		Short: "Query the access log, newest first, a page at a time",
		Args:  cobra.NoArgs,
	}
	node := addNodeFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		filter, err := f.filter()
		if err != nil {
			return err
		}
		filter.Before, filter.Limit = before, limit
		data, _ := json.Marshal(filter)
		var page consent.AuditPage
		if err := onChain(cmd.Context(), *node, func(ctx context.Context, c *client.Client) error {
			return c.QueryData(ctx, "/audit/events", data, &page)
		}); err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if asJSON {
			return writeJSON(cmd, page)
		}
		writeEventHeader(out)
		for _, e := range page.Events {
			writeEvent(out, e)
		}
		if page.Next != 0 {
			fmt.Fprintf(out, "(more: --before %d)\n", page.Next)
		}
		return nil
	}
	f.add(cmd)
	cmd.Flags().Uint64Var(&before, "before", 0, "events before this index (a previous page's cursor)")
	cmd.Flags().IntVar(&limit, "limit", consent.DefaultAuditLimit, fmt.Sprintf("events per page (at most %d)", consent.MaxAuditLimit))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the page as JSON")
	return cmd
}

func writeEventHeader(w io.Writer) {
	fmt.Fprintf(w, "%-6s %-20s %-7s %-20s %-9s %-8s %-9s %s\n", "INDEX", "TIME (UTC)", "HEIGHT", "KIND", "HOSPITAL", "PURPOSE", "TO", "RECORD / REASON")
}

func writeEvent(w io.Writer, e consent.AuditEvent) {
	what := string(e.Record)
	if e.Reason != "" {
		what += " " + e.Reason
	}
	fmt.Fprintf(w, "%-6d %-20s %-7d %-20s %-9s %-8s %-9s %s\n", e.Index, time.Unix(e.Time, 0).UTC().Format("2006-01-02 15:04:05"),
		e.Height, e.Kind, e.Hospital, e.Purpose, e.Recipient, strings.TrimSpace(what))
}

func auditFollowCmd() *cobra.Command {
	var (
		f         filterFlags
		asJSON    bool
		fromEvent uint64
	)
	cmd := &cobra.Command{
		Use:   "follow --patient ID [--from-event INDEX]",
		Short: "Print access-log events as they are committed (within a block), until interrupted",
		Args:  cobra.NoArgs,
	}
	node := addNodeFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		filter, err := f.filter()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		c, err := dial(ctx, *node)
		if err != nil {
			return err
		}
		var head consent.LogRoot
		if err := c.Query(ctx, "/audit/head", &head); err != nil {
			return err
		}
		next := head.Size
		if cmd.Flags().Changed("from-event") {
			next = fromEvent
		}
		out := cmd.OutOrStdout()
		if !asJSON {
			fmt.Fprintf(out, "following the access log from event %d (Ctrl-C stops)\n", next)
			writeEventHeader(out)
		}
		height := int64(-1)
		enc := json.NewEncoder(out)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			h, err := c.Height(ctx)
			if err != nil || h == height {
				continue
			}
			height = h
			var now consent.LogRoot
			if err := c.Query(ctx, "/audit/head", &now); err != nil {
				continue
			}
			events, err := consent.EventsSince(next, now.Size, filter, pages(ctx, c))
			if err != nil {
				continue
			}
			for _, e := range events {
				if asJSON {
					enc.Encode(e)
				} else {
					writeEvent(out, e)
				}
			}
			next = now.Size
		}
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as a line of JSON")
	cmd.Flags().Uint64Var(&fromEvent, "from-event", 0, "start at this log index (e.g. to resume); default: new events only")
	return cmd
}

// loadGenesis reads the trusted genesis: --genesis, else the home's genesis.json.
func loadGenesis(cmd *cobra.Command, path string) (*cmttypes.GenesisDoc, error) {
	if path == "" {
		path = filepath.Join(homeFlag(cmd), home.GenesisFile)
	}
	gen, err := cmttypes.GenesisDocFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("trusted genesis %s: %w (use --genesis FILE)", path, err)
	}
	return gen, nil
}

func auditProofCmd() *cobra.Command {
	var (
		genesis string
		since   int64
	)
	cmd := &cobra.Command{
		Use:   "proof INDEX [--since HEIGHT] [--genesis FILE]",
		Short: "Prove an access-log event against headers signed by ≥ 2/3 of the validators' power (trusting the node for nothing)",
		Args:  cobra.ExactArgs(1),
	}
	node := addNodeFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var index uint64
		if _, err := fmt.Sscan(args[0], &index); err != nil {
			return fmt.Errorf("INDEX %q is not an event index", args[0])
		}
		gen, err := loadGenesis(cmd, genesis)
		if err != nil {
			return err
		}
		return onChain(cmd.Context(), *node, func(ctx context.Context, c *client.Client) error {
			v, err := client.NewVerifier(c, gen)
			if err != nil {
				return err
			}
			p, err := v.VerifyEvent(ctx, index)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			writeEventHeader(out)
			writeEvent(out, p.Event)
			fmt.Fprintf(out, "verified: included (%d proof hashes) in the log of %d events, root %x,\n"+
				"bound by the app hash the validators signed in header %d\n", len(p.Proof), p.Log.Size, []byte(p.Log.Root), p.Height+1)
			if since > 0 {
				a, _, err := v.VerifyConsistency(ctx, since, p.Height)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "verified: the log at height %d (%d events) extends the log at height %d (%d events)\n", p.Height, p.Log.Size, since, a.Size)
			}
			return nil
		})
	}
	cmd.Flags().StringVar(&genesis, "genesis", "", "the trusted genesis.json (default: the home's)")
	cmd.Flags().Int64Var(&since, "since", 0, "also prove the log only grew since this height")
	return cmd
}

func auditVerifyCmd() *cobra.Command {
	var (
		genesis string
		to      int64
	)
	cmd := &cobra.Command{
		Use:   "verify [--to HEIGHT] [--genesis FILE]",
		Short: "Replay the chain from genesis: signed blocks, re-executed app hashes, and the node's access log; exit 1 at the first inconsistency",
		Args:  cobra.NoArgs,
	}
	node := addNodeFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		gen, err := loadGenesis(cmd, genesis)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		c, err := dial(ctx, *node)
		if err != nil {
			return err
		}
		rep, err := replay.Run(ctx, c, gen, replay.Config{To: to, Progress: cmd.ErrOrStderr()})
		var p *replay.Problem
		if errors.As(err, &p) {
			return fmt.Errorf("INCONSISTENT: %s", strings.TrimPrefix(p.Error(), "replay: "))
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "consistent: %d heights, %d txs re-executed; every block signed by the validators and every app hash matched;\n"+
			"the node serves the access log the chain built (%d events, root %x)\n", rep.Heights, rep.Txs, rep.Events, []byte(rep.Log.Root))
		return nil
	}
	cmd.Flags().StringVar(&genesis, "genesis", "", "the trusted genesis.json (default: the home's)")
	cmd.Flags().Int64Var(&to, "to", 0, "the last height to replay (default: the latest provable)")
	return cmd
}

func auditEmergenciesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emergencies",
		Short: "The emergency-access review queue: unreviewed first",
		Args:  cobra.NoArgs,
	}
	node := addNodeFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var list []struct {
			Decision consent.Decision `json:"decision"`
			Review   *struct {
				Outcome  string             `json:"outcome"`
				Reviewer consent.HospitalID `json:"reviewer"`
				Time     int64              `json:"time"`
			} `json:"review"`
		}
		if err := onChain(cmd.Context(), *node, func(ctx context.Context, c *client.Client) error {
			return c.Query(ctx, "/emergency-queue", &list)
		}); err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "%-32s  %-20s  %-9s  %-26s  %s\n", "GRANT", "TIME (UTC)", "BY", "REASON", "REVIEW")
		for _, e := range list {
			review := "UNREVIEWED"
			if e.Review != nil {
				review = e.Review.Outcome + " by " + string(e.Review.Reviewer)
			}
			fmt.Fprintf(out, "%-32s  %-20s  %-9s  %-26s  %s\n", e.Decision.ID, time.Unix(e.Decision.Time, 0).UTC().Format("2006-01-02 15:04:05"),
				e.Decision.Requester, e.Decision.Emergency, review)
		}
		return nil
	}
	return cmd
}

func auditReviewCmd() *cobra.Command {
	var outcome string
	cmd := &cobra.Command{
		Use:   "review GRANT --outcome " + strings.Join(consent.ReviewOutcomes, "|"),
		Short: "Record a privacy officer's review of an emergency access, signed with this hospital's key",
		Args:  cobra.ExactArgs(1),
	}
	node := addNodeFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !slices.Contains(consent.ReviewOutcomes, outcome) {
			return fmt.Errorf("--outcome %q: use one of %s", outcome, strings.Join(consent.ReviewOutcomes, ", "))
		}
		h, err := home.Load(homeFlag(cmd))
		if err != nil {
			return err
		}
		return onChain(cmd.Context(), *node, func(ctx context.Context, c *client.Client) error {
			res, err := c.Submit(ctx, consent.Body{Kind: consent.KindReview, Review: &consent.Review{Grant: consent.GrantID(args[0]), Outcome: outcome}}, h.Keys.Operator)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reviewed  %s: %s (height %d)\n", args[0], outcome, res.Height)
			return nil
		})
	}
	cmd.Flags().StringVar(&outcome, "outcome", "", "the review's outcome code")
	return cmd
}

func auditAccountingCmd() *cobra.Command {
	var (
		patient string
		format  string
	)
	cmd := &cobra.Command{
		Use:   "accounting --patient ID [--format csv|json]",
		Short: "A patient's HIPAA accounting of disclosures (45 CFR 164.528): six years of key releases to other hospitals",
		Args:  cobra.NoArgs,
	}
	node := addNodeFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if format != "csv" && format != "json" {
			return fmt.Errorf("--format %q: use csv or json", format)
		}
		if patient == "" {
			return errors.New("--patient is required")
		}
		now := time.Now().UTC()
		var rows []audit.Disclosure
		err := onChain(cmd.Context(), *node, func(ctx context.Context, c *client.Client) error {
			var head consent.LogRoot
			if err := c.Query(ctx, "/audit/head", &head); err != nil {
				return err
			}
			f := consent.AuditFilter{Patient: consent.PatientID(patient), From: audit.FetchFrom(now).Unix()}
			events, err := consent.EventsSince(0, head.Size, f, pages(ctx, c))
			if err != nil {
				return err
			}
			records := map[consent.RecordID]consent.Record{}
			for _, e := range events {
				if _, ok := records[e.Record]; e.Record == "" || ok {
					continue
				}
				var r consent.Record
				if err := c.Query(ctx, "/record/"+string(e.Record), &r); err != nil {
					return err
				}
				records[e.Record] = r
			}
			var hs []consent.Hospital
			if err := c.Query(ctx, "/hospitals", &hs); err != nil {
				return err
			}
			names := map[consent.HospitalID]string{}
			for _, h := range hs {
				names[h.ID] = h.Name
			}
			rows = audit.Accounting(consent.PatientID(patient), events, records, names, now)
			return nil
		})
		if err != nil {
			return err
		}
		if format == "json" {
			return writeJSON(cmd, audit.NewReport(consent.PatientID(patient), rows, now))
		}
		return audit.WriteCSV(cmd.OutOrStdout(), rows)
	}
	cmd.Flags().StringVar(&patient, "patient", "", "the patient ID")
	cmd.Flags().StringVar(&format, "format", "csv", "csv or json")
	return cmd
}

// dial connects to a node's RPC, giving up after 30 s.
func dial(ctx context.Context, addr string) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return client.Dial(ctx, addr)
}

// pages reads pages of the access log from c (for consent.EventsSince).
func pages(ctx context.Context, c *client.Client) func(consent.AuditFilter) (*consent.AuditPage, error) {
	return func(f consent.AuditFilter) (*consent.AuditPage, error) {
		data, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		var p consent.AuditPage
		return &p, c.QueryData(ctx, "/audit/events", data, &p)
	}
}
