// Command medledger runs and operates a medledger hospital node.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() { os.Exit(run()) }

// run executes the command line and returns the exit code: 0 on success, 1 with a
// one-line message on stderr otherwise.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := rootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "medledger: "+oneLine(err.Error()))
		return 1
	}
	return 0
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "medledger",
		Short:         "Hospitals share encrypted FHIR records under patients' consent",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return nodeDefaultsFromHome(cmd)
		},
	}
	root.PersistentFlags().String("home", defaultHome(), "the node's home directory (or $MEDLEDGER_HOME)")
	root.AddCommand(initCmd(), startCmd(), testnetCmd(), recordCmd(), patientCmd(), consentCmd(), accessCmd(), hospitalCmd(), auditCmd(), txCmd(), demoCmd())
	return root
}

func defaultHome() string {
	if h := os.Getenv("MEDLEDGER_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".medledger")
	}
	return ".medledger"
}

func homeFlag(cmd *cobra.Command) string {
	h, _ := cmd.Flags().GetString("home")
	return h
}
