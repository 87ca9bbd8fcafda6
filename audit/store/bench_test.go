package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/audit/store/storetest"
)

// Benchmarks. The 1M-record ones build (once) a database of a week of
// generated traffic at $PORTCULLIS_BENCH_DB, default
// $TMPDIR/portcullis-bench-1m.db, reporting the ingest rate while doing so:
//
//	go test -run '^$' -bench . -benchtime 10x ./audit/store
//
// Delete the file to rebuild it after a schema change.

const benchRecords = 1_000_000

var (
	benchStart = time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	benchSpan  = 7 * 24 * time.Hour
	benchNow   = benchStart.Add(benchSpan)
)

// BenchmarkIngest measures the Sink as the audit.Writer drives it under
// load: Write per record, a Flush (one commit) every 256 records (the
// Writer's default batch).
func BenchmarkIngest(b *testing.B) {
	s, err := OpenSQLite(filepath.Join(b.TempDir(), "audit.db"), SQLiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sink, err := s.Sink()
	if err != nil {
		b.Fatal(err)
	}
	ingest(b, sink, storetest.NewGenerator(1, benchStart, benchSpan, max(b.N, 1)))
}

// ingest writes b.N generated records through sink, as the audit.Writer
// does, and reports records/s and CPU time per record.
func ingest(b *testing.B, sink audit.Sink, g *storetest.Generator) {
	entries := make([]*audit.Entry, b.N)
	for i := range entries {
		entries[i] = g.Next()
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i, e := range entries {
		if err := sink.Write(e); err != nil {
			b.Fatal(err)
		}
		if i%256 == 255 {
			if err := sink.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := sink.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	// CPU time does not depend on what else the machine runs.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/record")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Benchmark1MIngest measures sustained ingest into a copy of the 1M-record
// database: bigger indexes than an empty one, and rollups to update.
func Benchmark1MIngest(b *testing.B) {
	src := benchDB(b)
	path := filepath.Join(b.TempDir(), "audit.db")
	if err := copyFile(src.path, path); err != nil {
		b.Fatal(err)
	}
	src.Close()
	s, err := OpenSQLite(path, SQLiteOptions{Now: func() time.Time { return benchNow }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sink, _ := s.Sink()
	ingest(b, sink, storetest.NewGenerator(77, benchNow, time.Hour, max(b.N, 1)))
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// benchDB opens the 1M-record database, building it if needed.
func benchDB(b *testing.B) *SQLite {
	b.Helper()
	path := os.Getenv("PORTCULLIS_BENCH_DB")
	if path == "" {
		path = filepath.Join(os.TempDir(), "portcullis-bench-1m.db")
	}
	now := func() time.Time { return benchNow }
	if s, err := OpenSQLite(path, SQLiteOptions{ReadOnly: true, Now: now}); err == nil {
		var n int
		if err := s.rdb.QueryRow("SELECT COUNT(*) FROM records").Scan(&n); err == nil && n == benchRecords && sameSchema(b, s) {
			return s
		}
		s.Close()
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
	w, err := OpenSQLite(path, SQLiteOptions{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	sink, _ := w.Sink()
	g := storetest.NewGenerator(2026, benchStart, benchSpan, benchRecords)
	began, lap, cpu0, cpuLap := time.Now(), time.Now(), cpuTime(), cpuTime()
	for i := 1; i <= benchRecords; i++ {
		if err := sink.Write(g.Next()); err != nil {
			b.Fatal(err)
		}
		if i%100_000 == 0 {
			if err := sink.Flush(); err != nil {
				b.Fatal(err)
			}
			b.Logf("ingest: %7d records, last 100k at %.0f records/s, %.0f cpu-µs/record", i, 100_000/time.Since(lap).Seconds(),
				float64((cpuTime()-cpuLap).Microseconds())/100_000)
			lap, cpuLap = time.Now(), cpuTime()
		}
	}
	if err := sink.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("ingest: 1M records in %v: %.0f records/s, %.0f cpu-µs/record (including record generation)", time.Since(began).Round(time.Second),
		benchRecords/time.Since(began).Seconds(), float64((cpuTime()-cpu0).Microseconds())/benchRecords)
	if err := w.Analyze(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.Logf("database file: %d MiB", fi.Size()>>20)
	s, err := OpenSQLite(path, SQLiteOptions{ReadOnly: true, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// sameSchema reports whether s was built by this code's schema (it may
// change before a release without a version bump).
func sameSchema(b *testing.B, s *SQLite) bool {
	fresh, err := OpenSQLite(filepath.Join(b.TempDir(), "fresh.db"), SQLiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer fresh.Close()
	return schemaText(b, fresh) == schemaText(b, s)
}

func schemaText(b *testing.B, s *SQLite) string {
	rows, err := s.rdb.Query("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out string
	for rows.Next() {
		var name, text string
		if err := rows.Scan(&name, &text); err != nil {
			b.Fatal(err)
		}
		out += name + ":" + text + "\n"
	}
	return out
}

func benchFilter(b *testing.B, q string) query.Filter {
	v, err := url.ParseQuery(q)
	if err != nil {
		b.Fatal(err)
	}
	f, err := query.Parse(v, benchNow)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

var benchSearches = []string{
	"",
	"action=blocked&country=CN",
	"rule=942100&since=1d",
	"ip=64.0.0.0/8&host=api.example",
	"not_action=allowed&path=/login",
	"tag=attack-xss&not_country=US",
	"status=429&since=3d",
	"country=KR&path=/api/",
	"ip=0.0.0.0/0&not_path=/static", // matches most records
}

var benchSummaries = []string{
	"since=7d",
	"since=2026-11-16T00:37:00Z&until=2026-11-22T23:23:00Z", // partial hours and days at both ends
	"since=2026-11-21T09:41:00Z&until=2026-11-22T09:41:00Z", // a day, unaligned
	"since=24h",
	"since=1h",
	"since=7d&action=blocked",
	"since=24h&not_action=allowed",
	"since=24h&rule=942100",
	"since=7d&country=CN&action=blocked",
	"host=admin.example&since=24h",
	"since=7d&not_country=US", // not answerable from rollups, matches 70%: scans them
}

func Benchmark1MSearch(b *testing.B) {
	s := benchDB(b)
	defer s.Close()
	for _, q := range benchSearches {
		f := benchFilter(b, q)
		b.Run(name(q), func(b *testing.B) {
			var n int
			cpu0 := cpuTime()
			for b.Loop() {
				res, err := s.Search(context.Background(), f, Page{Limit: 100})
				if err != nil {
					b.Fatal(err)
				}
				n = len(res.Entries)
			}
			b.ReportMetric(float64(n), "records")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

func Benchmark1MSummary(b *testing.B) {
	s := benchDB(b)
	defer s.Close()
	for _, q := range benchSummaries {
		f := benchFilter(b, q)
		b.Run(name(q), func(b *testing.B) {
			var total int
			cpu0 := cpuTime()
			for b.Loop() {
				sum, err := s.Summary(context.Background(), f, SummaryOptions{})
				if err != nil {
					b.Fatal(err)
				}
				total = sum.Total
			}
			b.ReportMetric(float64(total), "records")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

func name(q string) string {
	if q == "" {
		return "all"
	}
	return fmt.Sprint(q)
}

// BenchmarkRefusalFlood is what one refusal of a flood (a 429 from one
// client) costs the audit, in CPU time of the whole process (the request's
// Submit and the writer's encoding, file write and store insert), with
// every record written in full and with aggregation on (the defaults),
// measured in the same run (issue 18: the store doubled the CPU of a 429):
//
//	go test -run '^$' -bench RefusalFlood ./audit/store
func BenchmarkRefusalFlood(b *testing.B) {
	run := func(agg audit.AggregateOptions) float64 {
		dir := b.TempDir()
		file, err := audit.OpenFileSink(filepath.Join(dir, "audit.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		db, err := OpenSQLite(filepath.Join(dir, "audit.db"), SQLiteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		sink, _ := db.Sink()
		w := audit.New(audit.Options{Log: slog.New(slog.DiscardHandler), Aggregate: agg}, file, sink)
		now := time.Now()
		cpu0 := cpuTime()
		for i := range b.N {
			for !w.Submit(floodRecord("ratelimit", i, now)) {
				w.Sync()
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		return float64((cpuTime() - cpu0).Nanoseconds()) / float64(b.N)
	}
	full := run(audit.AggregateOptions{})
	aggregated := run(audit.AggregateOptions{Samples: 10, Window: time.Minute, MaxKeys: 10000})
	b.ReportMetric(full/1000, "cpu-µs/refusal-full")
	b.ReportMetric(aggregated/1000, "cpu-µs/refusal-aggregated")
	b.ReportMetric(full/aggregated, "full/aggregated")
}
