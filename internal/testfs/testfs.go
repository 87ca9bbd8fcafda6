// Package testfs gives tests a small file system of their own, so that what
// a full disk does to the audit (issue 13) is tested on a real one rather
// than on a sink that pretends. It is used by tests only.
package testfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Small mounts a tmpfs of size bytes on a new directory and returns it; it
// is unmounted when the test ends. Mounting needs root (or CAP_SYS_ADMIN):
// without it the test is skipped with the reason, except when the
// environment variable CI is set, where that is a failure.
func Small(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		msg := fmt.Sprintf("cannot mount a %d-byte tmpfs on %s (%v): run the test as root to check full-disk behaviour", size, dir, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		// Detached: a file a failed test left open must not keep it busy.
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill appends zeros to the file path (creating it) until the file system
// is full, leaving at most leave bytes free (0: fill completely). Calling it
// again tops the file system up after something freed space. It returns
// the bytes written.
func Fill(t testing.TB, path string, leave int64) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	var written int64
	for {
		var st syscall.Statfs_t
		if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
			t.Fatal(err)
		}
		if free := int64(st.Bavail) * int64(st.Bsize); free <= leave {
			return written
		}
		n, err := f.Write(chunk)
		written += int64(n)
		if err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return written
			}
			t.Fatal(err)
		}
	}
}

// Usage is the size of every regular file under dir, by path relative to
// dir, and their total.
func Usage(t testing.TB, dir string) (map[string]int64, int64) {
	t.Helper()
	sizes := map[string]int64{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sizes[rel] = fi.Size()
		total += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sizes, total
}
