package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node/client"
	"github.com/medledger/medledger/node/home"
)

func defaultNode() string {
	if n := os.Getenv("MEDLEDGER_NODE"); n != "" {
		return n
	}
	return "http://127.0.0.1:26657"
}

func addNodeFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("node", defaultNode(), "a node's CometBFT RPC (default: $MEDLEDGER_NODE, else the --home's chain.rpc_listen)")
}

// onChain dials the node at addr and runs f with a client, within a deadline.
func onChain(ctx context.Context, addr string, f func(ctx context.Context, c *client.Client) error) error {
	return onChainShowing(ctx, nil, addr, f)
}

// submitAsHospital submits body signed with the operator key of the hospital whose home
// --home names, through the node at addr, showing progress on stderr, and returns the
// committed result.
func submitAsHospital(cmd *cobra.Command, addr string, body consent.Body, checks ...func(context.Context, *client.Client) error) (*consent.Committed, error) {
	h, err := home.Load(homeFlag(cmd))
	if err != nil {
		return nil, err
	}
	var res *consent.Committed
	err = onChainShowing(cmd.Context(), cmd.ErrOrStderr(), addr, func(ctx context.Context, c *client.Client) error {
		for _, check := range checks {
			if err := check(ctx, c); err != nil {
				return err
			}
		}
		res, err = c.Submit(ctx, body, h.Keys.Operator)
		return err
	})
	return res, err
}

// eventAttr is the value of the first attribute key of an event of type typ in res.
func eventAttr(res *consent.Committed, typ, key string) (string, bool) {
	for _, e := range res.Events {
		for _, a := range e.Attrs {
			if e.Type == typ && a.Key == key {
				return a.Value, true
			}
		}
	}
	return "", false
}

// onChainShowing is onChain with a client that writes a progress line to progress
// every few seconds while it waits for a commit (the commands that submit pass
// stderr). A chain that stops making progress fails the wait within
// client.StallAfter, saying so and how to check the tx later.
func onChainShowing(ctx context.Context, progress io.Writer, addr string, f func(ctx context.Context, c *client.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		return err
	}
	c.Progress = progress
	return f(ctx, c)
}

func patientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "patient", Short: "A patient's own key"}
	var dir string
	keygen := &cobra.Command{
		Use:   "keygen --dir DIR",
		Short: "Create a patient key (Ed25519, encrypted under its own KEK) and print the patient ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := crypto.CreatePatientKey(dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "patient  %s\nkey      %s\n", consent.PatientIDOf(k.Public()), dir)
			return nil
		},
	}
	keygen.Flags().StringVar(&dir, "dir", "", "directory for the key (created)")
	keygen.MarkFlagRequired("dir")
	var showDir string
	show := &cobra.Command{
		Use:   "show --dir DIR",
		Short: "Print the patient ID of the key in DIR (nothing secret)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := crypto.LoadPatientKey(showDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "patient  %s\nkey      %s\n", consent.PatientIDOf(k.Public()), showDir)
			return nil
		},
	}
	show.Flags().StringVar(&showDir, "dir", "", "the key's directory (made by patient keygen)")
	show.MarkFlagRequired("dir")
	cmd.AddCommand(keygen, show)
	return cmd
}

func loadPatient(dir string) (*crypto.SigningKey, error) {
	if dir == "" {
		return nil, fmt.Errorf("--patient DIR is required (made by `medledger patient keygen`)")
	}
	return crypto.LoadPatientKey(dir)
}

func consentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "consent", Short: "Grant, revoke and list a patient's consents"}
	cmd.AddCommand(consentGrantCmd(), consentRevokeCmd(), consentListCmd())
	return cmd
}

type grantFlags struct {
	patient               string
	to, purposes, classes []string
	denyClasses, records  []string
	from, until           string
}

