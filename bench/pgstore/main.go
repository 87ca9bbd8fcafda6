// Command pgstore measures the shared PostgreSQL audit store (issue 16):
// ingest from one instance (records/s through the same Insert the audit
// sink uses: the batch's rollups and a COPY straight into records, one
// transaction; a redelivered batch falls back to ON CONFLICT DO NOTHING),
// and the latency of the dashboard's default views (the
// overview's summary of the last 24 hours and 7 days, the events page's
// newest records, unfiltered and filtered) over everything loaded.
//
// Baseline, same run: the embedded SQLite store ingests the first
// -baseline records of the same stream, so the ingest rate is also given as
// a ratio against the default store on the same machine and moment.
//
//	go run ./bench/pgstore                               # 1,000,000 records
//	go run ./bench/pgstore -records 10000000 -keep       # 10 M, keep the schema
//	go run ./bench/pgstore -schema pcbench_x -records 0  # queries only, on a kept schema
//
// Records are generated (audit/store/storetest) over the -span before now.
// Only loopback servers are accepted. The schema is dropped at the end
// unless -keep.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/audit/store/storetest"
)

func main() {
	dsn := flag.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL `URL` (loopback only)")
	records := flag.Int("records", 1_000_000, "records to load (0: only query an existing -schema)")
	batch := flag.Int("batch", 2000, "records per batch (one audit writer flush; the writer hands the shared store up to 2,000 under load)")
	span := flag.Duration("span", 7*24*time.Hour, "time the records spread over, ending now")
	baseline := flag.Int("baseline", 100_000, "records the SQLite baseline ingests (0: none)")
	schema := flag.String("schema", "", "schema to use (default: a fresh pcbench_<random>)")
	keep := flag.Bool("keep", false, "keep the schema afterwards")
	reps := flag.Int("reps", 15, "repetitions of each query")
	flag.Parse()
	u, err := url.Parse(*dsn)
	if err != nil || !loopback(u.Hostname()) {
		fmt.Fprintln(os.Stderr, "pgstore bench: -pg must be a postgres:// URL of a loopback host")
		os.Exit(2)
	}
	if *schema == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		*schema = "pcbench_" + hex.EncodeToString(b[:])
	}
	pg, err := store.OpenPostgres(store.PostgresOptions{ConnString: *dsn, Schema: *schema, Instance: "bench-1", Timeout: 5 * time.Minute, ManualRetention: true})
	if err != nil {
		fail(err)
	}
	defer pg.Close()
	ctx := context.Background()
	if !*keep {
		defer func() {
			if err := pg.DropSchema(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "drop schema:", err)
			}
		}()
	}
	if err := pg.EnsureSchema(ctx); err != nil {
		fail(err)
	}
	now := time.Now().UTC()
	start := now.Add(-*span)
	fmt.Printf("# pgstore: %d records over %v in batches of %d, schema %s\n\n", *records, *span, *batch, *schema)

	if *baseline > 0 && *records > 0 {
		n := min(*baseline, *records)
		dir, err := os.MkdirTemp("", "pgstore-bench-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(dir)
		sq, err := store.OpenSQLite(filepath.Join(dir, "audit.db"), store.SQLiteOptions{ManualRetention: true})
		if err != nil {
			fail(err)
		}
		rate := ingest(n, *batch, storetest.NewGenerator(7, start, *span, *records), func(b []*audit.Entry) error {
			return sq.Insert(ctx, b...)
		}, false)
		_ = sq.Close()
		fmt.Printf("baseline: SQLite ingest of the first %d records: %.0f records/s\n", n, rate)
		pgRate := ingest(n, *batch, storetest.NewGenerator(7, start, *span, *records), func(b []*audit.Entry) error {
			_, err := pg.Insert(ctx, b...)
			return err
		}, false)
		fmt.Printf("PostgreSQL ingest of the same %d records: %.0f records/s (%.2f× SQLite)\n", n, pgRate, pgRate/rate)
		// Start the full load on an empty table.
		_ = pg.DropSchema(ctx)
		_ = pg.Close()
		if pg, err = store.OpenPostgres(store.PostgresOptions{ConnString: *dsn, Schema: *schema, Instance: "bench-1", Timeout: 5 * time.Minute, ManualRetention: true}); err != nil {
			fail(err)
		}
		if err := pg.EnsureSchema(ctx); err != nil {
			fail(err)
		}
	}
	if *records > 0 {
		rate := ingest(*records, *batch, storetest.NewGenerator(7, start, *span, *records), func(b []*audit.Entry) error {
			_, err := pg.Insert(ctx, b...)
			return err
		}, true)
		fmt.Printf("\nPostgreSQL ingest, %d records: %.0f records/s (target ≥ 20,000/s)\n", *records, rate)
		if _, err := pg.Maintain(ctx); err != nil { // the partitions ahead, as an instance would
			fail(err)
		}
		if err := pg.Analyze(ctx); err != nil {
			fail(err)
		}
	}

	views := []struct {
		name   string
		filter string
		search bool
	}{
		{"overview: summary, last 24h (whole hours)", "since=" + now.Add(-24*time.Hour).Truncate(time.Hour).Format(time.RFC3339) + "&until=" + now.Truncate(time.Hour).Add(time.Hour).Format(time.RFC3339), false},
		{"overview: summary, last 7d (whole hours)", "since=" + now.Add(-7*24*time.Hour).Truncate(time.Hour).Format(time.RFC3339) + "&until=" + now.Truncate(time.Hour).Add(time.Hour).Format(time.RFC3339), false},
		{"overview: summary, last 24h, blocked only", "action=blocked&since=" + now.Add(-24*time.Hour).Truncate(time.Hour).Format(time.RFC3339) + "&until=" + now.Truncate(time.Hour).Add(time.Hour).Format(time.RFC3339), false},
		{"overview: summary, last 1h (raw records)", "since=1h", false},
		{"events: newest 50", "", true},
		{"events: newest 50 blocked", "action=blocked", true},
		{"events: newest 50 of rule 942100", "rule=942100", true},
		{"events: newest 50 from one /24 in the last 24h", "ip=203.0.113.0/24&since=24h", true},
		{"events: newest 50 of host api.example, last 24h", "host=api.example&since=24h", true},
	}
	fmt.Printf("\n| view | median | p90 | max | result |\n|---|---|---|---|---|\n")
	for _, v := range views {
		vals, err := url.ParseQuery(v.filter)
		if err != nil {
			fail(err)
		}
		f, err := query.Parse(vals, now)
		if err != nil {
			fail(err)
		}
		var times []time.Duration
		result := ""
		for range *reps {
			t0 := time.Now()
			if v.search {
				res, err := pg.Search(ctx, f, store.Page{Limit: 50})
				if err != nil {
					fail(err)
				}
				result = fmt.Sprintf("%d records", len(res.Entries))
			} else {
				sum, err := pg.Summary(ctx, f, store.SummaryOptions{Top: 18})
				if err != nil {
					fail(err)
				}
				result = sum.Composition()
			}
			times = append(times, time.Since(t0))
		}
		slices.Sort(times)
		fmt.Printf("| %s | %v | %v | %v | %s |\n", v.name, ms(times[len(times)/2]), ms(times[len(times)*9/10]), ms(times[len(times)-1]), result)
	}
}

// ingest feeds n generated records to insert in batches and returns the
// rate, counting only the time spent in insert (generation runs ahead in
// another goroutine).
func ingest(n, size int, g *storetest.Generator, insert func([]*audit.Entry) error, progress bool) float64 {
	batches := make(chan []*audit.Entry, 4)
	go func() {
		defer close(batches)
		for left := n; left > 0; {
			b := make([]*audit.Entry, min(size, left))
			for i := range b {
				b[i] = g.Next()
			}
			left -= len(b)
			batches <- b
		}
	}()
	var spent time.Duration
	done, lastReport := 0, time.Now()
	for b := range batches {
		t0 := time.Now()
		if err := insert(b); err != nil {
			fail(err)
		}
		spent += time.Since(t0)
		done += len(b)
		if progress && time.Since(lastReport) > 30*time.Second {
			fmt.Fprintf(os.Stderr, "  %d records, %.0f/s\n", done, float64(done)/spent.Seconds())
			lastReport = time.Now()
		}
	}
	return float64(done) / spent.Seconds()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pgstore bench:", err)
	os.Exit(1)
}
