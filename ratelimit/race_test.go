//go:build race

package ratelimit

// raceEnabled skips allocation counts, which the race detector inflates.
const raceEnabled = true
