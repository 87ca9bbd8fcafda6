package store

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
)

// Files is a read-only Store over JSON-lines audit files, for the CLI when
// there is no database (or to look at a file copied off another machine).
// Every call reads the files again, so it sees records appended since;
// Search keeps only one page in memory, Summary only its counts.
type Files struct {
	// Warn, when set, is told about each malformed line skipped.
	Warn  func(path string, line int, err error)
	paths []string
	now   func() time.Time
}

var _ Store = (*Files)(nil)

// OpenFiles checks that every path can be read and returns a store over
// them, in the order given (older files first, like rotated logs).
func OpenFiles(paths ...string) (*Files, error) {
	if len(paths) == 0 {
		return nil, errors.New("no audit files given")
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("open audit file: %w", err)
		}
		_ = f.Close()
	}
	return &Files{paths: paths, now: time.Now}, nil
}

// position orders records newest first: by time, then later file, then
// later line.
type position struct {
	t          int64
	file, line int
}

func (p position) String() string {
	return strconv.FormatInt(p.t, 10) + "." + strconv.Itoa(p.file) + "." + strconv.Itoa(p.line)
}

// before reports whether p comes after q in newest-first order (is older).
func (p position) older(q position) bool {
	return cmp.Or(cmp.Compare(p.t, q.t), cmp.Compare(p.file, q.file), cmp.Compare(p.line, q.line)) < 0
}

func parsePosition(s string) (position, error) {
	parts := strings.Split(s, ".")
	if len(parts) == 3 {
		t, err1 := strconv.ParseInt(parts[0], 10, 64)
		file, err2 := strconv.Atoi(parts[1])
		line, err3 := strconv.Atoi(parts[2])
		if err1 == nil && err2 == nil && err3 == nil {
			return position{t, file, line}, nil
		}
	}
	return position{}, fmt.Errorf("invalid page cursor %q", s)
}

// each calls fn for every record of every file with its position.
//
// It reads like audit.Read but skips a malformed line instead of stopping
// there: after a crash mid-write the next run appends behind the torn
// record, and one bad line must not hide the rest of the file from an
// operator investigating an incident. Skipped lines go to Warn.
func (s *Files) each(ctx context.Context, fn func(*audit.Entry, position) error) error {
	for i, p := range s.paths {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("open audit file: %w", err)
		}
		err = s.readFile(ctx, f, p, i, fn)
		_ = f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Files) readFile(ctx context.Context, f *os.File, path string, index int, fn func(*audit.Entry, position) error) error {
	br := bufio.NewReaderSize(f, 64<<10)
	var long []byte
	for line := 1; ; line++ {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) > audit.MaxRecordSize {
				return fmt.Errorf("read audit file %s: line %d: record longer than %d bytes", path, line, audit.MaxRecordSize)
			}
			long = append(long, chunk...)
			line--
			continue
		}
		data := chunk
		if long != nil {
			data = append(long, chunk...)
			long = nil
		}
		complete := err == nil
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read audit file %s: line %d: %w", path, line, err)
		}
		if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 {
			var e audit.Entry
			if derr := json.Unmarshal(trimmed, &e); derr != nil {
				// An incomplete last line is a record being written now.
				if complete && s.Warn != nil {
					s.Warn(path, line, derr)
				}
			} else if ferr := fn(&e, position{e.Time.UnixNano(), index, line}); ferr != nil {
				return ferr
			}
		}
		if !complete {
			return nil
		}
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
}

type found struct {
	e   *audit.Entry
	pos position
}

// oldestFirst is a min-heap by position: the root is the oldest kept record.
type oldestFirst []found

