package main

import (
	"encoding/json"

	"github.com/spf13/cobra"
)

// writeJSON prints v as indented JSON on the command's output.
func writeJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
