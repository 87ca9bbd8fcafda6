package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The action log: every change an operator makes through the admin
// listener (reload, WAF mode switch, ban added or lifted, configuration
// posted), and the reloads triggered outside it (SIGHUP, the file watch:
// Server.Record), with who, when, what and the result. It is kept in
// memory for the console (the newest maxActions), written to the server
// log, and appended as JSON lines to Options.ActionLog when set, so that
// it survives a restart; that file is rotated by size (see
// DefaultActionLogMaxBytes).

// maxActions is how many actions the console keeps and shows.
const maxActions = 500

// Action is one recorded operator action.
type Action struct {
	ID   int       `json:"id"`
	Time time.Time `json:"time"`
	// User is who acted: a dashboard user, an API token's name, "local"
	// when authentication is off, or for a reload triggered outside the
	// admin listener "signal" or "file-watch".
	User string `json:"user"`
	Via  string `json:"via"` // "console", "dashboard", "api"; "SIGHUP", "watch_config"
	// What is the kind of action: "reload", "waf mode", "ban", "lift ban",
	// "config".
	What   string `json:"what"`
	Target string `json:"target,omitempty"` // the route, the prefix
	OK     bool   `json:"ok"`
	Result string `json:"result"`
	// Problems are the configuration problems of a refused reload or
	// switch, one `portcullis check` line each (file:line: field: reason).
	Problems []string `json:"problems,omitempty"`
}

// maxActionLine is the longest line the action log reads back; an entry
// is far shorter.
const maxActionLine = 1 << 20

// The action log file is rotated by size, as logrotate would with
// "size 10M, rotate 5": before an entry would take the file past
// ActionLogMaxBytes, admin-actions.jsonl becomes admin-actions.jsonl.1, .1
// becomes .2 and so on, and the oldest beyond ActionLogKeep is removed.
// With the defaults the log takes at most about 60 MiB, some 50,000 entries
// of a few hundred bytes: years of operator actions.
const (
	DefaultActionLogMaxBytes = 10 << 20
	DefaultActionLogKeep     = 5
)

type actionLog struct {
	mu    sync.Mutex
	items []Action // oldest first, at most maxActions
	next  int
	path  string
	// maxBytes and keep rotate the file (DefaultActionLogMaxBytes,
	// DefaultActionLogKeep).
	maxBytes int64
	keep     int
}

// rotated is the name of the n-th old file of the log at path (1 the
// newest).
func rotated(path string, n int) string {
	return path + "." + strconv.Itoa(n)
}

// openActionLog loads the newest maxActions of the file at path ("" for
// memory only) and, when it holds fewer, of its rotated files: a rotation
// just before a restart does not empty the console's list. A missing file
// is an empty log. maxBytes and keep, when not positive, take the
// defaults.
func openActionLog(path string, maxBytes int64, keep int) (*actionLog, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultActionLogMaxBytes
	}
	if keep <= 0 {
		keep = DefaultActionLogKeep
	}
	l := &actionLog{path: path, next: 1, maxBytes: maxBytes, keep: keep}
	if path == "" {
		return l, nil
	}
	for n := 0; n <= keep && len(l.items) < maxActions; n++ {
		name := path
		if n > 0 {
			name = rotated(path, n)
		}
		data, err := os.ReadFile(name)
		if os.IsNotExist(err) {
			continue // a gap left by a failed rotation: the older files still count
		}
		if err != nil {
			return nil, fmt.Errorf("admin: read the action log: %w", err)
		}
		if n == 0 && len(data) > 0 && data[len(data)-1] != '\n' {
			// A torn last line after a crash: end it, or the next entry
			// appended would join it and be lost at the next load.
			if err := appendFile(path, []byte{'\n'}); err != nil {
				return nil, fmt.Errorf("admin: end the torn last line of the action log: %w", err)
			}
		}
		entries := parseActions(data)
		for _, a := range entries {
			l.next = max(l.next, a.ID+1)
		}
		l.items = append(entries, l.items...) // each file is older than the one before
	}
	if len(l.items) > maxActions {
		l.items = slices.Clone(l.items[len(l.items)-maxActions:])
	}
	return l, nil
}

