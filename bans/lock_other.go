//go:build !unix

package bans

import "os"

// lockFile is a no-op where flock is not available; one instance per state
// file is then the operator's job.
func lockFile(path string) (*os.File, error) { return nil, nil }
