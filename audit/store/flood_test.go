package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/internal/testfs"
)

// summaryRecord stands for count requests of client, blocked by rule 942100.
func summaryRecord(id string, at time.Time, client string, count int) *audit.Entry {
	return &audit.Entry{
		ID: id, Time: at, ClientIP: client, Host: "shop.example", Method: "GET", URI: "/search?q=x",
		Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF, Reason: "request denied by rule 949110",
		Rules:   []audit.MatchedRule{{ID: 942100, Message: "SQL Injection Attack Detected via libinjection"}, {ID: 949110}},
		Summary: &audit.Summary{Count: count, First: at, Last: at.Add(time.Minute), Key: "test", Samples: []string{"a", "b"}},
	}
}

// TestSummaryRecordsCountTheirRequests: a summary record of 5,000
// requests counts 5,000 in totals, series and top lists, in the rollups
// and in scans alike, and retention takes the 5,000 away with it (issues
// 13 and 18).
func TestSummaryRecordsCountTheirRequests(t *testing.T) {
	entries := fixtures(2000)
	entries = append(entries,
		summaryRecord("sum-old", start.Add(10*time.Minute), "203.0.113.66", 5000),
		summaryRecord("sum-new", clock.Add(-2*time.Hour), "203.0.113.66", 1200),
	)
	db := openTest(t, SQLiteOptions{MaxAge: span, ManualRetention: true})
	insertAll(t, db, entries)
	files := writeJSONL(t, entries)
	for _, q := range []string{"", "since=3d", "since=2d&action=blocked", "ip=203.0.113.66", "rule=942100"} {
		compareSummaries(t, db, files, parse(t, q), SummaryOptions{Bucket: time.Hour})
	}
	sum := compareSummaries(t, db, files, parse(t, "ip=203.0.113.66"), SummaryOptions{})
	if sum.Total != 6200 || sum.Blocked != 6200 || sum.TopClients[0].Count != 6200 || sum.TopRules[0].ID != 942100 || sum.TopRules[0].Count != 6200 {
		t.Fatalf("summary of the summary records: %+v", brief(sum))
	}
	all := compareSummaries(t, db, files, query.Filter{}, SummaryOptions{})
	if all.Total != len(entries)-2+6200 {
		t.Fatalf("total %d, want %d", all.Total, len(entries)-2+6200)
	}
	// Retention by age deletes the old summary and its 5,000 from the
	// rollups.
	if _, err := db.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	var kept []*audit.Entry
	for _, e := range entries {
		if !e.Time.Before(clock.Add(-span)) {
			kept = append(kept, e)
		}
	}
	files = writeJSONL(t, kept)
	for _, q := range []string{"", "since=3d", "ip=203.0.113.66"} {
		compareSummaries(t, db, files, parse(t, q), SummaryOptions{Bucket: time.Hour})
	}
	if sum := compareSummaries(t, db, files, parse(t, "since=4d"), SummaryOptions{}); sum.TopClients[0].Value != "203.0.113.66" || sum.TopClients[0].Count != 1200 {
		t.Fatalf("after retention: %+v", brief(sum))
	}
}