func consentGrantCmd() *cobra.Command {
	var f grantFlags
	cmd := &cobra.Command{
		Use:   "grant --patient DIR (--to HOSPITAL[,...] | --fhir CONSENT.json)",
		Short: "Grant a consent: the named hospitals may obtain the patient's records",
		Args:  cobra.NoArgs,
	}
	node := addNodeFlag(cmd)
	var fhirFile, apiURL string
	var dryRun bool
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if fhirFile != "" {
			return f.grantFHIR(cmd, fhirFile, apiURL, dryRun)
		}
		if dryRun {
			return fmt.Errorf("--dry-run goes with --fhir FILE")
		}
		pol, err := f.policy(time.Now())
		if err != nil {
			return err
		}
		key, err := loadPatient(f.patient)
		if err != nil {
			return err
		}
		body := consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: consent.PatientIDOf(key.Public()), Policy: pol}}
		return onChainShowing(cmd.Context(), cmd.ErrOrStderr(), *node, func(ctx context.Context, c *client.Client) error {
			if err := f.checkHospitals(ctx, c); err != nil {
				return err
			}
			res, err := c.Submit(ctx, body, key)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "consent  %s\nheight   %d\n", res.ID, res.Height)
			return nil
		})
	}
	cmd.Flags().StringVar(&f.patient, "patient", "", "the patient's key directory")
	cmd.Flags().StringSliceVar(&f.to, "to", nil, "hospital IDs permitted (required)")
	cmd.Flags().StringSliceVar(&f.purposes, "purpose", []string{"TREAT"}, "purposes of use permitted (v3 PurposeOfUse codes)")
	cmd.Flags().StringSliceVar(&f.classes, "classes", nil, "only records whose data classes are all among these (default: any)")
	cmd.Flags().StringSliceVar(&f.denyClasses, "deny-class", nil, "never records holding any of these data classes")
	cmd.Flags().StringSliceVar(&f.records, "records", nil, "only these record IDs (default: any)")
	cmd.Flags().StringVar(&f.from, "from", "", "consent starts (YYYY-MM-DD or RFC 3339; default now)")
	cmd.Flags().StringVar(&f.until, "until", "", "consent ends (YYYY-MM-DD or RFC 3339; default open)")
	cmd.Flags().StringVar(&fhirFile, "fhir", "", "grant this FHIR R4 Consent (JSON) through the node's API instead of --to …: the node prepares the tx, this shows what the chain will enforce and signs it")
	cmd.Flags().StringVar(&apiURL, "api", os.Getenv("MEDLEDGER_API"), "with --fhir: the node's HTTP API, http://host:port (default: $MEDLEDGER_API, else the --home's api.listen)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "with --fhir: show what the chain would enforce and stop; nothing is sent")
	return cmd
}

// grantFHIR grants the FHIR Consent in file through the API (see consentfhir.go). The
// policy flags do not go with it: the Consent says what is permitted.
func (f grantFlags) grantFHIR(cmd *cobra.Command, file, apiURL string, dryRun bool) error {
	for _, name := range []string{"to", "purpose", "classes", "deny-class", "records", "from", "until"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s does not go with --fhir: the Consent says what is permitted", name)
		}
	}
	key, err := loadPatient(f.patient)
	if err != nil {
		return err
	}
	api, err := newFHIRAPI(apiURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 90*time.Second)
	defer cancel()
	return grantFHIR(ctx, cmd.OutOrStdout(), api, key, file, dryRun)
}

// policy turns the flags into a chain policy: opt-in (deny by default) with one
// permit for the named hospitals, and a deny exception for the denied classes.
func (f grantFlags) policy(now time.Time) (consent.Policy, error) {
	if len(f.to) == 0 {
		return consent.Policy{}, fmt.Errorf("--to HOSPITAL is required: whom does the patient consent to?")
	}
	p := consent.Provision{Type: consent.Permit}
	for _, h := range f.to {
		p.Actors = append(p.Actors, consent.HospitalID(h))
	}
	for _, pu := range f.purposes {
		pu = strings.ToUpper(pu)
		if !consent.IsPurpose(consent.Purpose(pu)) {
			return consent.Policy{}, fmt.Errorf("purpose %q is not a v3 PurposeOfUse code (e.g. TREAT, HPAYMT, HRESCH)", pu)
		}
		p.Purposes = append(p.Purposes, consent.Purpose(pu))
	}
	for _, c := range f.classes {
		if err := flagName("--classes", consent.CheckClass(consent.DataClass(c))); err != nil {
			return consent.Policy{}, err
		}
		p.Classes = append(p.Classes, consent.DataClass(c))
	}
	for _, r := range f.records {
		if !consent.RecordID(r).Valid() {
			return consent.Policy{}, fmt.Errorf("--records %q: not a record ID (32 lowercase hex digits)", r)
		}
		p.Records = append(p.Records, consent.RecordID(r))
	}
	if len(f.denyClasses) > 0 {
		d := consent.Provision{Type: consent.Deny}
		for _, c := range f.denyClasses {
			if err := flagName("--deny-class", consent.CheckClass(consent.DataClass(c))); err != nil {
				return consent.Policy{}, err
			}
			d.Classes = append(d.Classes, consent.DataClass(c))
		}
		p.Except = []consent.Provision{d}
	}
	pol := consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{p}}
	var err error
	if pol.Start, err = parseWhen("--from", f.from); err != nil {
		return pol, err
	}
	if pol.End, err = parseWhen("--until", f.until); err != nil {
		return pol, err
	}
	if pol.End != 0 && pol.End < now.Unix() {
		return pol, fmt.Errorf("--until %s is in the past", f.until)
	}
	if err := pol.Validate(); err != nil {
		return pol, fmt.Errorf("consent: %w", err)
	}
	return pol, nil
}

