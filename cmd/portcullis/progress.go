package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress shows how far a long operation (export, replay) has come, on a
// terminal only: stderr must be a TTY, so nothing is written when it is
// piped or captured. Updates are rate-limited to a few per second and the
// line is cleared at the end.
type progress struct {
	w       io.Writer
	label   string
	n       int
	start   time.Time
	last    time.Time
	printed bool
}

// progressEvery is the shortest interval between two updates.
var progressEvery = 250 * time.Millisecond

// newProgress returns a progress line on stderr, or nil when stderr is not
// a terminal. A nil *progress does nothing.
func newProgress(stderr io.Writer, label string) *progress {
	f, ok := stderr.(*os.File)
	if !ok || !isTerminal(f.Fd()) {
		return nil
	}
	now := time.Now()
	return &progress{w: stderr, label: label, start: now, last: now}
}

// add counts k more records and redraws the line when due.
func (p *progress) add(k int) {
	if p == nil {
		return
	}
	p.n += k
	now := time.Now()
	if now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	rate := float64(p.n) / max(elapsed.Seconds(), 0.001)
	fmt.Fprintf(p.w, "\r\x1b[K%s: %d records, %.0f/s, %s", p.label, p.n, rate, elapsed.Round(time.Second))
	p.printed = true
}

// done clears the line.
func (p *progress) done() {
	if p == nil || !p.printed {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
}
