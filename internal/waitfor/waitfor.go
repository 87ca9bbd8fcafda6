// Package waitfor is how tests wait for an effect that happens off the
// request path (a health check's verdict, a record written after the
// response, a file rotated under a follower): poll a condition with a
// deadline instead of sleeping a guessed time. Used by tests only; it sits
// outside the request path.
package waitfor

import "time"

// Interval is how often True checks its condition.
const Interval = 5 * time.Millisecond

// True checks cond every Interval until it holds or timeout passes, and
// reports whether it held. The deadline only bounds a failing test: a
// passing one returns as soon as the effect is there.
func True(timeout time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-deadline.C:
			return cond()
		}
	}
}
