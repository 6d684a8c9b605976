//go:build !unix

package api

// openFileLimit is unknown here: ConnLimit uses the configured maximum.
func openFileLimit() uint64 { return 0 }