func (h oldestFirst) Len() int           { return len(h) }
func (h oldestFirst) Less(i, j int) bool { return h[i].pos.older(h[j].pos) }
func (h oldestFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *oldestFirst) Push(x any)        { *h = append(*h, x.(found)) }
func (h *oldestFirst) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Search returns the newest records matching f, after page.After.
func (s *Files) Search(ctx context.Context, f query.Filter, page Page) (Result, error) {
	limit := pageLimit(page)
	var after *position
	if page.After != "" {
		p, err := parsePosition(page.After)
		if err != nil {
			return Result{}, err
		}
		after = &p
	}
	// Keep the limit+1 newest: one more tells whether there is a next page.
	h := &oldestFirst{}
	err := s.each(ctx, func(e *audit.Entry, pos position) error {
		if after != nil && !pos.older(*after) {
			return nil
		}
		if !f.Match(e) {
			return nil
		}
		if h.Len() <= limit {
			heap.Push(h, found{e, pos})
		} else if (*h)[0].pos.older(pos) {
			(*h)[0] = found{e, pos}
			heap.Fix(h, 0)
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	n := h.Len()
	all := make([]found, n)
	for i := n - 1; i >= 0; i-- {
		all[i] = heap.Pop(h).(found)
	}
	var res Result
	if n > limit {
		all = all[:limit]
		res.Next = all[limit-1].pos.String()
	}
	for _, fd := range all {
		res.Entries = append(res.Entries, fd.e)
	}
	return res, nil
}

// Each calls fn for every record matching f, in file order (oldest first
// for rotated logs given oldest first), reading each file once.
func (s *Files) Each(ctx context.Context, f query.Filter, fn func(*audit.Entry) error) error {
	return s.each(ctx, func(e *audit.Entry, _ position) error {
		if f.Match(e) {
			return fn(e)
		}
		return nil
	})
}

// Get returns the last record with this id or, when none has it, the last
// record of the one id that starts with it. One pass over the files keeps
// at most the MaxIDCandidates+1 smallest ids that match the prefix.
func (s *Files) Get(ctx context.Context, id string) (*audit.Entry, error) {
	var exact *audit.Entry
	byPrefix := map[string]*audit.Entry{}
	more := false
	err := s.each(ctx, func(e *audit.Entry, _ position) error {
		switch {
		case e.ID == id:
			exact = e
		case exact != nil || len(id) < MinIDPrefix || !strings.HasPrefix(e.ID, id):
		case byPrefix[e.ID] != nil || len(byPrefix) <= MaxIDCandidates:
			byPrefix[e.ID] = e
		default:
			// Keep the smallest ids, as the database lists them.
			more = true
			largest := ""
			for k := range byPrefix {
				largest = max(largest, k)
			}
			if e.ID < largest {
				delete(byPrefix, largest)
				byPrefix[e.ID] = e
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if exact != nil {
		return exact, nil
	}
	switch len(byPrefix) {
	case 0:
		return nil, notFound(id)
	case 1:
		for _, e := range byPrefix {
			return e, nil
		}
	}
	ids := slices.Sorted(maps.Keys(byPrefix))
	amb := ambiguous(id, ids)
	amb.More = amb.More || more
	return nil, amb
}

// Summary aggregates the matching records in memory.
func (s *Files) Summary(ctx context.Context, f query.Filter, opts SummaryOptions) (*Summary, error) {
	a := newAggregator()
	oldest, newest := int64(0), int64(0)
	seen := false
	// The default range is that of all records, as in the database.
	err := s.each(ctx, func(e *audit.Entry, pos position) error {
		if !seen || pos.t < oldest {
			oldest = pos.t
		}
		if !seen || pos.t > newest {
			newest = pos.t
		}
		seen = true
		if f.Match(e) {
			a.entry(e)
		} else {
			a.messages(e) // the latest message of a rule, as in the database
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	since, until := summaryRange(f, oldest, newest, s.now())
	if !seen && f.Since.IsZero() && f.Until.IsZero() {
		since, until = 0, 0
	}
	return a.finish(since, until, pickBucket(time.Duration(until-since), opts.Bucket), topN(opts)), nil
}

// Close does nothing: files are opened per call.
func (s *Files) Close() error { return nil }
