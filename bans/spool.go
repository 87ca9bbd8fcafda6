package bans

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A running instance is the only writer of its state file (two writers would
// lose each other's changes). `portcullis bans add|remove` therefore does not
// edit the file: it drops a command into the spool directory beside it, and
// the instance applies and deletes spooled commands every few seconds (or at
// its next start). `portcullis bans list` reads the state file, which the
// instance rewrites after every change.

// Command operations.
const (
	OpAdd    = "add"
	OpRemove = "remove"
)

// Command is one spooled change.
type Command struct {
	Op     string       `json:"op"`
	Prefix netip.Prefix `json:"prefix"`
	Reason string       `json:"reason,omitempty"`
	Until  time.Time    `json:"until,omitzero"`
}

// Bans broader than these would lock out whole swaths of the internet by a
// slip of the keyboard (1.2.3.4/0); such bans belong in a reviewed deny list.
const (
	minBanBitsV4 = 8
	minBanBitsV6 = 32
)

func checkBreadth(c Command) error {
	if c.Op != OpAdd {
		return nil
	}
	min := minBanBitsV6
	if c.Prefix.Addr().Unmap().Is4() {
		min = minBanBitsV4
	}
	if c.Prefix.Bits() < min {
		return fmt.Errorf("ban %s is broader than /%d; use a deny list for whole networks", c.Prefix, min)
	}
	return nil
}

// maxCommandSize bounds a spooled command file.
const maxCommandSize = 4 << 10

// SpoolDir is the spool directory of the state file at path.
func SpoolDir(path string) string { return path + ".d" }

// Submit writes cmd into the spool of the state file at path.
func Submit(path string, cmd Command) error {
	_, err := SubmitFile(path, cmd)
	return err
}

// SubmitFile writes cmd into the spool of the state file at path and
// returns the command file, which the instance deletes once it applied it.
//
// Run as root against a state directory owned by another user (the
// systemd unit's DynamicUser, the container's non-root user), the spool
// and the command are given to that user: a root-owned 0700 spool is one
// the instance cannot read, and its commands would wait forever.
func SubmitFile(path string, cmd Command) (string, error) {
	if cmd.Op != OpAdd && cmd.Op != OpRemove {
		return "", fmt.Errorf("unknown ban command %q", cmd.Op)
	}
	if !cmd.Prefix.IsValid() {
		return "", errors.New("ban command without an address")
	}
	if err := checkBreadth(cmd); err != nil {
		return "", err
	}
	data, err := json.Marshal(cmd)
	if err != nil {
		return "", err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("%020d-%s.json", time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
	dir := SpoolDir(path)
	if err := writeCommand(filepath.Dir(path), dir, name, data); err != nil {
		return "", fmt.Errorf("ban spool %s: %w", dir, err)
	}
	return filepath.Join(dir, name), nil
}

// Pending returns the spooled commands not yet applied, oldest first.
func Pending(path string) ([]Command, error) {
	cmds, _, err := readSpool(SpoolDir(path))
	return cmds, err
}

func readSpool(dir string) ([]Command, []string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	// (The directory itself is created 0700 by Submit and by the instance.)
	if err != nil {
		return nil, nil, fmt.Errorf("ban spool %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // names start with the submission time
	var cmds []Command
	var files []string
	var errs []error
	for _, n := range names {
		f := filepath.Join(dir, n)
		// Only small regular files: a FIFO or a link to /dev/zero dropped
		// into the spool must not hang or exhaust the instance.
		st, err := os.Lstat(f)
		if err != nil || !st.Mode().IsRegular() || st.Size() > maxCommandSize {
			_ = os.Remove(f)
			errs = append(errs, fmt.Errorf("ban command %s: not a small regular file; dropped", f))
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			// Skipped, not fatal: one unreadable file must not block the rest.
			errs = append(errs, fmt.Errorf("ban command %s: %w", f, err))
			continue
		}
		var c Command
		if err := json.Unmarshal(data, &c); err != nil || checkBreadth(c) != nil {
			// A corrupt or over-broad command is dropped, not retried forever.
			_ = os.Remove(f)
			errs = append(errs, fmt.Errorf("ban command %s: invalid; dropped", f))
			continue
		}
		cmds, files = append(cmds, c), append(files, f)
	}
	return cmds, files, errors.Join(errs...)
}

// Drain applies the spooled commands to s (which must have been opened on
// path) and deletes them. It returns how many were applied.
func (s *Store) Drain(path string, now time.Time) (int, error) {
	cmds, files, err := readSpool(SpoolDir(path))
	applied := 0
	for i, c := range cmds {
		var aerr error
		switch c.Op {
		case OpAdd:
			reason := c.Reason
			if reason == "" {
				reason = "added by an operator"
			}
			aerr = s.Add(Ban{Prefix: c.Prefix, Reason: reason, Source: SourceManual, Created: now, Until: c.Until})
		case OpRemove:
			_, aerr = s.Remove(c.Prefix)
		}
		if aerr != nil {
			err = errors.Join(err, fmt.Errorf("ban command %s: %w", files[i], aerr))
		} else {
			applied++
		}
		_ = os.Remove(files[i])
	}
	return applied, err
}

// ReadFile returns the active bans in the state file at path without opening
// a Store (which would rewrite the file under a running instance).
func ReadFile(path string, now time.Time) ([]Ban, error) {
	bans, err := load(path, now)
	if err != nil {
		return nil, err
	}
	sort.Slice(bans, func(i, j int) bool { return byPrefix(bans[i], bans[j]) < 0 })
	return bans, nil
}

// CheckBreadth rejects a ban broader than an operator may set by hand:
// for bans that come from elsewhere (a CrowdSec decision) as for the CLI.
func CheckBreadth(p netip.Prefix) error {
	return checkBreadth(Command{Op: OpAdd, Prefix: p})
}
