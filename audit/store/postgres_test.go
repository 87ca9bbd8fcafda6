package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/internal/pgtest"
	"github.com/portcullis-waf/portcullis/internal/tcpcut"
)

// openPG opens a store in a fresh schema of the test database (dropped
// when the test ends), at addr (the shared server or a proxy before it).
func openPG(t *testing.T, schema, addr string, opts PostgresOptions) *Postgres {
	t.Helper()
	opts.ConnString = pgtest.ConnString(addr)
	opts.Schema = schema
	if opts.Instance == "" {
		opts.Instance = "test-1"
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return clock }
	}
	opts.ManualRetention = true
	p, err := OpenPostgres(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func insertPG(t *testing.T, p *Postgres, entries []*audit.Entry) {
	t.Helper()
	for chunk := range slices.Chunk(entries, 700) {
		if _, err := p.Insert(context.Background(), chunk...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPostgresSearchMatchesFilter(t *testing.T) {
	entries := fixtures(2000)
	p := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{})
	insertPG(t, p, entries)
	for _, q := range filterCases {
		t.Run(q, func(t *testing.T) {
			f := parse(t, q)
			want := expected(entries, f)
			if got := searchAll(t, p, f, 1499); !slices.Equal(got, want) {
				t.Errorf("%d records, want %d (first got %v, want %v)", len(got), len(want), head(got), head(want))
			}
		})
	}
}

func TestPostgresSummaryMatchesFiles(t *testing.T) {
	entries := fixtures(3000)
	p := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{})
	insertPG(t, p, entries)
	files := writeJSONL(t, entries)
	cases := append(slices.Clone(summaryCases), []struct {
		query string
		opts  SummaryOptions
	}{
		// Whole hours, ranked in the server: small top lists cut through
		// ties, in finish's order.
		{"since=2026-11-24T00:00:00Z&until=2026-11-27T00:00:00Z", SummaryOptions{Top: 2}},
		{"since=2026-11-24T05:00:00Z&until=2026-11-26T07:00:00Z&action=blocked", SummaryOptions{Top: 18}},
		{"since=2026-11-23T23:00:00Z&until=2026-11-24T02:00:00Z&not_action=allowed", SummaryOptions{Top: 1}},
	}...)
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			f := parse(t, tc.query)
			want, err := files.Summary(context.Background(), f, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Summary(context.Background(), f, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("postgres summary differs from the files' one:\n got %+v\nwant %+v", brief(got), brief(want))
			}
		})
	}
}

