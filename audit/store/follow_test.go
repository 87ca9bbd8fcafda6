package store

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
)

// collector gathers followed records for a test.
type collector struct {
	mu  sync.Mutex
	ids []string
}

func (c *collector) add(e *audit.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, e.ID)
	return nil
}

// waitFor polls until n records arrived (there is no other signal).
func (c *collector) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([]string(nil), c.ids...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("followed %d records, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ids(entries []*audit.Entry, f query.Filter) []string {
	var out []string
	for _, e := range entries {
		if f.Match(e) {
			out = append(out, e.ID)
		}
	}
	return out
}

func follow(t *testing.T, s Follower, f query.Filter, backlog int) (*collector, func()) {
	t.Helper()
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Follow(ctx, f, backlog, 5*time.Millisecond, c.add) }()
	return c, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("follow: %v", err)
		}
	}
}

func TestFollowSQLite(t *testing.T) {
	entries := fixtures(300)
	db := openTest(t, SQLiteOptions{})
	insertAll(t, db, entries[:200])
	f := parse(t, "not_action=allowed")
	c, stop := follow(t, db, f, 3)
	old := ids(entries[:200], f)
	want := append(old[len(old)-3:], ids(entries[200:], f)...)
	c.waitFor(t, 3) // the backlog, before anything new is added
	insertAll(t, db, entries[200:250])
	insertAll(t, db, entries[250:])
	got := c.waitFor(t, len(want))
	stop()
	if !equalStrings(got, want) {
		t.Fatalf("followed %v\nwant %v", got, want)
	}
}

func TestFollowFiles(t *testing.T) {
	entries := fixtures(120)
	dir := t.TempDir()
	older, current := filepath.Join(dir, "audit.jsonl.1"), filepath.Join(dir, "audit.jsonl")
	writeLines(t, older, entries[:40], os.O_CREATE|os.O_WRONLY)
	writeLines(t, current, entries[40:60], os.O_CREATE|os.O_WRONLY)
	files, err := OpenFiles(older, current)
	if err != nil {
		t.Fatal(err)
	}
	f := parse(t, "not_action=detected")
	backlog := ids(entries[:60], f)
	c, stop := follow(t, files, f, 5)
	c.waitFor(t, 5)
	// Appended in two writes that split a line: nothing half-read.
	data := jsonl(t, entries[60:80])
	appendBytes(t, current, data[:len(data)/2])
	time.Sleep(20 * time.Millisecond)
	appendBytes(t, current, data[len(data)/2:])
	want := append(backlog[len(backlog)-5:], ids(entries[60:80], f)...)
	c.waitFor(t, len(want))
	// Copy-truncate rotation: the file starts again, shorter.
	writeLines(t, current, entries[80:90], os.O_WRONLY|os.O_TRUNC)
	want = append(want, ids(entries[80:90], f)...)
	c.waitFor(t, len(want))
	// Rename rotation: a new file appears under the name.
	if err := os.Rename(current, current+".2"); err != nil {
		t.Fatal(err)
	}
	writeLines(t, current, entries[90:], os.O_CREATE|os.O_WRONLY)
	want = append(want, ids(entries[90:], f)...)
	got := c.waitFor(t, len(want))
	stop()
	if !equalStrings(got, want) {
		t.Fatalf("followed %v\nwant %v", got, want)
	}
}

func jsonl(t *testing.T, entries []*audit.Entry) []byte {
	t.Helper()
	var buf []byte
	for _, e := range entries {
		b, err := jsonMarshal(e)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(append(buf, b...), '\n')
	}
	return buf
}

func writeLines(t *testing.T, path string, entries []*audit.Entry, flag int) {
	t.Helper()
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(jsonl(t, entries)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
