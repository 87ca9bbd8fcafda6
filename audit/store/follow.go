package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
)

// Follower is implemented by stores that can stream records as they are
// added (`portcullis audit tail -f`, a live dashboard view).
type Follower interface {
	// Follow calls fn with the last backlog records matching f (oldest
	// first), then with every matching record added later, in the order
	// they were added, checking every poll, until ctx ends (returning nil)
	// or fn fails.
	Follow(ctx context.Context, f query.Filter, backlog int, poll time.Duration, fn func(*audit.Entry) error) error
}

var (
	_ Follower = (*SQLite)(nil)
	_ Follower = (*Files)(nil)
)

// Follow polls the database for rows added since the last poll, by
// insertion order (seq), so records are neither skipped nor repeated.
func (s *SQLite) Follow(ctx context.Context, f query.Filter, backlog int, poll time.Duration, fn func(*audit.Entry) error) error {
	cond, args := where(f)
	var last int64
	if err := s.rdb.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM records").Scan(&last); err != nil {
		return followErr(ctx, s.path, err)
	}
	if backlog > 0 {
		rows, err := s.rdb.QueryContext(ctx, `SELECT j.json FROM records r JOIN record_json j ON j.seq = r.seq
			WHERE r.seq <= ? AND `+cond+` ORDER BY r.seq DESC LIMIT ?`, append(append([]any{last}, args...), backlog)...)
		if err != nil {
			return followErr(ctx, s.path, err)
		}
		entries, err := decodeRows(rows)
		if err != nil {
			return followErr(ctx, s.path, err)
		}
		for i := len(entries) - 1; i >= 0; i-- {
			if err := fn(entries[i]); err != nil {
				return err
			}
		}
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		var hi int64
		if err := s.rdb.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM records").Scan(&hi); err != nil {
			return followErr(ctx, s.path, err)
		}
		if hi <= last {
			continue
		}
		rows, err := s.rdb.QueryContext(ctx, `SELECT j.json FROM records r JOIN record_json j ON j.seq = r.seq
			WHERE r.seq > ? AND r.seq <= ? AND `+cond+` ORDER BY r.seq`, append([]any{last, hi}, args...)...)
		if err != nil {
			return followErr(ctx, s.path, err)
		}
		entries, err := decodeRows(rows)
		if err != nil {
			return followErr(ctx, s.path, err)
		}
		last = hi
		for _, e := range entries {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

func followErr(ctx context.Context, path string, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("follow audit database %s: %w", path, err)
}

func decodeRows(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) ([]*audit.Entry, error) {
	defer rows.Close()
	var out []*audit.Entry
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		e, err := decode(data)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Follow reads the backlog from all files, then follows the last one as it
// grows. A file that shrinks (rotated by copy-truncate) is read again from
// the start; a file replaced under its name (rotated by rename) is reopened.
func (s *Files) Follow(ctx context.Context, f query.Filter, backlog int, poll time.Duration, fn func(*audit.Entry) error) error {
	var ring []*audit.Entry
	if backlog > 0 {
		for _, p := range s.paths[:len(s.paths)-1] {
			if err := (&Files{paths: []string{p}}).each(ctx, func(e *audit.Entry, _ position) error {
				ring = keep(ring, e, f, backlog)
				return nil
			}); err != nil {
				return err
			}
		}
	}
	t := &tailer{path: s.paths[len(s.paths)-1]}
	defer t.close()
	if err := t.poll(func(e *audit.Entry) error {
		if backlog > 0 {
			ring = keep(ring, e, f, backlog)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, e := range ring {
		if err := fn(e); err != nil {
			return err
		}
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := t.poll(func(e *audit.Entry) error {
			if f.Match(e) {
				return fn(e)
			}
			return nil
		}); err != nil {
			return err
		}
	}
}

// keep appends e to the ring of the last n matching records.
func keep(ring []*audit.Entry, e *audit.Entry, f query.Filter, n int) []*audit.Entry {
	if !f.Match(e) {
		return ring
	}
	if len(ring) == n {
		copy(ring, ring[1:])
		ring = ring[:n-1]
	}
	return append(ring, e)
}

// tailer reads complete lines appended to a file.
type tailer struct {
	path    string
	f       *os.File
	offset  int64
	partial []byte
	line    int
	opened  bool // the file was open once: from then on a missing name is a rotation in progress
}

func (t *tailer) close() {
	if t.f != nil {
		_ = t.f.Close()
	}
}

// reset forgets the open file: the next poll opens the name afresh.
func (t *tailer) reset() {
	t.close()
	t.f, t.offset, t.partial, t.line = nil, 0, nil, 0
}

// poll reads what was appended since the last call.
//
// Rotation by rename (logrotate's default: rename, then create) leaves a
// moment in which the name does not exist, and lines may have been appended
// to the old file after the last poll but before the rename. Both used to
// lose records: a poll in that moment ended the follow with "no such file",
// and the switch to the new file skipped the old file's last lines. So the
// old file is read to its end through the handle still open on it, a
// missing name just waits for the next poll, and only then does the tailer
// move to the new file.
func (t *tailer) poll(fn func(*audit.Entry) error) error {
	fi, err := os.Stat(t.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && t.opened {
			if t.f != nil {
				return t.read(fn) // renamed away; the new file is not there yet
			}
			return nil
		}
		return fmt.Errorf("follow audit file: %w", err)
	}
	if t.f != nil {
		open, err := t.f.Stat()
		switch {
		case err != nil:
			t.reset()
		case !os.SameFile(open, fi):
			// Rotated by rename: finish the old file first.
			if err := t.read(fn); err != nil {
				return err
			}
			t.reset()
		case fi.Size() < t.offset:
			// Rotated by copy-truncate: the file starts again, shorter.
			t.reset()
		}
	}
	if t.f == nil {
		f, err := os.Open(t.path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && t.opened {
				return nil // renamed again between Stat and Open
			}
			return fmt.Errorf("follow audit file: %w", err)
		}
		t.f, t.opened = f, true
	}
	return t.read(fn)
}

// read reads the open file from the last offset to its end, calling fn for
// every complete line and keeping a trailing partial line for later.
func (t *tailer) read(fn func(*audit.Entry) error) error {
	if _, err := t.f.Seek(t.offset, io.SeekStart); err != nil {
		return fmt.Errorf("follow audit file %s: %w", t.path, err)
	}
	buf := make([]byte, 64<<10)
	for {
		n, rerr := t.f.Read(buf)
		t.offset += int64(n)
		data := append(t.partial, buf[:n]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			line := bytes.TrimSpace(data[:i])
			data = data[i+1:]
			t.line++
			if len(line) == 0 {
				continue
			}
			var e audit.Entry
			if err := json.Unmarshal(line, &e); err != nil {
				return fmt.Errorf("follow audit file %s: line %d: %w", t.path, t.line, err)
			}
			if err := fn(&e); err != nil {
				return err
			}
		}
		if len(data) > audit.MaxRecordSize {
			return fmt.Errorf("follow audit file %s: record longer than %d bytes", t.path, audit.MaxRecordSize)
		}
		t.partial = append([]byte(nil), data...)
		if rerr == io.EOF || n == 0 {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("follow audit file %s: %w", t.path, rerr)
		}
	}
}
