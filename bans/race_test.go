//go:build race

package bans

// raceEnabled skips allocation counts, which the race detector inflates.
const raceEnabled = true
