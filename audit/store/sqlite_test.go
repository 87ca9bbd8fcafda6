package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/audit/store/storetest"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

func TestFileModeAndSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "audit.db")
	s, err := OpenSQLite(path, SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(context.Background(), fixtures(20)...); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	var version int
	var mode string
	var autoVacuum int
	if err := s.rdb.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRow("PRAGMA auto_vacuum").Scan(&autoVacuum); err != nil {
		t.Fatal(err)
	}
	if version != schemaVersion || mode != "wal" || autoVacuum != 2 {
		t.Fatalf("user_version %d, journal_mode %s, auto_vacuum %d; want %d, wal, 2 (incremental)", version, mode, autoVacuum, schemaVersion)
	}
	if _, err := s.wdb.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		_, err = OpenSQLite(path, SQLiteOptions{ReadOnly: ro})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema version 99 is newer than this Portcullis understands (%d)", schemaVersion)) {
			t.Fatalf("read-only %v: opening a newer schema: %v", ro, err)
		}
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenSQLite(filepath.Join(dir, "missing.db"), SQLiteOptions{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("read-only open created the file")
	}
	other := filepath.Join(dir, "other.db")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSQLite(other, SQLiteOptions{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "not a Portcullis audit database") {
		t.Fatalf("empty file: %v", err)
	}
	path := filepath.Join(dir, "audit.db")
	w := openAt(t, path, SQLiteOptions{})
	entries := fixtures(30)
	if err := w.Insert(context.Background(), entries...); err != nil {
		t.Fatal(err)
	}
	r := openAt(t, path, SQLiteOptions{ReadOnly: true})
	if got, err := r.Get(context.Background(), entries[3].ID); err != nil || got.ID != entries[3].ID {
		t.Fatalf("read-only get: %v %v", got, err)
	}
	if _, err := r.Sink(); err == nil {
		t.Fatal("read-only store gave a sink")
	}
	if err := r.Insert(context.Background(), entries[0]); err == nil {
		t.Fatal("read-only store inserted")
	}
	if _, err := r.rdb.Exec("DELETE FROM records"); err == nil {
		t.Fatal("read-only connection deleted")
	}
}

func openAt(t *testing.T, path string, opts SQLiteOptions) *SQLite {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return clock }
	}
	s, err := OpenSQLite(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestSinkThroughWriter ingests through audit.Writer like a running
// instance and checks every record arrived once.
func TestSinkThroughWriter(t *testing.T) {
	db := openTest(t, SQLiteOptions{})
	sink, err := db.Sink()
	if err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(10000, slog.New(slog.DiscardHandler), sink)
	entries := fixtures(2000)
	for _, e := range entries {
		if !w.Submit(e) {
			t.Fatal("record dropped")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Written != 2000 || st.Dropped() != 0 || st.Sinks[0].Written != 2000 {
		t.Fatalf("stats %+v", st)
	}
	got := searchAll(t, db, query.Filter{}, MaxLimit)
	if want := expected(entries, query.Filter{}); !equalStrings(got, want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// TestSinkCommitsOnFlush: Write only queues; Flush commits the batch, and
// a batch that fails is dropped whole while the next one commits (the
// audit.Sink contract the Writer's counters rely on).
func TestSinkCommitsOnFlush(t *testing.T) {
	db := openTest(t, SQLiteOptions{})
	sink, err := db.Sink()
	if err != nil {
		t.Fatal(err)
	}
	entries := fixtures(3)[:3]
	for _, e := range entries[:2] {
		if err := sink.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, db, query.Filter{}); n != 0 {
		t.Fatalf("%d records committed before Flush", n)
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, query.Filter{}); n != 2 {
		t.Fatalf("%d records after Flush, want 2", n)
	}
	// A record that cannot be inserted (its id taken by a unique index
	// the test adds) fails the batch; the batch is gone, the next works.
	if _, err := db.wdb.Exec("CREATE UNIQUE INDEX test_unique_id ON records(id)"); err != nil {
		t.Fatal(err)
	}
	_ = sink.Write(entries[2])
	_ = sink.Write(entries[0])
	if err := sink.Flush(); err == nil || !strings.Contains(err.Error(), "2 record(s) lost") {
		t.Fatalf("flush of a failing batch: %v", err)
	}
	_ = sink.Write(entries[2])
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, query.Filter{}); n != 3 {
		t.Fatalf("%d records after the failed and the good batch, want 3", n)
	}
}

func count(t *testing.T, s Store, f query.Filter) int {
	t.Helper()
	sum, err := s.Summary(context.Background(), f, SummaryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Total
}

func TestRetentionByAge(t *testing.T) {
	entries := fixtures(3000)
	// Manual: the periodic run (5s after opening) must not delete what
	// this test counts, however slow the insert is.
	db := openTest(t, SQLiteOptions{MaxAge: 40 * time.Hour, ManualRetention: true})
	insertAll(t, db, entries)
	n, err := db.EnforceRetention(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cutoff := clock.Add(-40 * time.Hour)
	var kept []*audit.Entry
	for _, e := range entries {
		if !e.Time.Before(cutoff) {
			kept = append(kept, e)
		}
	}
	if n != len(entries)-len(kept) || n == 0 {
		t.Fatalf("deleted %d records, want %d", n, len(entries)-len(kept))
	}
	if got, want := searchAll(t, db, query.Filter{}, MaxLimit), expected(kept, query.Filter{}); !equalStrings(got, want) {
		t.Fatalf("%d records left, want %d", len(got), len(want))
	}
	// The rollups lost exactly what was deleted: summaries over them still
	// equal the ones computed from the records left.
	files := writeJSONL(t, kept)
	for _, q := range []string{"", "since=3d", "since=39h&action=blocked", "since=2026-11-25T00:00:00Z"} {
		compareSummaries(t, db, files, parse(t, q), SummaryOptions{Bucket: time.Hour})
	}
	var rows int
	if err := db.rdb.QueryRow("SELECT COUNT(*) FROM tops WHERE bucket < ?", cutoff.Add(-24*time.Hour).Unix()).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d rollup rows older than the oldest record (%v)", rows, err)
	}
	if n, err := db.EnforceRetention(context.Background()); n != 0 || err != nil {
		t.Fatalf("second run deleted %d (%v)", n, err)
	}
}

func TestRetentionBySize(t *testing.T) {
	entries := fixtures(4000)
	const limit = 3 << 19
	db := openTest(t, SQLiteOptions{MaxBytes: limit, ManualRetention: true})
	insertAll(t, db, entries)
	checkpoint(t, db)
	before := fileSize(t, db.path)
	if before <= limit {
		t.Fatalf("fixture database is only %d bytes", before)
	}
	n, err := db.EnforceRetention(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n == len(entries) {
		t.Fatalf("deleted %d of %d records", n, len(entries))
	}
	checkpoint(t, db)
	if after := fileSize(t, db.path); after > limit {
		t.Fatalf("file is %d bytes after retention (was %d), limit %d", after, before, limit)
	}
	// The oldest went first: what is left is the newest n records.
	kept := entries[n:]
	if got, want := searchAll(t, db, query.Filter{}, MaxLimit), expected(kept, query.Filter{}); !equalStrings(got, want) {
		t.Fatalf("%d records left, want the newest %d", len(got), len(want))
	}
	compareSummaries(t, db, writeJSONL(t, kept), parse(t, "since=2d"), SummaryOptions{})
	// The file stops growing: ingesting more and enforcing again keeps it
	// at the limit.
	more := storetest.NewGenerator(7, clock, time.Hour, 1500)
	for range 3 {
		batch := make([]*audit.Entry, 500)
		for i := range batch {
			batch[i] = more.Next()
		}
		insertAll(t, db, batch)
		if _, err := db.EnforceRetention(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	checkpoint(t, db)
	if after := fileSize(t, db.path); after > limit {
		t.Fatalf("file grew to %d bytes, limit %d", after, limit)
	}
}

// checkpoint copies the whole WAL into the file (retrying while the
// background checkpoint holds the lock), so the file size is the database
// size.
func checkpoint(t *testing.T, db *SQLite) {
	t.Helper()
	for range 100 {
		var busy, frames, done int
		if err := db.wdb.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil {
			t.Fatal(err)
		}
		if busy == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("checkpoint stayed busy")
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestRetentionLoop: the periodic run enforces MaxAge without being asked.
func TestRetentionLoop(t *testing.T) {
	db := openTest(t, SQLiteOptions{MaxAge: time.Hour, RetentionInterval: 10 * time.Millisecond})
	insertAll(t, db, fixtures(200))
	if !waitfor.True(10*time.Second, func() bool { return count(t, db, query.Filter{}) == 0 }) {
		t.Fatal("retention loop did not delete records older than MaxAge")
	}
}

// TestConcurrentWriterAndReaders runs ingest through the Sink while
// searches and summaries run; run with -race.
func TestConcurrentWriterAndReaders(t *testing.T) {
	db := openTest(t, SQLiteOptions{MaxAge: 24 * time.Hour, RetentionInterval: 5 * time.Millisecond})
	sink, err := db.Sink()
	if err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(5000, slog.New(slog.DiscardHandler), sink)
	entries := fixtures(1500)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 4 {
		wg.Go(func() {
			f := []query.Filter{{}, parse(t, "action=blocked"), parse(t, "since=1d"), parse(t, "rule=942100")}[i]
			for ctx.Err() == nil {
				if _, err := db.Search(ctx, f, Page{Limit: 50}); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
				if _, err := db.Summary(ctx, f, SummaryOptions{}); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, e := range entries {
		for !w.Submit(e) {
			time.Sleep(time.Millisecond) // the queue is full: back off as a producer would
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := w.Stats(); st.Dropped() != 0 || st.Sinks[0].Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Retention ran concurrently: what is left is what MaxAge allows, and
	// the rollups agree with it.
	if _, err := db.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	var kept []*audit.Entry
	for _, e := range entries {
		if !e.Time.Before(clock.Add(-24 * time.Hour)) {
			kept = append(kept, e)
		}
	}
	compareSummaries(t, db, writeJSONL(t, kept), query.Filter{}, SummaryOptions{})
}

// The crash test re-executes the test binary as a child that ingests
// through the Sink, prints how many records it has committed after each
// Flush, and is killed with SIGKILL mid-stream.
const crashEnv = "PORTCULLIS_STORE_CRASH_CHILD"

func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	db, err := OpenSQLite(path, SQLiteOptions{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	sink, _ := db.Sink()
	g := storetest.NewGenerator(99, start, span, 1<<30)
	for i := 1; ; i++ {
		if err := sink.Write(g.Next()); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if i%37 == 0 {
			if err := sink.Flush(); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("committed", i)
		}
	}
}

func TestCrashSafety(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("this process is the crash child of another TestCrashSafety")
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Read progress until well into ingest, then kill without warning.
		committed := 0
		buf := make([]byte, 0, 4096)
		chunk := make([]byte, 4096)
		for committed < 1000*(round+1) {
			n, rerr := out.Read(chunk)
			buf = append(buf, chunk[:n]...)
			lines := strings.Split(string(buf), "\n")
			for _, l := range lines[:len(lines)-1] {
				if v, ok := strings.CutPrefix(l, "committed "); ok {
					committed, _ = strconv.Atoi(v)
				} else if strings.HasPrefix(l, "error") {
					t.Fatal(l)
				}
			}
			buf = []byte(lines[len(lines)-1])
			if rerr != nil {
				t.Fatalf("child ended: %v", rerr)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		// Every record the child reported committed is there; the database
		// is intact and opens for writing again.
		db, err := OpenSQLite(path, SQLiteOptions{})
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		g := storetest.NewGenerator(99, start, span, 1<<30)
		ids := make([]any, committed)
		for i := range ids {
			ids[i] = g.Next().ID
		}
		var found int
		conn := db.rdb
		for i := 0; i < len(ids); i += 500 {
			part := ids[i:min(i+500, len(ids))]
			var n int
			if err := conn.QueryRow("SELECT COUNT(DISTINCT id) FROM records WHERE id IN ("+placeholders(len(part))+")", part...).Scan(&n); err != nil {
				t.Fatal(err)
			}
			found += n
		}
		if found != committed {
			t.Fatalf("round %d: %d of %d committed records survived the kill", round, found, committed)
		}
		var check string
		if err := conn.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity_check: %q %v", check, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNoBusyErrorsFromReaders: a read transaction open across a commit
// never makes the writer fail (WAL), and sees its own snapshot.
func TestNoBusyErrorsFromReaders(t *testing.T) {
	db := openTest(t, SQLiteOptions{})
	insertAll(t, db, fixtures(100))
	tx, err := db.rdb.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var before int
	if err := tx.QueryRow("SELECT COUNT(*) FROM records").Scan(&before); err != nil {
		t.Fatal(err)
	}
	more := storetest.NewGenerator(5, clock, time.Hour, 10)
	for range 10 {
		if err := db.Insert(context.Background(), more.Next()); err != nil {
			t.Fatal(err)
		}
	}
	var during int
	if err := tx.QueryRow("SELECT COUNT(*) FROM records").Scan(&during); err != nil {
		t.Fatal(err)
	}
	if before != 100 || during != 100 {
		t.Fatalf("reader saw %d then %d records", before, during)
	}
}

// TestDatabaseDirectoryIsPrivate: a database directory the store creates is
// 0700 like the state directory, whatever the umask (#13: it was 0750).
func TestDatabaseDirectoryIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit", "db")
	s, err := OpenSQLite(filepath.Join(dir, "audit.db"), SQLiteOptions{ManualRetention: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s is %v, want 0700", d, st.Mode().Perm())
		}
	}
}
