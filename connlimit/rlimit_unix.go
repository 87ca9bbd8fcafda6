//go:build unix

package connlimit

import "syscall"

// fileLimit is the soft RLIMIT_NOFILE (Go raised it to the hard limit at
// start), 0 when unlimited or unknown.
func fileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
