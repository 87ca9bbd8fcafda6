//go:build unix

package bans

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// writeCommand creates the spool dir (0700) in stateDir and writes data to
// it as name: under a dot name first and renamed, so Drain never reads half
// a command. As root, the spool and the file belong to the owner of
// stateDir. The files are created through the directory's descriptor with
// O_EXCL and O_NOFOLLOW, and the spool must be a real directory owned by
// root or that owner: a link planted by the state directory's owner cannot
// make root write elsewhere.
func writeCommand(stateDir, dir, name string, data []byte) error {
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		var st unix.Stat_t
		if err := unix.Stat(stateDir, &st); err == nil && st.Uid != 0 {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	if err := unix.Mkdir(dir, 0o700); err == nil {
		if uid >= 0 {
			if err := unix.Lchown(dir, uid, gid); err != nil {
				return fmt.Errorf("give the spool to uid %d: %w", uid, err)
			}
		}
	} else if !errors.Is(err, unix.EEXIST) {
		return err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open: %w (it must be a directory, not a link)", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if uid >= 0 && st.Uid != uint32(uid) {
		if st.Uid != 0 {
			return fmt.Errorf("owned by uid %d, not by root or the state directory's owner (uid %d)", st.Uid, uid)
		}
		// Left root-owned by an earlier version: the instance cannot read
		// it. Give it to the state directory's owner.
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("give the spool to uid %d: %w", uid, err)
		}
	}
	tmp := "." + name
	f, err := unix.Openat(fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	file := os.NewFile(uintptr(f), tmp)
	_, werr := file.Write(data)
	if werr == nil && uid >= 0 {
		werr = file.Chown(uid, gid)
	}
	if cerr := file.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = unix.Renameat(fd, tmp, fd, name)
	}
	if werr != nil {
		_ = unix.Unlinkat(fd, tmp, 0)
	}
	return werr
}

// InstanceRunning reports whether a running instance holds the state file
// at path (its lock). It opens the lock file read-only and never creates
// it (a root-owned lock file would stop the instance from starting), and
// takes a shared lock for a moment, which the instance's exclusive lock
// refuses.
func InstanceRunning(path string) (bool, error) {
	fd, err := unix.Open(path+".lock", unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bans: open lock file: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return true, nil
		}
		return false, fmt.Errorf("bans: lock %s: %w", path, err)
	}
	_ = unix.Flock(fd, unix.LOCK_UN)
	return false, nil
}