// checkHospitals refuses a --to hospital that is not in the chain's registry (a public
// query), naming the registered one it probably is a typo of. The chain refuses it
// too; this says so before anything is signed or submitted. (Whether --records are
// registered and the patient's own only the chain checks: records are not public.)
func (f grantFlags) checkHospitals(ctx context.Context, c *client.Client) error {
	var hs []consent.Hospital
	if err := c.Query(ctx, "/hospitals", &hs); err != nil {
		return fmt.Errorf("reading the chain's hospital registry: %w", err)
	}
	ids := make([]consent.HospitalID, len(hs))
	for i, h := range hs {
		ids[i] = h.ID
	}
	slices.Sort(ids)
	for _, h := range f.to {
		if err := flagName("--to", consent.CheckHospital(consent.HospitalID(h), ids)); err != nil {
			return err
		}
	}
	return nil
}

// flagName turns a *consent.NameError into the flag's one-line refusal, e.g.
// "--deny-class Observatoin: not an FHIR R4 resource type; did you mean Observation?".
func flagName(flag string, err error) error {
	var ne *consent.NameError
	if errors.As(err, &ne) {
		return fmt.Errorf("%s %s", flag, ne.Detail())
	}
	return err
}

func parseWhen(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, fmt.Errorf("%s %q: use YYYY-MM-DD or RFC 3339", flag, s)
}

func consentRevokeCmd() *cobra.Command {
	var patient string
	cmd := &cobra.Command{
		Use:   "revoke --patient DIR CONSENT-ID",
		Short: "Revoke a consent; it takes effect for every request decided after its block",
		Args:  cobra.ExactArgs(1),
	}
	node := addNodeFlag(cmd)
	var viaAPI bool
	var apiURL string
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		key, err := loadPatient(patient)
		if err != nil {
			return err
		}
		if viaAPI {
			api, err := newFHIRAPI(apiURL)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 90*time.Second)
			defer cancel()
			return revokeFHIR(ctx, cmd.OutOrStdout(), api, key, args[0])
		}
		body := consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: consent.ConsentID(args[0])}}
		return onChainShowing(cmd.Context(), cmd.ErrOrStderr(), *node, func(ctx context.Context, c *client.Client) error {
			res, err := c.Submit(ctx, body, key)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked  %s\nheight   %d\n", args[0], res.Height)
			return nil
		})
	}
	cmd.Flags().StringVar(&patient, "patient", "", "the patient's key directory")
	cmd.Flags().BoolVar(&viaAPI, "via-api", false, "revoke through the node's FHIR API ($revoke-prepare, $revoke) instead of its RPC")
	cmd.Flags().StringVar(&apiURL, "api", os.Getenv("MEDLEDGER_API"), "with --via-api: the node's HTTP API (default: $MEDLEDGER_API, else the --home's api.listen)")
	return cmd
}

