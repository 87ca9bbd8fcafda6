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

// SpoolDir is the spool directory of the state file at path.
func SpoolDir(path string) string { return path + ".d" }

// Submit writes cmd into the spool of the state file at path.
func Submit(path string, cmd Command) error {
	if cmd.Op != OpAdd && cmd.Op != OpRemove {
		return fmt.Errorf("unknown ban command %q", cmd.Op)
	}
	if !cmd.Prefix.IsValid() {
		return errors.New("ban command without an address")
	}
	dir := SpoolDir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ban spool %s: %w", dir, err)
	}
	data, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("%020d-%s.json", time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
	// Written under a dot name and renamed: Drain never reads half a command.
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("ban spool %s: %w", dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("ban spool %s: %w", dir, err)
	}
	return nil
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
	for _, n := range names {
		f := filepath.Join(dir, n)
		data, err := os.ReadFile(f)
		if err != nil {
			return cmds, files, fmt.Errorf("ban command %s: %w", f, err)
		}
		var c Command
		if err := json.Unmarshal(data, &c); err != nil {
			// A corrupt command is dropped, not retried forever.
			_ = os.Remove(f)
			continue
		}
		cmds, files = append(cmds, c), append(files, f)
	}
	return cmds, files, nil
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
