package audit

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/internal/testfs"
)

// clock is a manual clock for windows, probes and log intervals.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func readAll(t *testing.T, path string) ([]*Entry, ReadResult) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*Entry
	res, err := Read(f, func(e *Entry) error { out = append(out, e); return nil })
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return out, res
}

// TestFileSinkRepairsTornTail: a file whose writer died mid-line gets its
// torn tail cut on open, so the next record is a whole line of its own
// (issue 13: the partial line swallowed the next record after a restart).
func TestFileSinkRepairsTornTail(t *testing.T) {
	tests := []struct {
		name     string
		before   string
		ids      []string
		repaired int64
	}{
		{"torn tail", `{"id":"a"}` + "\n" + `{"id":"b","ho`, []string{"a", "c"}, int64(len(`{"id":"b","ho`))},
		{"only a torn line", `{"id":"b","ho`, []string{"c"}, int64(len(`{"id":"b","ho`))},
		{"whole lines", `{"id":"a"}` + "\n", []string{"a", "c"}, 0},
		{"empty", "", []string{"c"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			if err := os.WriteFile(path, []byte(tt.before), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := OpenFileSink(path)
			if err != nil {
				t.Fatal(err)
			}
			if s.Repaired() != tt.repaired {
				t.Errorf("repaired %d bytes, want %d", s.Repaired(), tt.repaired)
			}
			if err := s.Write(&Entry{ID: "c"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			entries, res := readAll(t, path)
			var ids []string
			for _, e := range entries {
				ids = append(ids, e.ID)
			}
			if !slices.Equal(ids, tt.ids) || res.TornTail {
				t.Errorf("records %v (torn %v), want %v", ids, res.TornTail, tt.ids)
			}
		})
	}
}

// bigRecord is a blocked record of about 5 KiB: more than a page, so on a
// full tmpfs no record fits in the slack of the file's last page.
func bigRecord(i int, at time.Time) *Entry {
	return &Entry{
		ID: fmt.Sprintf("r%05d", i), Time: at, ClientIP: fmt.Sprintf("198.51.100.%d", i%250),
		Action: ActionBlocked, Stage: StageWAF, Status: 403, RequestBody: strings.Repeat("x", 5000),
	}
}

// TestDiskFull fills a real (tmpfs) file system under the JSONL sink:
// counters stay truthful, errors are logged once per interval with counts,
// the writer reports itself degraded (and refusing, under the refuse
// policy), the file holds only whole lines, and once space returns the
// same sink writes again without a restart (issue 13).
func TestDiskFull(t *testing.T) {
	dir := testfs.Small(t, 1<<20)
	path := filepath.Join(dir, "audit.jsonl")
	sink, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	var logBuf syncBuffer
	w := New(Options{
		Log: slog.New(slog.NewTextHandler(&logBuf, nil)), OnFailure: OnFailureRefuse,
		BatchSize: 16, Now: clk.Now,
	}, sink)
	defer w.Close()
	submitted := 0
	submit := func(n int) {
		for range n {
			if !w.Submit(bigRecord(submitted, clk.Now())) {
				t.Fatal("queue overflow: the test submits less than the queue holds between syncs")
			}
			submitted++
		}
		w.Sync()
	}
	submit(20)
	if st := w.Stats(); st.Written != 20 || st.Degraded {
		t.Fatalf("before the disk filled up: %+v", st)
	}
	// No page left: every flush writes what fits in the slack of the
	// file's last page, fails, and has that part cut off again.
	filler := filepath.Join(dir, "filler")
	testfs.Fill(t, filler, 0)
	submit(10)
	if !w.Refusing() {
		t.Fatalf("not refusing with a full disk: %+v", w.Stats())
	}
	submit(500) // all of these fail
	st := w.Stats()
	entries, res := readAll(t, path)
	_, used := testfs.Usage(t, dir)
	t.Logf("disk full: %d records submitted, %d written, %d dropped (sink_failed), file %d bytes, file system %d of %d bytes used",
		submitted, st.Written, st.DroppedSinkFailed, fileSize(t, path), used, 1<<20)
	if st.Written+st.Dropped() != uint64(submitted) || st.DroppedSinkFailed < 500 {
		t.Errorf("written %d + dropped %d != submitted %d", st.Written, st.Dropped(), submitted)
	}
	if uint64(len(entries)) != st.Written || res.TornTail || st.Sinks[0].Written != st.Written || st.Sinks[0].Lost != st.DroppedSinkFailed {
		t.Errorf("file holds %d records (torn tail %v); stats %+v", len(entries), res.TornTail, st)
	}
	if degraded, why := w.Degraded(); !degraded || !st.Degraded || !strings.Contains(why, "file sink failing") || !strings.Contains(why, "no space left on device") {
		t.Errorf("degraded %v %q", degraded, why)
	}
	// One line for the whole outage so far: the clock has not moved.
	if n := strings.Count(logBuf.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d error lines, want 1:\n%s", n, logBuf.String())
	}
	clk.Add(10 * time.Second)
	submit(5)
	// The second line carries what the first one did not: the 500.
	lines := regexp.MustCompile(`level=ERROR .* records_lost=(\d+) `).FindAllStringSubmatch(logBuf.String(), -1)
	if len(lines) != 2 || atoi(lines[1][1]) < 500 {
		t.Errorf("after the interval: %d error lines, want 2, the second with records_lost >= 500:\n%s", len(lines), logBuf.String())
	}

	// Space returns: the probe notices without any record being written,
	// and the same sink writes again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	clk.Add(10 * time.Second)
	w.Sync()
	if degraded, why := w.Degraded(); degraded || w.Refusing() {
		t.Fatalf("still degraded after space returned: %q", why)
	}
	if !strings.Contains(logBuf.String(), "audit sink writes again") {
		t.Errorf("recovery not logged:\n%s", logBuf.String())
	}
	before := w.Stats().Written
	submit(20)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, res = readAll(t, path)
	if st := w.Stats(); st.Written != before+20 || uint64(len(entries)) != st.Written || res.TornTail {
		t.Errorf("after recovery: file holds %d records, stats %+v", len(entries), st)
	}
	reopened, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	if reopened.Repaired() != 0 {
		t.Errorf("the file did not end in a whole line: %d bytes cut", reopened.Repaired())
	}
	_ = reopened.Close()
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// refusal is a rate-limit refusal of client.
func refusal(id int, client string, at time.Time) *Entry {
	return &Entry{
		ID: fmt.Sprintf("q%06d", id), Time: at, ClientIP: client, Host: "shop.test", Method: "GET", URI: fmt.Sprintf("/item?n=%d", id),
		Site: "shop", Route: "/", Status: 429, Action: ActionBlocked, Stage: StageRateLimit,
		Reason: "rate limit api (10/s, burst 20) exceeded", Headers: map[string][]string{"User-Agent": {"flood"}},
	}
}

// TestAggregation: per key and window the first Samples records are kept
// in full and the rest counted into one summary record; keys are per
// source (an IPv6 /64), stage, status, reason class and rules; allowed
// records are never aggregated; past MaxKeys, records go to a catch-all
// summary that says so (issues 13 and 18).
func TestAggregation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	w := New(Options{Log: quietLog(), Now: clk.Now, Aggregate: AggregateOptions{Samples: 3, Window: time.Minute, MaxKeys: 4}}, sink)
	defer w.Close()
	id := 0
	next := func() int { id++; return id }
	for range 100 {
		clk.Add(10 * time.Millisecond)
		w.Submit(refusal(next(), "192.0.2.1", clk.Now()))
	}
	for i := range 5 {
		w.Submit(refusal(next(), fmt.Sprintf("2001:db8:0:1::%d", i+1), clk.Now()))
	}
	for range 10 {
		w.Submit(&Entry{ID: fmt.Sprintf("ok%d", next()), ClientIP: "192.0.2.1", Action: ActionAllowed, Status: 200, Time: clk.Now()})
	}
	// A ban's expiry differs per record, but the reason class blanks it.
	for i := range 5 {
		e := refusal(next(), "192.0.2.9", clk.Now())
		e.Stage, e.Status, e.Reason = StageBan, 403, fmt.Sprintf("banned (192.0.2.9/32) until 2026-05-01T13:%02d:00Z: waf block", i)
		w.Submit(e)
	}
	w.Sync()
	entries, _ := readAll(t, path)
	if len(entries) != 3+3+10+3 {
		t.Fatalf("%d records within the window, want 19 (3 samples per key and the allowed ones)", len(entries))
	}
	clk.Add(time.Minute)
	w.Sync()
	entries, _ = readAll(t, path)
	summaries := map[string]*Entry{}
	for _, e := range entries {
		if e.Summary != nil {
			summaries[e.Summary.Source] = e
		}
	}
	if len(entries) != 19+3 || len(summaries) != 3 {
		t.Fatalf("%d records, %d summaries after the window; want 22 and 3", len(entries), len(summaries))
	}
	s := summaries["192.0.2.1"]
	if s == nil || s.Summary.Count != 97 || s.Weight() != 97 || !slices.Equal(s.Summary.Samples, []string{"q000001", "q000002", "q000003"}) ||
		s.Status != 429 || s.Stage != StageRateLimit || s.Headers != nil || s.ClientIP != "192.0.2.1" || s.URI != "/item?n=4" ||
		!s.Summary.First.Equal(s.Time) || !s.Summary.Last.After(s.Summary.First) || !strings.Contains(s.Summary.Key, "reason=rate limit api (#/s, burst #) exceeded") {
		t.Errorf("flood summary %+v %+v", s, s.Summary)
	}
	if v6 := summaries["2001:db8:0:1::/64"]; v6 == nil || v6.Summary.Count != 2 {
		t.Errorf("IPv6 /64 summary %+v", v6)
	}
	if ban := summaries["192.0.2.9"]; ban == nil || ban.Summary.Count != 2 {
		t.Errorf("ban summary %+v", ban)
	}
	st := w.Stats()
	if st.Aggregated != 101 || st.Summaries != 3 || st.Written != 120 || st.Keys != 0 {
		t.Errorf("stats %+v; want 101 aggregated, 3 summaries, 120 requests written", st)
	}

	// Six sources, five records each, four keys allowed: two sources go to
	// the catch-all of (ratelimit, blocked, 429).
	for src := range 6 {
		for range 5 {
			w.Submit(refusal(next(), fmt.Sprintf("203.0.113.%d", src+1), clk.Now()))
		}
	}
	clk.Add(time.Minute)
	w.Sync()
	entries, _ = readAll(t, path)
	var overflow *Entry
	counted := 0
	for _, e := range entries[22:] {
		if e.Summary != nil {
			counted += e.Summary.Count
			if e.Summary.Overflow {
				overflow = e
			}
		}
	}
	if overflow == nil || overflow.Summary.Count != 7 || overflow.ClientIP != "" || len(overflow.Summary.Samples) != 3 || counted != 4*2+7 {
		t.Errorf("overflow summary %+v, %d counted", overflow, counted)
	}
	if st := w.Stats(); st.Overflow != 10 || st.Written != 150 {
		t.Errorf("stats %+v", st)
	}
}

// TestClosingEmitsOpenWindows: records counted into a window still open
// at shutdown are written as a summary, not lost.
func TestClosingEmitsOpenWindows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	w := New(Options{Log: quietLog(), Aggregate: AggregateOptions{Samples: 1}}, sink)
	for i := range 50 {
		w.Submit(refusal(i, "192.0.2.1", time.Now()))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := readAll(t, path)
	if len(entries) != 2 || entries[1].Summary == nil || entries[1].Summary.Count != 49 || w.Stats().Written != 50 {
		t.Fatalf("%d records, stats %+v", len(entries), w.Stats())
	}
}

// failingSink fails every flush while fail is set; it stands for a remote
// sink without a probe.
type failingSink struct {
	mu      sync.Mutex
	fail    bool
	pending int
	kept    int
}

func (f *failingSink) Write(*Entry) error { f.mu.Lock(); f.pending++; f.mu.Unlock(); return nil }
func (f *failingSink) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.pending
	f.pending = 0
	if f.fail {
		return errors.New("remote end refused the batch")
	}
	f.kept += n
	return nil
}
func (f *failingSink) Close() error { return f.Flush() }

// TestOneFailingSinkDropsTheRecord: a record one sink lost counts as
// dropped, even when another sink has it; per-sink counters tell which.
func TestOneFailingSinkDropsTheRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	file, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := &failingSink{fail: true}
	w := New(Options{Log: quietLog()}, file, bad)
	for i := range 10 {
		w.Submit(bigRecord(i, time.Now()))
	}
	w.Sync()
	st := w.Stats()
	if st.Written != 0 || st.DroppedSinkFailed != 10 || st.Sinks[0].Written != 10 || st.Sinks[1].Lost != 10 || st.Sinks[1].Name != "sink2" || !st.Degraded {
		t.Errorf("stats %+v", st)
	}
	bad.mu.Lock()
	bad.fail = false
	bad.mu.Unlock()
	w.Submit(bigRecord(10, time.Now()))
	w.Sync()
	if st := w.Stats(); st.Written != 1 || st.Degraded || w.Refusing() {
		t.Errorf("after recovery: %+v", st)
	}
	_ = w.Close()
}