func consentListCmd() *cobra.Command {
	var patient, patientID string
	cmd := &cobra.Command{
		Use:   "list (--patient DIR | --patient-id ID)",
		Short: "List a patient's consents (the node's API, a staff token)",
		Args:  cobra.NoArgs,
	}
	api := addAPIFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if patientID == "" {
			key, err := loadPatient(patient)
			if err != nil {
				return err
			}
			patientID = string(consent.PatientIDOf(key.Public()))
		}
		a, err := api.open("consent list", staff)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
		defer cancel()
		var list []consent.Consent
		if err := a.Get(ctx, "/consents", url.Values{"patient": {patientID}}, &list); err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "%-32s  %-8s  %-7s  %s\n", "CONSENT", "HEIGHT", "STATUS", "PERMITS")
		for _, k := range list {
			status := "active"
			if k.Revoked != 0 {
				status = "revoked"
			} else if k.Policy.End != 0 && k.Policy.End < time.Now().Unix() {
				status = "ended"
			}
			fmt.Fprintf(out, "%-32s  %-8d  %-7s  %s\n", k.ID, k.Height, status, summarize(k.Policy))
		}
		return nil
	}
	cmd.Flags().StringVar(&patient, "patient", "", "the patient's key directory")
	cmd.Flags().StringVar(&patientID, "patient-id", "", "the patient ID (instead of --patient)")
	return cmd
}

func summarize(p consent.Policy) string {
	var parts []string
	for _, pr := range p.Provisions {
		s := pr.Type.String()
		if len(pr.Actors) > 0 {
			s += " " + join(pr.Actors)
		}
		if len(pr.Purposes) > 0 {
			s += " for " + join(pr.Purposes)
		}
		if len(pr.Classes) > 0 {
			s += " classes " + join(pr.Classes)
		}
		for _, e := range pr.Except {
			s += " except " + e.Type.String() + " " + join(e.Classes) + join(e.Actors)
		}
		parts = append(parts, s)
	}
	if p.End != 0 {
		parts = append(parts, "until "+time.Unix(p.End, 0).UTC().Format(time.RFC3339))
	}
	return strings.Join(parts, "; ")
}

func join[T ~string](s []T) string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return strings.Join(out, ",")
}

func accessCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "access", Short: "Request access to a record; the chain decides",
		Long: `Request access to a record; the chain decides by the patient's consents.

Emergency (break-glass) access is a clinician's API call, granted whatever the consents
say and flagged on the chain for a privacy officer's review:
  POST /records/{id}/$emergency-access?reason=CODE
with CODE one of: ` + strings.Join(consent.EmergencyReasons(), ", ") + `.
A review's outcome (medledger audit review --outcome) is one of: ` + strings.Join(consent.ReviewOutcomes(), ", ") + `.`}
	var purpose, as string
	req := &cobra.Command{
		Use:   "request RECORD-ID --purpose CODE",
		Short: "Request access to a record for a purpose, signed with this hospital's key; prints the decision",
		Args:  cobra.ExactArgs(1),
	}
	node := addNodeFlag(req)
	req.RunE = func(cmd *cobra.Command, args []string) error {
		pu := consent.Purpose(strings.ToUpper(purpose))
		if !consent.IsPurpose(pu) {
			return fmt.Errorf("purpose %q is not a v3 PurposeOfUse code (e.g. TREAT, HPAYMT, HRESCH)", purpose)
		}
		if as == "" {
			h, err := home.Load(homeFlag(cmd))
			if err != nil {
				return err
			}
			as = h.Config.ID
		}
		body := consent.Body{Kind: consent.KindRequest, Request: &consent.Request{
			Requester: consent.HospitalID(as), Record: consent.RecordID(args[0]), Purpose: pu}}
		res, err := submitAsHospital(cmd, *node, body)
		if err != nil {
			return err
		}
		// The decision is in the committed tx's own result.
		d, err := client.AccessOf(res)
		if err != nil {
			return err
		}
		if !d.Granted {
			return fmt.Errorf("access denied: %s (grant %s, height %d)", d.Reason, d.Grant, res.Height)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "granted  %s\nconsent  %s\nheight   %d\nexpires  %s\n",
			d.Grant, d.Consent, res.Height, time.Unix(d.Expires, 0).UTC().Format(time.RFC3339))
		return nil
	}
	req.Flags().StringVar(&purpose, "purpose", "", "purpose of use (v3 PurposeOfUse code, e.g. TREAT)")
	req.Flags().StringVar(&as, "as", "", "hospital ID to request as (default: the home's hospital_id)")
	req.MarkFlagRequired("purpose")
	cmd.AddCommand(req)
	return cmd
}