// Every record names the instance that wrote it, in the record and in
// searches over the records of several instances.
func TestPostgresGetAndInstances(t *testing.T) {
	entries := fixtures(100)
	schema := pgtest.Schema(t)
	a := openPG(t, schema, pgtest.Addr, PostgresOptions{Instance: "edge-a"})
	b := openPG(t, schema, pgtest.Addr, PostgresOptions{Instance: "edge-b"})
	insertPG(t, a, entries[:50])
	insertPG(t, b, entries[50:])
	for i, want := range []string{"edge-a", "edge-b"} {
		e, err := b.Get(context.Background(), entries[42+i*10].ID)
		if err != nil {
			t.Fatal(err)
		}
		c := *entries[42+i*10]
		c.Instance = want
		if !sameJSON(t, e, &c) {
			t.Fatalf("got %+v\nwant %+v", e, &c)
		}
	}
	if got := searchAll(t, a, query.Filter{}, 30); !slices.Equal(got, expected(entries, query.Filter{})) {
		t.Errorf("one search over both instances: %d records, want %d", len(got), len(entries))
	}
	if _, err := a.Get(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v, want ErrNotFound", err)
	}
	// A prefix: unique, ambiguous, unknown.
	e, err := a.Get(context.Background(), entries[7].ID[:12])
	if err != nil || e.ID != entries[7].ID {
		t.Fatalf("prefix: %v %v", e, err)
	}
	dup := *entries[7]
	dup.ID = entries[7].ID[:12] + "ffffffffffffffffffff"
	dup.Time = dup.Time.Add(time.Second)
	insertPG(t, a, []*audit.Entry{&dup})
	var amb *AmbiguousIDError
	if _, err := a.Get(context.Background(), entries[7].ID[:12]); !errors.As(err, &amb) || len(amb.Candidates) != 2 {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	if _, err := a.Get(context.Background(), "0123456789"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown prefix: %v", err)
	}
}

// A batch written twice (a redelivery after a lost answer) adds nothing:
// neither records nor counts.
func TestPostgresInsertIsIdempotent(t *testing.T) {
	entries := fixtures(500)
	p := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{})
	insertPG(t, p, entries)
	before, err := p.Summary(context.Background(), query.Filter{}, SummaryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.Insert(context.Background(), entries[100:300]...)
	if err != nil || n != 0 {
		t.Fatalf("redelivery inserted %d (%v), want 0", n, err)
	}
	after, err := p.Summary(context.Background(), query.Filter{}, SummaryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) || after.Total != len(entries) {
		t.Fatalf("summary changed by a redelivery: %s → %s", before.Composition(), after.Composition())
	}
	if got := searchAll(t, p, query.Filter{}, 1000); len(got) != len(entries) {
		t.Fatalf("%d records after a redelivery, want %d", len(got), len(entries))
	}
}

// Batches that are partly stored already (a redelivery overlapping new
// records, a record twice in one batch) fail the fast path's COPY and go
// through the merge: only the new records are stored and counted, in
// batch order, and the result is what a clean load of the same records
// gives.
func TestPostgresInsertOverlappingBatches(t *testing.T) {
	entries := fixtures(600)
	tests := []struct {
		name    string
		batches [][]*audit.Entry
		want    []int // new records reported per batch
	}{
		{"clean", [][]*audit.Entry{entries[:300], entries[300:]}, []int{300, 300}},
		{"overlap", [][]*audit.Entry{entries[:300], entries[200:]}, []int{300, 300}},
		{"redelivered then new", [][]*audit.Entry{entries[:300], entries[:300], entries[300:]}, []int{300, 0, 300}},
		{"duplicate inside a batch", [][]*audit.Entry{append(slices.Clone(entries[:300]), entries[10]), entries[300:]}, []int{300, 300}},
	}
	var want *Summary
	var wantIDs []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{})
			for i, b := range tc.batches {
				n, err := p.Insert(context.Background(), b...)
				if err != nil || n != tc.want[i] {
					t.Fatalf("batch %d: inserted %d (%v), want %d", i, n, err, tc.want[i])
				}
			}
			sum, err := p.Summary(context.Background(), query.Filter{}, SummaryOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ids := searchAll(t, p, query.Filter{}, 1000)
			rows, err := p.pool.Query(context.Background(), "SELECT id FROM records ORDER BY seq")
			if err != nil {
				t.Fatal(err)
			}
			order, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range entries {
				if order[i] != e.ID {
					t.Fatalf("insertion order: record %d is %s, want %s", i, order[i], e.ID)
				}
			}
			if want == nil {
				want, wantIDs = sum, ids
				return
			}
			if !reflect.DeepEqual(sum, want) || !slices.Equal(ids, wantIDs) {
				t.Fatalf("summary %s, %d records; a clean load gives %s, %d", sum.Composition(), len(ids), want.Composition(), len(wantIDs))
			}
		})
	}
}

