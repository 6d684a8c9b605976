// Command medledger-bench measures this machine: the consent chain against CometBFT's
// kvstore (plain and with signed txs), a record's fetch and decryption against a raw
// fetch, key release and revocation on hospital nodes, and the access log at scale.
// It is not part of the product binary (cmd/medledger).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/medledger/medledger/bench/accessbench"
	"github.com/medledger/medledger/bench/auditbench"
	"github.com/medledger/medledger/bench/chainbench"
	"github.com/medledger/medledger/bench/fetchbench"
)

func main() { os.Exit(run()) }

// run executes the command line and returns the exit code: 0 on success, 1 with a
// one-line message on stderr otherwise.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "medledger-bench: "+strings.Join(strings.Fields(err.Error()), " "))
		return 1
	}
	return 0
}

// part is one benchmark of the full run.
type part struct {
	key, title string
	run        func(ctx context.Context, progress io.Writer) (table, error)
}

type table interface{ WriteTable(io.Writer) error }

func rootCmd() *cobra.Command {
	var (
		chainCfg  chainbench.Config
		fetchCfg  fetchbench.Config
		accessCfg accessbench.Config
		auditCfg  auditbench.Config
		asJSON    bool
	)
	parts := []part{
		{"chain", "consent chain", func(ctx context.Context, p io.Writer) (table, error) {
			chainCfg.Progress = p
			return chainbench.Run(ctx, chainCfg)
		}},
		{"fetch", "record fetch", func(ctx context.Context, p io.Writer) (table, error) {
			fetchCfg.Progress = p
			return fetchbench.Run(ctx, fetchCfg)
		}},
		{"access", "key release and revocation", func(ctx context.Context, p io.Writer) (table, error) {
			accessCfg.Progress = p
			return accessbench.Run(ctx, accessCfg)
		}},
		{"audit", "access log", func(ctx context.Context, p io.Writer) (table, error) {
			auditCfg.Progress = p
			return auditbench.Run(ctx, auditCfg)
		}},
	}
	cmd := &cobra.Command{
		Use:           "medledger-bench [--json]",
		Short:         "Measure this machine: the consent chain (`medledger-bench chain`), the record fetch (`fetch`), key release and revocation (`access`), then the access log (`audit`)",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			progress := cmd.ErrOrStderr()
			if asJSON {
				progress = io.Discard
			}
			results := map[string]any{}
			out := cmd.OutOrStdout()
			for _, p := range parts {
				res, err := p.run(cmd.Context(), progress)
				if err != nil {
					return err
				}
				results[p.key] = res
				if !asJSON {
					fmt.Fprintln(out, "\n"+p.title)
					if err := res.WriteTable(out); err != nil {
						return err
					}
				}
			}
			if asJSON {
				return writeJSON(cmd, results)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&chainCfg.Duration, "duration", 15*time.Second, "the chain benchmark's measured window for each app")
	cmd.Flags().IntVar(&chainCfg.Runs, "runs", 3, "the chain benchmark's runs of each app (the ratios are their medians)")
	cmd.Flags().IntVar(&accessCfg.Samples, "samples", 100, "key releases measured")
	cmd.Flags().IntVar(&auditCfg.Events, "audit-events", 1_000_000, "access events in chain state for the access log benchmark")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON (and no progress)")
	var cpuProfile string
	var profiling *os.File
	cmd.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (for `go tool pprof`)")
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		profiling = f
		return pprof.StartCPUProfile(f)
	}
	cmd.PersistentPostRunE = func(*cobra.Command, []string) error {
		if profiling == nil {
			return nil
		}
		pprof.StopCPUProfile()
		return profiling.Close()
	}
	cmd.AddCommand(chainCmd(), fetchCmd(), accessCmd(), auditCmd())
	return cmd
}

func writeJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func chainCmd() *cobra.Command {
	var (
		cfg    chainbench.Config
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "chain [--duration 15s] [--concurrency N] [--runs 3] [--json]",
		Short: "Committed consent txs per second and commit latency on 4 validators in this process, against CometBFT's kvstore, plain and with signed txs",
		Long: `Runs 4 validators on 127.0.0.1 in this process with the consent state machine (signed
grants and access requests), with CometBFT's kvstore example app, and with that kvstore
whose txs carry an Ed25519 signature checked once in CheckTx, all under the same
configuration, and reports committed txs per second, commit latency (submitted to
committed) under load and one tx at a time, and the ratios of the consent chain's
throughput to each kvstore's. Without --concurrency it first searches for the number
of submitters at which each chain saturates; then it measures each app --runs times,
taking the apps in turn, and reports the median ratios. A full run takes six to eight
minutes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !asJSON {
				cfg.Progress = cmd.ErrOrStderr()
			}
			return printResult[*chainbench.Result](cmd, asJSON)(chainbench.Run(cmd.Context(), cfg))
		},
	}
	cmd.Flags().DurationVar(&cfg.Duration, "duration", 15*time.Second, "the measured window for each app, after a warm-up")
	cmd.Flags().IntVar(&cfg.Concurrency, "concurrency", 0, "txs in flight (submitters); 0 searches for the level that saturates each chain")
	cmd.Flags().IntVar(&cfg.Runs, "runs", 3, "runs of each app at its concurrency (the ratios are their medians)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (and no progress)")
	return cmd
}

func fetchCmd() *cobra.Command {
	var (
		cfg    fetchbench.Config
		sizes  []int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "fetch [--sizes-mib 1,64] [--rounds 15] [--json]",
		Short: "A sealed record's bitswap fetch + decryption against a bitswap fetch of the same bytes stored raw",
		Long: `Starts a source host and, per fetch, a fresh receiver (libp2p on 127.0.0.1 over TCP,
LevelDB block stores on disk) in this process. The source holds each payload twice: raw,
and sealed under a record key. The two sides alternate, each round taking the other
first, after an uncounted warm-up round; every fetch goes into an empty store over a
connection made before the clock starts, and is read to the last byte (decrypted on
the sealed side). Reports each side's median throughput and their ratio.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !asJSON {
				cfg.Progress = cmd.ErrOrStderr()
			}
			for _, mib := range sizes {
				cfg.Sizes = append(cfg.Sizes, mib<<20)
			}
			return printResult[*fetchbench.Result](cmd, asJSON)(fetchbench.Run(cmd.Context(), cfg))
		},
	}
	cmd.Flags().IntSliceVar(&sizes, "sizes-mib", []int{1, 64}, "payload sizes in MiB")
	cmd.Flags().IntVar(&cfg.Rounds, "rounds", 15, "fetches measured per side and size")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (and no progress)")
	return cmd
}

func accessCmd() *cobra.Command {
	var (
		cfg    accessbench.Config
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "access [--samples 100] [--custodians 3 --threshold 2] [--one-down] [--json]",
		Short: "Key release (request → plaintext) next to bare commit latency, and revoke → first denial, on 4 hospital nodes",
		Long: `Starts four hospital nodes on 127.0.0.1 in this process (validators, libp2p hosts,
block stores), ingests a Synthea record at one, has its patient consent, and measures,
interleaved in one run: the bare commit latency of a signed tx, and key release — an
access request submitted at another hospital until the record's plaintext is in hand
(the chain's decision, the custodian's check and HPKE-wrapped key over libp2p, the
ciphertext over bitswap, decryption). Then revocations: revoke submitted until the next
request's denial is in hand, and how many blocks after the revocation it was decided.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !asJSON {
				cfg.Progress = cmd.ErrOrStderr()
			}
			return printResult[*accessbench.Result](cmd, asJSON)(accessbench.Run(cmd.Context(), cfg))
		},
	}
	cmd.Flags().IntVar(&cfg.Samples, "samples", 100, "key releases (and bare commits) measured")
	cmd.Flags().IntVar(&cfg.Revocations, "revocations", 10, "revocations measured")
	cmd.Flags().IntVar(&cfg.Custodians, "custodians", 0, "threshold custody: the record on this many custodians (0: its key whole at one)")
	cmd.Flags().IntVar(&cfg.Threshold, "threshold", 0, "threshold custody: shares needed to rebuild the key (0: the chain's default for --custodians)")
	cmd.Flags().BoolVar(&cfg.OneDown, "one-down", false, "stop one hospital before measuring (city: a validator, and a custodian with --custodians 3 or more)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (and no progress)")
	return cmd
}

func auditCmd() *cobra.Command {
	var (
		cfg    auditbench.Config
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "audit [--events 1000000] [--samples 2000] [--json]",
		Short: "The access log at scale: a patient's events and Merkle proofs with a million events in chain state",
		Long: `Makes a chain state holding --events access events through the real application (the
consent state machine under the chain's ABCI adapter, its LevelDB store in a temporary
directory): blocks of 1000 signed txs — record registrations, consents, access requests
granted and denied, emergencies and their reviews, key-release receipts — for many
patients and 20 hospitals, applied through InitChain, FinalizeBlock and Commit without
consensus (which would order the same blocks, only slower), and reports how fast the
events went in. Then, through the ABCI query path a node serves, it measures a random
patient's newest page of events (/audit/events), a random event with its inclusion proof
checked against the root the chain committed (/audit/event, /audit/inclusion), and a
consistency proof between two committed roots, --samples times each. A proof that does
not verify fails the run. A full run takes about a quarter of an hour on two CPUs and
600 MB of disk.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !asJSON {
				cfg.Progress = cmd.ErrOrStderr()
			}
			return printResult[*auditbench.Result](cmd, asJSON)(auditbench.Run(cmd.Context(), cfg))
		},
	}
	cmd.Flags().IntVar(&cfg.Events, "events", 1_000_000, "access events in chain state before measuring")
	cmd.Flags().IntVar(&cfg.Samples, "samples", 2000, "patient queries, inclusion proofs and consistency proofs measured, each")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (and no progress)")
	return cmd
}

// printResult prints a benchmark's result as a table, or as JSON.
func printResult[R table](cmd *cobra.Command, asJSON bool) func(R, error) error {
	return func(res R, err error) error {
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(cmd, res)
		}
		fmt.Fprintln(cmd.OutOrStdout())
		return res.WriteTable(cmd.OutOrStdout())
	}
}
