package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/spf13/cobra"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/auditor"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
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
	ks := make([]string, len(consent.AuditKinds()))
	for i, k := range consent.AuditKinds() {
		ks[i] = string(k)
	}
	return strings.Join(ks, ", ")
}

// query is the filter as the API's /audit/events parameters, checked here first so
// that a bad flag gets the CLI's own one-line error.
func (f *filterFlags) query() (url.Values, error) {
	q, err := f.streamQuery()
	if err != nil {
		return nil, err
	}
	for _, p := range []struct{ flag, name, v string }{{"--from", "from", f.from}, {"--to", "to", f.to}} {
		if p.v == "" {
			continue
		}
		if _, err := parseWhen(p.flag, p.v); err != nil {
			return nil, err
		}
		q.Set(p.name, p.v)
	}
	return q, nil
}

// streamQuery is the filter as the API's /audit/stream parameters (no time range).
func (f *filterFlags) streamQuery() (url.Values, error) {
	if f.kind != "" && !consent.IsAuditKind(consent.AuditKind(f.kind)) {
		return nil, fmt.Errorf("--kind %q: use one of %s", f.kind, kindList())
	}
	q := url.Values{}
	for name, v := range map[string]string{"patient": f.patient, "hospital": f.hospital, "kind": f.kind} {
		if v != "" {
			q.Set(name, v)
		}
	}
	return q, nil
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
		Short: "Query the access log, newest first, a page at a time (the node's API, a privacy officer's token)",
		Args:  cobra.NoArgs,
	}
	api := addAPIFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q, err := f.query()
		if err != nil {
			return err
		}
		if before != 0 {
			q.Set("before", strconv.FormatUint(before, 10))
		}
		q.Set("limit", strconv.Itoa(limit))
		a, err := api.open("audit events", privacyOfficer)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
		defer cancel()
		var page consent.AuditPage
		if err := a.Get(ctx, "/audit/events", q, &page); err != nil {
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
		Short: "Print access-log events as they are committed (within a block), until interrupted (the node's API, a staff token)",
		Args:  cobra.NoArgs,
	}
	api := addAPIFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if f.from != "" || f.to != "" {
			return errors.New("--from and --to do not apply to follow: it prints events as they are committed (see --from-event)")
		}
		q, err := f.streamQuery()
		if err != nil {
			return err
		}
		a, err := api.open("audit follow", staff)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		out := cmd.OutOrStdout()
		enc := json.NewEncoder(out)
		print := func(e consent.AuditEvent) error {
			if asJSON {
				return enc.Encode(e)
			}
			writeEvent(out, e)
			return nil
		}
		if !asJSON {
			what := "new events"
			if cmd.Flags().Changed("from-event") {
				what = fmt.Sprintf("event %d", fromEvent)
			}
			fmt.Fprintf(out, "following the access log from %s (Ctrl-C stops)\n", what)
			writeEventHeader(out)
		}
		var after *uint64
		if cmd.Flags().Changed("from-event") {
			if after, err = resumeFrom(ctx, a, q, fromEvent, print); err != nil {
				return err
			}
		}
		return a.Follow(ctx, q, after, print)
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as a line of JSON")
	cmd.Flags().Uint64Var(&fromEvent, "from-event", 0, "start at this log index (e.g. to resume); default: new events only")
	return cmd
}