// parseActions reads the entries of one file, oldest first, skipping the
// lines that are not entries (a torn line after a crash, a line too long
// to be one of ours).
func parseActions(data []byte) []Action {
	var out []Action
	for rest := data; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if len(line) > maxActionLine {
			continue // not one of ours: skipped, the lines after it still read
		}
		var a Action
		if json.Unmarshal(line, &a) != nil {
			continue
		}
		out = append(out, a)
	}
	return out
}

// add records a (its ID and, when zero, its time are set here) and returns
// its ID. A failure to append to the file is returned after the action is
// kept in memory.
func (l *actionLog) add(a Action, now time.Time) (Action, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a.ID = l.next
	l.next++
	if a.Time.IsZero() {
		a.Time = now.UTC()
	}
	l.items = append(l.items, a)
	if len(l.items) > maxActions {
		l.items = slices.Delete(l.items, 0, len(l.items)-maxActions)
	}
	if l.path == "" {
		return a, nil
	}
	line, err := json.Marshal(a)
	if err != nil {
		return a, err
	}
	return a, l.write(append(line, '\n'))
}

// write appends one entry's line to the file, rotating it first when the
// line would take it past maxBytes. The caller holds l.mu, so entries are
// whole lines in order and a rotation never falls inside one. A rotation
// that fails is reported and the line appended to the current file all
// the same: an entry is never dropped for a rotation.
func (l *actionLog) write(line []byte) error {
	var rotateErr error
	if fi, err := os.Stat(l.path); err == nil && fi.Size() > 0 && fi.Size()+int64(len(line)) > l.maxBytes {
		if err := l.rotate(); err != nil {
			rotateErr = fmt.Errorf("rotate the action log: %w", err)
		}
	}
	if err := appendFile(l.path, line); err != nil {
		return errors.Join(rotateErr, fmt.Errorf("append to the action log: %w", err))
	}
	return rotateErr
}

// rotate shifts the old files up by one, drops the one beyond keep, and
// makes the current file the newest old one; the next append creates a
// new current file. It stops at the first failed rename, before a later
// one would overwrite a file that was not moved out of the way.
func (l *actionLog) rotate() error {
	if err := os.Remove(rotated(l.path, l.keep)); err != nil && !os.IsNotExist(err) {
		return err
	}
	for n := l.keep - 1; n >= 1; n-- {
		if err := os.Rename(rotated(l.path, n), rotated(l.path, n+1)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return os.Rename(l.path, rotated(l.path, 1))
}

// appendFile appends data to the file at path, created when missing.
func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// list returns the newest n actions, newest first.
func (l *actionLog) list(n int) []Action {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, len(l.items))
	out := make([]Action, 0, n)
	for i := len(l.items) - 1; i >= len(l.items)-n; i-- {
		out = append(out, l.items[i])
	}
	return out
}

// get returns the action with this id, if it is still kept.
func (l *actionLog) get(id string) (Action, bool) {
	n, err := strconv.Atoi(id)
	if err != nil {
		return Action{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.items {
		if a.ID == n {
			return a, true
		}
	}
	return Action{}, false
}

// Record adds an action taken outside the admin listener to the action
// log, as the listener's own are: a reload on SIGHUP or on a change of the
// configuration file, so that the console's list shows every change of
// the configuration in force. Its User says who ("signal", "file-watch"),
// Via how. It returns a with its ID and time. Safe for concurrent use.
func (s *Server) Record(a Action) Action {
	return s.record(a)
}

// record keeps a, logs it, and returns it with its ID.
func (s *Server) record(a Action) Action {
	a, err := s.actions.add(a, s.now())
	args := []any{"id", a.ID, "user", a.User, "via", a.Via, "what", a.What, "target", a.Target, "ok", a.OK, "result", a.Result}
	if len(a.Problems) > 0 {
		args = append(args, "problems", len(a.Problems))
	}
	if a.OK {
		s.log.Info("admin action", args...)
	} else {
		s.log.Warn("admin action", args...)
	}
	if err != nil {
		// The entry is in memory either way; the error says whether it
		// reached the file (a failed rotation still appends it).
		s.log.Error("admin: action log file", "path", s.actions.path, "err", err)
	}
	return a
}