// TestMigrationAddsWeights opens a version-1 database: it is upgraded in
// place, its records weigh one request each, and a summary record added
// afterwards weighs its count.
func TestMigrationAddsWeights(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	if err := createFile(path); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := createSchemaV1(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO records (id, t, ip, host, path, action, stage, status, country) VALUES ('old', 1, x'04c0000201', 'h', '/', 'blocked', 'waf', 403, '')`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	_ = raw.Close()
	if _, err := OpenSQLite(path, SQLiteOptions{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "schema version 1 is older") {
		t.Fatalf("read-only open of a version-1 database: %v", err)
	}
	db := openAt(t, path, SQLiteOptions{})
	var version, n int
	if err := db.rdb.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != schemaVersion {
		t.Fatalf("user_version %d (%v)", version, err)
	}
	if err := db.rdb.QueryRow("SELECT n FROM records WHERE id = 'old'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("weight of an old record: %d (%v)", n, err)
	}
	if err := db.Insert(context.Background(), summaryRecord("s", clock, "192.0.2.1", 300)); err != nil {
		t.Fatal(err)
	}
	if err := db.rdb.QueryRow("SELECT n FROM records WHERE id = 's'").Scan(&n); err != nil || n != 300 {
		t.Fatalf("weight of a summary record: %d (%v)", n, err)
	}
}

// TestWALStaysBoundedUnderSteadyWrites writes batches back to back, as
// the audit writer does during a flood, and measures the write-ahead log
// after every commit. SQLite's PASSIVE checkpoints never complete while
// writes go on, so the log used to grow with everything written (issue 13:
// 1.25 GB in 15 s); ingest now truncates it whenever it passes WALLimit.
func TestWALStaysBoundedUnderSteadyWrites(t *testing.T) {
	const walLimit = 1 << 20
	db := openTest(t, SQLiteOptions{WALLimit: walLimit})
	entries := fixtures(10000)
	var largest, written int64
	for chunk := range chunks(entries, 250) {
		if err := db.Insert(context.Background(), chunk...); err != nil {
			t.Fatal(err)
		}
		largest = max(largest, db.walSize())
	}
	written = fileSize(t, db.path) + db.walSize()
	t.Logf("10,000 records in 40 back-to-back transactions: largest WAL %d bytes (limit %d), database %d bytes", largest, walLimit, written)
	// One transaction past the limit at most: 250 records are far less
	// than another limit's worth.
	if largest > 2*walLimit {
		t.Fatalf("WAL grew to %d bytes, more than twice its limit of %d", largest, walLimit)
	}
}

func chunks(entries []*audit.Entry, n int) func(func([]*audit.Entry) bool) {
	return func(yield func([]*audit.Entry) bool) {
		for i := 0; i < len(entries); i += n {
			if !yield(entries[i:min(i+n, len(entries))]) {
				return
			}
		}
	}
}

// TestMaxBytesCountsTheWAL: retention keeps the database and its
// write-ahead log together within MaxBytes (store.max_size used to count
// the database file only, issue 18).
func TestMaxBytesCountsTheWAL(t *testing.T) {
	const limit = 2 << 20
	db := openTest(t, SQLiteOptions{MaxBytes: limit, ManualRetention: true, WALLimit: 64 << 20})
	// A WAL limit above MaxBytes keeps ingest from truncating the log, as
	// if readers had pinned it: retention must count it and truncate it.
	insertAll(t, db, fixtures(6000))
	before, wal := db.diskBytes(), db.walSize()
	if wal < limit/2 {
		t.Fatalf("the test needs a large WAL, got %d bytes", wal)
	}
	if _, err := db.EnforceRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := db.diskBytes()
	t.Logf("database and WAL: %d bytes (WAL %d) before retention, %d after; max_size %d", before, wal, after, limit)
	if after > limit {
		t.Fatalf("database and WAL take %d bytes after retention, max_size %d", after, limit)
	}
}

// floodRecord is what the gateway records for one blocked request of a
// flood: a WAF block with CRS rules and headers, or a rate-limit refusal.
func floodRecord(kind string, i int, at time.Time) *audit.Entry {
	e := &audit.Entry{
		ID: fmt.Sprintf("%s-%07d", kind, i), Time: at, ClientIP: "203.0.113.9", ClientPort: 40000 + i%20000,
		Host: "shop.example", Method: "GET", Protocol: "HTTP/1.1", Site: "shop", Route: "/",
		Headers: map[string][]string{"User-Agent": {"sqlmap/1.8"}, "Accept": {"*/*"}, "Host": {"shop.example"}},
	}
	switch kind {
	case "waf":
		e.URI = fmt.Sprintf("/search?q=1%%27%%20OR%%20%%271%%27=%%271&n=%d", i)
		e.Status, e.Action, e.Stage, e.Reason, e.InboundScore = http.StatusForbidden, audit.ActionBlocked, audit.StageWAF, "request denied by rule 949110", 10
		e.Rules = []audit.MatchedRule{
			{ID: 942100, Message: "SQL Injection Attack Detected via libinjection", Data: "Matched Data: s&sos found within ARGS:q: 1' OR '1'='1", MatchedVariable: "ARGS:q", MatchedData: "1' OR '1'='1", Severity: "critical", Tags: []string{"attack-sqli", "paranoia-level/1", "OWASP_CRS"}, ParanoiaLevel: 1, Phase: 2},
			{ID: 949110, Message: "Inbound Anomaly Score Exceeded (Total Score: 10)", Severity: "emergency", Tags: []string{"anomaly-evaluation"}, Phase: 2},
		}
	default:
		e.URI = fmt.Sprintf("/api/items?page=%d", i)
		e.Status, e.Action, e.Stage, e.Reason = http.StatusTooManyRequests, audit.ActionBlocked, audit.StageRateLimit, "rate limit api (10/s, burst 20) exceeded"
	}
	return e
}

// flood sends rate requests a second for seconds simulated seconds
// through a writer with the file and store sinks in dir, and returns the
// writer's stats after closing, the bytes of the JSONL file and of the
// database with its WAL, and the store's request total.
func flood(t *testing.T, dir, kind string, rate, seconds int, agg audit.AggregateOptions) (audit.Stats, int64, int64, int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	jsonl := filepath.Join(dir, "audit.jsonl")
	file, err := audit.OpenFileSink(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenSQLite(filepath.Join(dir, "audit.db"), SQLiteOptions{MaxBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := db.Sink()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clockNow := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w := audit.New(audit.Options{Log: slog.New(slog.DiscardHandler), Aggregate: agg, Now: clockNow}, file, sink)
	step := time.Second / time.Duration(rate)
	for i := range rate * seconds {
		mu.Lock()
		now = now.Add(step)
		mu.Unlock()
		for !w.Submit(floodRecord(kind, i, clockNow())) {
			w.Sync() // without aggregation the queue fills: wait for it, as a test may
		}
		if i%rate == rate-1 {
			w.Sync() // once a simulated second: windows end on time
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	total := count(t, db, query.Filter{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	sizes, _ := testfs.Usage(t, dir)
	return w.Stats(), sizes["audit.jsonl"], sizes["audit.db"] + sizes["audit.db-wal"], total
}

// TestFloodKeepsAuditBytesBounded floods the writer with blocked requests
// from one client, on a 32 MiB file system of its own: WAF blocks (issue
// 13) and rate-limit refusals (issue 18), at 10, 100 and 1,000 requests a
// second for three simulated minutes. With aggregation on (the defaults)
// the records, and so the bytes, do not depend on the rate: each
// one-minute window keeps 10 records in full and one summary record that
// counts the rest, in the JSONL file and in the store, whose totals still
// count every request. It prints the measured sizes, and what the same
// flood costs without aggregation.
func TestFloodKeepsAuditBytesBounded(t *testing.T) {
	root := testfs.Small(t, 32<<20)
	defaults := audit.AggregateOptions{Samples: 10, Window: time.Minute, MaxKeys: 10000}
	const seconds = 180
	windows := 3 // [0s, 61s), [61s, 122s), [122s, 180s]: a window ends at the first sweep after a minute
	for _, kind := range []string{"waf", "ratelimit"} {
		t.Run(kind, func(t *testing.T) {
			var fileBytes []int64
			for _, rate := range []int{10, 100, 1000} {
				dir := filepath.Join(root, fmt.Sprintf("%s-%d", kind, rate))
				st, file, store, total := flood(t, dir, kind, rate, seconds, defaults)
				requests := rate * seconds
				t.Logf("%s flood at %d/s for %ds (%d requests): %d records (%d summaries, %d aggregated); JSONL %d bytes; database+WAL %d bytes",
					kind, rate, seconds, requests, st.Sinks[0].Written, st.Summaries, st.Aggregated, file, store)
				if want := uint64(windows * (defaults.Samples + 1)); st.Sinks[0].Written != want || st.Sinks[1].Written != want {
					t.Errorf("%d/s: %d records in the file, %d in the store; want %d (%d windows of %d samples and a summary)",
						rate, st.Sinks[0].Written, st.Sinks[1].Written, want, windows, defaults.Samples)
				}
				if st.Written != uint64(requests) || st.Dropped() != 0 || total != requests {
					t.Errorf("%d/s: %d requests accounted as written, %d dropped, store total %d; want all %d", rate, st.Written, st.Dropped(), total, requests)
				}
				fileBytes = append(fileBytes, file)
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			}
			// The same records at every rate: only the digits of the
			// counts differ.
			if fileBytes[2] > fileBytes[0]+fileBytes[0]/20 {
				t.Errorf("JSONL bytes grow with the rate: %v at 10, 100, 1000/s", fileBytes)
			}
			// Without aggregation: one second of the flood, extrapolated.
			dir := filepath.Join(root, kind+"-off")
			st, file, store, _ := flood(t, dir, kind, 1000, 1, audit.AggregateOptions{})
			t.Logf("%s flood without aggregation: 1,000 records take JSONL %d bytes and database+WAL %d bytes; three minutes at 1,000/s would take about %d MB of JSONL",
				kind, file, store, file*seconds/1e6)
			if st.Sinks[0].Written != 1000 || file*seconds < 100*fileBytes[2] {
				t.Errorf("without aggregation: %d records, %d bytes", st.Sinks[0].Written, file)
			}
			_ = os.RemoveAll(dir)
		})
	}
}
