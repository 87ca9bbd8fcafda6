//go:build unix

package reputation

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used. Benchmarks report it per
// operation beside the wall-clock ns/op, which on a shared machine also
// counts the time other processes held the core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