// Instances starting together migrate the schema once, under the lock.
func TestPostgresMigratesOnce(t *testing.T) {
	schema := pgtest.Schema(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		p := openPG(t, schema, pgtest.Addr, PostgresOptions{Instance: fmt.Sprint("i", i)})
		wg.Go(func() { errs[i] = p.EnsureSchema(context.Background()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p := openPG(t, schema, pgtest.Addr, PostgresOptions{})
	var rows, version int
	if err := p.pool.QueryRow(context.Background(), "SELECT COUNT(*), MAX(version) FROM schema_migrations").Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != pgSchemaVersion || version != pgSchemaVersion {
		t.Fatalf("schema_migrations: %d rows, version %d; want one row per version up to %d", rows, version, pgSchemaVersion)
	}
	// Version 2 leaves room in the rollups' pages for in-place updates.
	for _, table := range []string{"tops", "counts_minute"} {
		var opts []string
		if err := p.pool.QueryRow(context.Background(), "SELECT COALESCE(reloptions, '{}') FROM pg_class WHERE oid = $1::regclass", table).Scan(&opts); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(opts, "fillfactor=70") {
			t.Errorf("%s options %v, want fillfactor=70", table, opts)
		}
	}
	// A reader of a schema no instance has created says so.
	r := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{ReadOnly: true})
	if _, err := r.Search(context.Background(), query.Filter{}, Page{}); err == nil {
		t.Fatal("read-only store on an empty schema: no error")
	}
}

// Version 3 (partial action index) migrates a version 2 schema holding
// records: afterwards the index is partial and every search and summary
// answers as on a schema created at version 3.
func TestPostgresMigrationFromVersion2(t *testing.T) {
	ctx := context.Background()
	entries := fixtures(800)
	old := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{})
	if err := old.migrateTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	old.migrated.Store(true) // write at version 2, as a version 2 binary did
	insertPG(t, old, entries)
	old.migrated.Store(false)
	if err := old.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	var version int
	if err := old.pool.QueryRow(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&version); err != nil || version != pgSchemaVersion {
		t.Fatalf("version %d (%v) after migrating, want %d", version, err, pgSchemaVersion)
	}
	var def string
	if err := old.pool.QueryRow(ctx, "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'records_action'").Scan(&def); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(def, "WHERE (action <> 'allowed'::text)") {
		t.Fatalf("records_action after migrating: %s", def)
	}
	fresh := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{})
	insertPG(t, fresh, entries)
	for _, f := range []query.Filter{{}, {Actions: []string{audit.ActionBlocked}}, {Actions: []string{audit.ActionAllowed}}, {NotActions: []string{audit.ActionAllowed}}} {
		if got, want := searchAll(t, old, f, 300), searchAll(t, fresh, f, 300); !slices.Equal(got, want) {
			t.Errorf("%+v: %d records after migrating, %d on a fresh schema", f, len(got), len(want))
		}
		got, err := old.Summary(ctx, f, SummaryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := fresh.Summary(ctx, f, SummaryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: summary %s after migrating, %s on a fresh schema", f, got.Composition(), want.Composition())
		}
	}
}

// The partial action index serves the filters that exclude "allowed" even
// in a generic plan (the plan a prepared statement settles on, which does
// not see its parameters): pgWhere's literal makes its predicate provable.
func TestPostgresActionFilterUsesPartialIndex(t *testing.T) {
	ctx := context.Background()
	p := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{})
	insertPG(t, p, fixtures(300))
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tests := []struct {
		actions []string
		partial bool
	}{
		{[]string{audit.ActionBlocked}, true},
		{[]string{audit.ActionBlocked, audit.ActionDetected}, true},
		{[]string{audit.ActionAllowed}, false},
	}
	// Other access paths made expensive, so that the plan shows whether
	// the partial index is usable at all, whatever the table's size.
	for _, set := range []string{"SET enable_seqscan = off", "SET enable_bitmapscan = off", "SET plan_cache_mode = force_generic_plan"} {
		if _, err := conn.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range tests {
		cond, args := pgWhere(query.Filter{Actions: tc.actions}, 1)
		name := fmt.Sprintf("action_plan_%d", i)
		if _, err := conn.Exec(ctx, "PREPARE "+name+" AS SELECT r.seq FROM records r WHERE "+cond); err != nil {
			t.Fatal(err)
		}
		var lits []string
		for _, a := range args {
			lits = append(lits, "'"+a.(string)+"'")
		}
		rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+name+"("+strings.Join(lits, ", ")+")")
		if err != nil {
			t.Fatal(err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(plan, "\n")
		if got := strings.Contains(text, "action_t_idx"); got != tc.partial {
			t.Errorf("actions %v: partial action index used %v, want %v; plan:\n%s", tc.actions, got, tc.partial, text)
		}
	}
}

// Retention drops whole days: what is left equals the records of the days
// kept, in searches and summaries alike.
func TestPostgresRetentionDropsPartitions(t *testing.T) {
	entries := fixtures(3000)
	p := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{MaxAge: 48 * time.Hour})
	insertPG(t, p, entries)
	dropped, err := p.Maintain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// clock is 2026-11-27 04:17: days ending before 11-25 04:17 go.
	if want := []string{"records_p20261123", "records_p20261124"}; !slices.Equal(dropped, want) {
		t.Fatalf("dropped %v, want %v", dropped, want)
	}
	cut := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	var kept []*audit.Entry
	for _, e := range entries {
		if !e.Time.Before(cut) {
			kept = append(kept, e)
		}
	}
	if got := searchAll(t, p, query.Filter{}, 1000); !slices.Equal(got, expected(kept, query.Filter{})) {
		t.Fatalf("%d records after retention, want %d", len(got), len(kept))
	}
	files := writeJSONL(t, kept)
	f := parse(t, "since=2026-11-25T00:00:00Z&until=2026-11-27T00:00:00Z")
	want, _ := files.Summary(context.Background(), f, SummaryOptions{})
	got, err := p.Summary(context.Background(), f, SummaryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("summary after retention:\n got %+v\nwant %+v", brief(got), brief(want))
	}
	// The partitions of today and the next days exist ahead of ingest.
	var n int
	if err := p.pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'records'::regclass AND c.relname IN ('records_p20261127', 'records_p20261128', 'records_p20261129')`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("partitions ahead: %d (%v), want 3", n, err)
	}
}

func TestFollowPostgres(t *testing.T) {
	entries := fixtures(300)
	p := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{})
	insertPG(t, p, entries[:200])
	f := parse(t, "not_action=allowed")
	c, stop := follow(t, p, f, 3)
	old := ids(entries[:200], f)
	want := append(old[len(old)-3:], ids(entries[200:], f)...)
	c.waitFor(t, 3)
	insertPG(t, p, entries[200:250])
	insertPG(t, p, entries[250:])
	got := c.waitFor(t, len(want))
	stop()
	if !equalStrings(got, want) {
		t.Fatalf("followed %v\nwant %v", got, want)
	}
}

// writeBatches sends entries through the sink in batches of size, as the
// audit writer does.
func writeBatches(t *testing.T, k *PostgresSink, entries []*audit.Entry, size int) {
	t.Helper()
	for chunk := range slices.Chunk(entries, size) {
		for _, e := range chunk {
			if err := k.Write(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := k.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PostgreSQL unreachable mid-stream: batches go to the spool, the sink
// reports degraded, and when it returns every record arrives once, in
// order; a restart delivers what an earlier run left in the spool.
func TestPostgresSinkSpoolsThroughAnOutage(t *testing.T) {
	entries := fixtures(1200)
	schema := pgtest.Schema(t)
	proxy := tcpcut.Start(t, pgtest.Addr)
	p := openPG(t, schema, proxy.Addr, PostgresOptions{Timeout: 2 * time.Second, Dial: time.Second})
	dir := filepath.Join(t.TempDir(), "spool")
	k, err := p.Sink(SpoolOptions{Dir: dir, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	writeBatches(t, k, entries[:300], 100)
	if st := k.Stats(); st.Delivered != 300 || st.Spooled != 0 {
		t.Fatalf("before the outage: %+v", st)
	}
	proxy.Cut()
	writeBatches(t, k, entries[300:700], 100)
	st := k.Stats()
	if st.Spooled != 400 || st.Batches != 4 || !st.Down {
		t.Fatalf("during the outage: %+v, want 400 records in 4 batches spooled", st)
	}
	if down, why := k.Degraded(); !down || why == "" {
		t.Fatal("not degraded during the outage")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Fatalf("%d spool files, want 4", len(ents))
	}
	if info, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%020d.batch", 0))); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("spool file: %v %v, want mode 0600", info, err)
	}
	// Close while down: the spool stays on disk for the next run.
	writeBatches(t, k, entries[700:800], 100)
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	proxy.Restore()
	k2, err := p.Sink(SpoolOptions{Dir: dir, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close()
	writeBatches(t, k2, entries[800:], 100) // behind the backlog
	waitUntil(t, "spool delivered", func() bool { down, _ := k2.Degraded(); return !down })
	if st := k2.Stats(); st.Batches != 0 || st.Delivered != 900 || st.Dropped != 0 {
		t.Fatalf("after the outage: %+v, want the 500 spooled and 400 new records delivered", st)
	}
	// Every record once, in flush order (seq order).
	rows, err := p.pool.Query(context.Background(), "SELECT id FROM records ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	var want []string
	for _, e := range entries {
		want = append(want, e.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%d records delivered, want %d in order", len(got), len(want))
	}
}

// A full spool refuses batches: counted, reported, never silent.
func TestPostgresSinkSpoolBound(t *testing.T) {
	entries := fixtures(300)
	proxy := tcpcut.Start(t, pgtest.Addr)
	p := openPG(t, pgtest.Schema(t), proxy.Addr, PostgresOptions{Timeout: time.Second, Dial: 500 * time.Millisecond})
	proxy.Cut()
	k, err := p.Sink(SpoolOptions{Dir: t.TempDir(), MaxBytes: 40 << 10, Retry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	var refused int
	for chunk := range slices.Chunk(entries, 20) {
		for _, e := range chunk {
			_ = k.Write(e)
		}
		if err := k.Flush(); err != nil {
			refused += len(chunk)
		}
	}
	st := k.Stats()
	if refused == 0 || uint64(refused) != st.Dropped || st.Spooled+st.Dropped != 300 || st.Bytes > 40<<10 {
		t.Fatalf("refused %d, stats %+v: want some refused, counted, and the spool within its bound", refused, st)
	}
	if k.Probe() == nil {
		t.Fatal("probe of a full spool succeeds")
	}
}

// TestPostgresUpgradeOutlivesShortWrites: an upgrade that takes longer than
// the writes that trigger it (schema version 3 rebuilds the action index
// over every partition; the sink gives each write postgres.timeout) still
// completes. Each write fails (and would be spooled), and the upgrade goes
// on without them; before, each write's deadline rolled it back and the
// next write started it again.
func TestPostgresUpgradeOutlivesShortWrites(t *testing.T) {
	ctx := context.Background()
	p := openPG(t, pgtest.Schema(t), pgtest.Addr, PostgresOptions{})
	if err := p.migrateTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// A version 2 store holding 300,000 records in one partition.
	day := time.Now().Unix() / 86400
	if _, err := p.pool.Exec(ctx, fmt.Sprintf("CREATE TABLE records_upgrade PARTITION OF records FOR VALUES FROM (%d) TO (%d)",
		day*dayNanos, (day+1)*dayNanos)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.pool.Exec(ctx, `INSERT INTO records (id, t, instance, ip, host, path, action, stage, status, country, n, rules, tags, json)
		SELECT md5(g::text), $1::bigint + g, 'i', '\x04c0a80001'::bytea, 'h', '/p',
			CASE WHEN g % 13 = 0 THEN 'blocked' ELSE 'allowed' END, 'request', 200, 'DE', 1, '{}', '{}', '\x7b7d'::bytea
		FROM generate_series(1, 300000) g`, day*dayNanos); err != nil {
		t.Fatal(err)
	}
	// The writes are given a fifth of what building the index takes here.
	start := time.Now()
	if _, err := p.pool.Exec(ctx, `CREATE INDEX probe ON records (action, t) WHERE action <> 'allowed'`); err != nil {
		t.Fatal(err)
	}
	budget := max(time.Since(start)/5, time.Millisecond)
	if _, err := p.pool.Exec(ctx, `DROP INDEX probe`); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for range 3 {
		wctx, cancel := context.WithTimeout(ctx, budget)
		if _, err := p.Insert(wctx, fixtures(5)...); err != nil {
			failed++
		}
		cancel()
	}
	t.Logf("%d of 3 writes given %v failed while the schema was upgraded", failed, budget)
	// No caller with a longer deadline comes: the upgrade must finish on
	// its own.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var v int
		if err := p.pool.QueryRow(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v == pgSchemaVersion {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("schema still at version %d: the upgrade did not outlive the writes that started it", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := p.Insert(ctx, fixtures(5)...); err != nil {
		t.Fatalf("write after the upgrade: %v", err)
	}
}
