package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressThreshold is the payload size from which `auto` shows a bar.
const progressThreshold = 4 << 20

// progressBar draws a one-line bar on w, at most ten times a second.
type progressBar struct {
	w     io.Writer
	label string
	mode  string
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer, label, mode string) *progressBar {
	return &progressBar{w: w, label: label, mode: mode}
}

func (p *progressBar) enabled(total int64) bool {
	switch p.mode {
	case "always":
		return true
	case "never":
		return false
	}
	f, ok := p.w.(*os.File)
	if !ok || total < progressThreshold {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progressBar) update(done, total int64) {
	if !p.enabled(total) || (time.Since(p.last) < 100*time.Millisecond && done < total) {
		return
	}
	p.last = time.Now()
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r%s %s%s %5.1f%%  %.1f/%.1f MiB", p.label,
		strings.Repeat("█", n), strings.Repeat("░", width-n), 100*frac,
		float64(done)/(1<<20), float64(total)/(1<<20))
	p.drawn = true
}

func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
