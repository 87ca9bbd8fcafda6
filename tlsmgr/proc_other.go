//go:build !unix

package tlsmgr

import "os/exec"

// ownProcessGroup does nothing here: the timeout kills the command only.
func ownProcessGroup(*exec.Cmd) {}
