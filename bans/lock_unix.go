//go:build unix

package bans

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on path+".lock" without
// waiting. The state file has one writer by design (the CLI goes through
// the spool); the lock turns a second instance pointed at the same file —
// which would silently overwrite the first one's bans — into a start error.
// The kernel drops the lock when the process exits, however it exits.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bans: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("bans: %s is in use by another Portcullis instance (give each instance its own bans.state_file)", path)
		}
		return nil, fmt.Errorf("bans: lock %s: %w", path, err)
	}
	return f, nil
}
