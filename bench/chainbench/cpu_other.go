//go:build !unix

package chainbench

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
