//go:build !unix

package reputation

import "time"

// cpuTime is unavailable here; benchmarks then report 0 CPU ns/op.
func cpuTime() time.Duration { return 0 }
