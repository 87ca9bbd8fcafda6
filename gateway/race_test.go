//go:build race

package gateway

// raceEnabled leaves out allocation counts, which the race detector
// inflates (its shadow bookkeeping allocates on the measured path).
const raceEnabled = true
