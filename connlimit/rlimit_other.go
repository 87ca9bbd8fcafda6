//go:build !unix

package connlimit

// fileLimit is unknown here: the descriptor reserve is off.
func fileLimit() int { return 0 }