// resumeFrom is where a stream resumes to start at log index from: after from-1 (the
// stream's Last-Event-ID). Event 0 has no index before it: it is read (if it matches
// the stream's filter) and printed here, and the stream resumes after it.
func resumeFrom(ctx context.Context, a *client.API, q url.Values, from uint64, print func(consent.AuditEvent) error) (*uint64, error) {
	after := from - 1
	if from > 0 {
		return &after, nil
	}
	first := url.Values{}
	for k, v := range q {
		first[k] = v
	}
	first.Set("before", "1")
	first.Set("limit", "1")
	var page consent.AuditPage
	if err := a.Get(ctx, "/audit/events", first, &page); err != nil {
		return nil, err
	}
	for _, e := range page.Events {
		if err := print(e); err != nil {
			return nil, err
		}
	}
	after = 0
	return &after, nil
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
		Long: "Prove an access-log event against headers signed by ≥ 2/3 of the validators' power, trusting the node for nothing.\n" +
			"The event comes from the node's API (a privacy officer's token); the signed headers, hash parts and\n" +
			"proofs, which are public, from its RPC (--node).",
		Args: cobra.ExactArgs(1),
	}
	node := addNodeFlag(cmd)
	api := addAPIFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var index uint64
		if _, err := fmt.Sscan(args[0], &index); err != nil {
			return fmt.Errorf("INDEX %q is not an event index", args[0])
		}
		gen, err := loadGenesis(cmd, genesis)
		if err != nil {
			return err
		}
		a, err := api.open("audit proof", privacyOfficer)
		if err != nil {
			return err
		}
		return onChain(cmd.Context(), *node, func(ctx context.Context, c *client.Client) error {
			v, err := auditor.NewVerifier(c, gen)
			if err != nil {
				return err
			}
			p, err := verifyEvent(ctx, c, v, index, a)
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

// signedWait bounds how long audit proof waits for the validators to sign a header that
// binds a log holding a committed event (the header after the next block: about two
// blocks, or the proof block an idle chain makes after a tx).
const signedWait = 10 * time.Second

// verifyEvent is v.VerifyEvent, waiting up to signedWait while the event is in the
// node's log (its head, public) but not yet in a log a signed header binds.
func verifyEvent(ctx context.Context, c *client.Client, v *auditor.Verifier, index uint64, entries auditor.Entries) (*auditor.EventProof, error) {
	deadline := time.Now().Add(signedWait)
	for {
		p, err := v.VerifyEvent(ctx, index, entries)
		if !errors.Is(err, client.ErrNotFound) || time.Now().After(deadline) {
			return p, err
		}
		var head consent.LogRoot
		if herr := c.Query(ctx, "/audit/head", &head); herr != nil || index >= head.Size {
			return p, err // not in the log at all
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func auditVerifyCmd() *cobra.Command {
	var (
		genesis string
		to      int64
	)
	cmd := &cobra.Command{
		Use:   "verify [--to HEIGHT] [--genesis FILE] [--api URL --token-file FILE]",
		Short: "Replay the chain from genesis: signed blocks, re-executed app hashes, and the node's access log; exit 1 at the first inconsistency",
		Long: "Replay the chain from genesis over the node's RPC (--node): every block must be the one the validators\n" +
			"signed, re-executing it must give the app hash they signed, and the node's access-log root must be the\n" +
			"replay's. With a privacy officer's token (--token-file or $MEDLEDGER_TOKEN) and the node's API, every\n" +
			"event the node serves is compared with the replay's too. Exit 1 at the first inconsistency.",
		Args: cobra.NoArgs,
	}
	node := addNodeFlag(cmd)
	api := addAPIFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		gen, err := loadGenesis(cmd, genesis)
		if err != nil {
			return err
		}
		cfg := auditor.ReplayConfig{To: to, Progress: cmd.ErrOrStderr()}
		if api.given() {
			a, err := api.open("audit verify", privacyOfficer)
			if err != nil {
				return err
			}
			cfg.Entries = a
		}
		ctx := cmd.Context()
		c, err := dial(ctx, *node)
		if err != nil {
			return err
		}
		rep, err := auditor.Replay(ctx, c, gen, cfg)
		var p *auditor.Problem
		if errors.As(err, &p) {
			return fmt.Errorf("INCONSISTENT: %s", strings.TrimPrefix(p.Error(), "replay: "))
		}
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "consistent: %d heights, %d txs re-executed; every block signed by the validators and every app hash matched;\n", rep.Heights, rep.Txs)
		if cfg.Entries == nil {
			fmt.Fprintf(out, "the node's access-log root is the chain's (%d events, root %x); its events were not compared (that needs the API and a privacy officer's token)\n",
				rep.Log.Size, []byte(rep.Log.Root))
			return nil
		}
		fmt.Fprintf(out, "the node serves the access log the chain built (%d events, root %x)\n", rep.Events, []byte(rep.Log.Root))
		return nil
	}
	cmd.Flags().StringVar(&genesis, "genesis", "", "the trusted genesis.json (default: the home's)")
	cmd.Flags().Int64Var(&to, "to", 0, "the last height to replay (default: the latest provable)")
	return cmd
}

func auditEmergenciesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emergencies",
		Short: "The emergency-access review queue: unreviewed first (the node's API, a privacy officer's token)",
		Args:  cobra.NoArgs,
	}
	api := addAPIFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		a, err := api.open("audit emergencies", privacyOfficer)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
		defer cancel()
		var queue struct {
			Emergencies []struct {
				Decision consent.Decision `json:"decision"`
				Review   *struct {
					Outcome  string             `json:"outcome"`
					Reviewer consent.HospitalID `json:"reviewer"`
				} `json:"review"`
			} `json:"emergencies"`
		}
		if err := a.Get(ctx, "/audit/emergencies", nil, &queue); err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "%-32s  %-20s  %-9s  %-26s  %s\n", "GRANT", "TIME (UTC)", "BY", "REASON", "REVIEW")
		for _, e := range queue.Emergencies {
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
		Use:   "review GRANT --outcome " + strings.Join(consent.ReviewOutcomes(), "|"),
		Short: "Record a privacy officer's review of an emergency access, signed with this hospital's key",
		Args:  cobra.ExactArgs(1),
	}
	node := addNodeFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !consent.IsReviewOutcome(outcome) {
			return fmt.Errorf("--outcome %q: use one of %s", outcome, strings.Join(consent.ReviewOutcomes(), ", "))
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
		Short: "A patient's HIPAA accounting of disclosures (45 CFR 164.528): six years of key releases to other hospitals (the node's API, a privacy officer's token)",
		Args:  cobra.NoArgs,
	}
	api := addAPIFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if format != "csv" && format != "json" {
			return fmt.Errorf("--format %q: use csv or json", format)
		}
		if patient == "" {
			return errors.New("--patient is required")
		}
		a, err := api.open("audit accounting", privacyOfficer)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
		defer cancel()
		b, err := a.GetBytes(ctx, "/audit/accounting", url.Values{"patient": {patient}, "format": {format}})
		if err != nil {
			return err
		}
		if format == "json" {
			var buf bytes.Buffer
			if err := json.Indent(&buf, b, "", "  "); err != nil {
				return fmt.Errorf("audit accounting: %w", err)
			}
			buf.WriteByte('\n')
			b = buf.Bytes()
		}
		_, err = cmd.OutOrStdout().Write(b)
		return err
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
