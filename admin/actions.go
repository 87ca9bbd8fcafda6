package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The action log: every change an operator makes through the admin
// listener (reload, WAF mode switch, ban added or lifted, configuration
// posted) with who, when, what and the result. It is kept in memory for
// the console (the newest maxActions), written to the server log, and
// appended as JSON lines to Options.ActionLog when set, so that it
// survives a restart.

// maxActions is how many actions the console keeps and shows.
const maxActions = 500

// Action is one recorded operator action.
type Action struct {
	ID   int       `json:"id"`
	Time time.Time `json:"time"`
	// User is who acted: a dashboard user, an API token's name, or
	// "local" when authentication is off.
	User string `json:"user"`
	Via  string `json:"via"` // "console", "dashboard", "api"
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

type actionLog struct {
	mu    sync.Mutex
	items []Action // oldest first, at most maxActions
	next  int
	path  string
}

// openActionLog loads the newest maxActions of the file at path ("" for
// memory only). A missing file is an empty log.
func openActionLog(path string) (*actionLog, error) {
	l := &actionLog{path: path, next: 1}
	if path == "" {
		return l, nil
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("admin: read the action log: %w", err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		// A torn last line after a crash: end it, or the next entry
		// appended would join it and be lost at the next load.
		if err := appendFile(path, []byte{'\n'}); err != nil {
			return nil, fmt.Errorf("admin: end the torn last line of the action log: %w", err)
		}
	}
	for rest := data; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if len(line) > maxActionLine {
			continue // not one of ours: skipped, the lines after it still read
		}
		var a Action
		if json.Unmarshal(line, &a) != nil {
			continue // a torn line after a crash
		}
		l.items = append(l.items, a)
		l.next = max(l.next, a.ID+1)
	}
	if len(l.items) > maxActions {
		l.items = slices.Clone(l.items[len(l.items)-maxActions:])
	}
	return l, nil
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
	return a, appendFile(l.path, append(line, '\n'))
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
		s.log.Error("admin: action not written to the action log file", "path", s.actions.path, "err", err)
	}
	return a
}
