package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/audit/store/storetest"
)

// start and span place the fixture records: three days and a bit, so that
// summaries cross hour and day boundaries of the rollups.
var (
	start = time.Date(2026, 11, 23, 22, 17, 3, 0, time.UTC)
	span  = 3*24*time.Hour + 5*time.Hour
	clock = start.Add(span + time.Hour)
)

func fixtures(n int) []*audit.Entry {
	n = max(n, 20)
	g := storetest.NewGenerator(42, start, span, n)
	out := make([]*audit.Entry, n)
	for i := range out {
		out[i] = g.Next()
	}
	// Records the generator does not make: odd client addresses, hosts
	// with ports, absolute-form targets, no rules with tags.
	out[10].ClientIP, out[11].ClientIP, out[12].ClientIP = "", "::ffff:198.51.100.7", "not-an-ip"
	out[13].Host, out[14].URI = "Shop.Example:8443", "http://shop.example/absolute?x=1"
	out[15].Rules = append(out[15].Rules, audit.MatchedRule{ID: 100001, Message: "custom"})
	out[16].Country = "de"
	// A request target that is not UTF-8 (net/http accepts it); one such
	// record once failed a whole PostgreSQL batch.
	out[17].URI = "/caf\xe9/menu?q=\xff"
	return out
}

func openTest(t *testing.T, opts SQLiteOptions) *SQLite {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return clock }
	}
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "audit.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func insertAll(t *testing.T, s *SQLite, entries []*audit.Entry) {
	t.Helper()
	for chunk := range slices.Chunk(entries, 700) {
		if err := s.Insert(context.Background(), chunk...); err != nil {
			t.Fatal(err)
		}
	}
}

// writeJSONL writes entries as an audit file and opens a Files store on it.
func writeJSONL(t *testing.T, entries []*audit.Entry) *Files {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var buf bytes.Buffer
	sink := audit.NewWriterSink(&buf)
	for _, e := range entries {
		if err := sink.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	fs, err := OpenFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	fs.now = func() time.Time { return clock }
	return fs
}

// filterCases are URL-form filters; clock is "now".
var filterCases = []string{
	"",
	"action=blocked",
	"action=blocked,detected",
	"not_action=allowed",
	"since=1d",
	"since=30h&until=2h",
	"since=2026-11-24T10:30:00Z&until=2026-11-25T03:10:00Z&action=blocked",
	"ip=0.0.0.0/0",
	"ip=::/0",
	"not_ip=0.0.0.0/0",
	"ip=198.51.100.7",
	"ip=64.0.0.0/2,2001::/16",
	"host=shop.example",
	"not_host=shop.example,api.example",
	"path=/api/",
	"path=/.env&path=/wp-",
	"not_path=/static",
	"path=/absolute",
	"rule=942100",
	"rule=941100,930120",
	"not_rule=949110&action=blocked",
	"tag=attack-sqli",
	"tag=attack-xss,attack-rce&not_tag=paranoia-level/2",
	"rule=100001",
	"stage=ratelimit,ban",
	"not_stage=waf&action=blocked",
	"status=403",
	"not_status=200,304",
	"country=CN",
	"country=DE",
	"not_country=US,DE",
	"action=blocked&country=CN",
	"rule=942100&since=2d",
	"host=api.example&not_action=allowed&since=36h",
	"since=90m",
	"until=1970-01-02",
}

func parse(t *testing.T, q string) query.Filter {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	f, err := query.Parse(v, clock)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return f
}

// expected is the oracle: the entries f.Match selects, newest first (ties
// by insertion order, later first).
func expected(entries []*audit.Entry, f query.Filter) []string {
	idx := make([]int, 0, len(entries))
	for i, e := range entries {
		if f.Match(e) {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(entries[b].Time.Compare(entries[a].Time), cmp.Compare(b, a))
	})
	ids := make([]string, len(idx))
	for i, j := range idx {
		ids[i] = entries[j].ID
	}
	return ids
}

// searchAll pages through a search and returns the ids in order.
func searchAll(t *testing.T, s Store, f query.Filter, limit int) []string {
	t.Helper()
	var ids []string
	page := Page{Limit: limit}
	for range 10000 {
		res, err := s.Search(context.Background(), f, page)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Entries) > limit {
			t.Fatalf("page of %d entries, limit %d", len(res.Entries), limit)
		}
		for _, e := range res.Entries {
			ids = append(ids, e.ID)
		}
		if res.Next == "" {
			return ids
		}
		if len(res.Entries) != limit {
			t.Fatalf("short page (%d) with a next cursor", len(res.Entries))
		}
		page.After = res.Next
	}
	t.Fatal("pagination does not end")
	return nil
}

func TestSearchMatchesFilter(t *testing.T) {
	entries := fixtures(2000)
	db := openTest(t, SQLiteOptions{})
	insertAll(t, db, entries)
	files := writeJSONL(t, entries)
	for _, q := range filterCases {
		t.Run(q, func(t *testing.T) {
			f := parse(t, q)
			want := expected(entries, f)
			for name, s := range map[string]Store{"sqlite": db, "files": files} {
				got := searchAll(t, s, f, 1499)
				if !slices.Equal(got, want) {
					t.Errorf("%s: %d records, want %d (first got %v, want %v)", name, len(got), len(want), head(got), head(want))
				}
			}
		})
	}
}

func head(s []string) []string { return s[:min(3, len(s))] }

func TestSearchReturnsWholeRecords(t *testing.T) {
	entries := fixtures(50)
	db := openTest(t, SQLiteOptions{})
	insertAll(t, db, entries)
	res, err := db.Search(context.Background(), query.Filter{}, Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || res.Next == "" {
		t.Fatalf("got %d entries, next %q", len(res.Entries), res.Next)
	}
	last := entries[len(entries)-1]
	if !sameJSON(t, res.Entries[0], last) {
		t.Fatalf("record changed in the database:\n got %+v\nwant %+v", res.Entries[0], last)
	}
}

func sameJSON(t *testing.T, a, b *audit.Entry) bool {
	t.Helper()
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return bytes.Equal(x, y)
}

func TestGet(t *testing.T) {
	entries := fixtures(100)
	db := openTest(t, SQLiteOptions{})
	insertAll(t, db, entries)
	files := writeJSONL(t, entries)
	for name, s := range map[string]Store{"sqlite": db, "files": files} {
		t.Run(name, func(t *testing.T) {
			e, err := s.Get(context.Background(), entries[42].ID)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, e, entries[42]) {
				t.Fatalf("got %+v", e)
			}
			_, err = s.Get(context.Background(), "nope")
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown id: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestBadCursor(t *testing.T) {
	db := openTest(t, SQLiteOptions{})
	files := writeJSONL(t, fixtures(20))
	for name, s := range map[string]Store{"sqlite": db, "files": files} {
		for _, c := range []string{"x", "1.", "1.2.3.4", "' OR 1=1 --"} {
			if _, err := s.Search(context.Background(), query.Filter{}, Page{After: c}); err == nil {
				t.Errorf("%s: cursor %q accepted", name, c)
			}
		}
	}
}

var summaryCases = []struct {
	query string
	opts  SummaryOptions
}{
	{"", SummaryOptions{}},
	{"since=1d", SummaryOptions{}},
	{"since=2d&until=3h&action=blocked", SummaryOptions{Top: 5}},
	{"since=2026-11-24T00:00:00Z&until=2026-11-26T00:00:00Z", SummaryOptions{Bucket: time.Hour}},
	{"since=2026-11-24T00:00:00Z&until=2026-11-24T00:40:00Z", SummaryOptions{}}, // under an hour: raw
	{"not_action=allowed&since=50h", SummaryOptions{Bucket: 7 * time.Minute}},
	{"since=5h", SummaryOptions{Bucket: time.Second}},                                                   // widened
	{"since=2026-11-24T03:10:00Z&until=2026-11-26T20:50:00Z", SummaryOptions{Bucket: time.Hour}},        // days minus hours
	{"since=2026-11-24T20:10:00Z&until=2026-11-25T05:50:00Z&action=detected", SummaryOptions{}},         // hours
	{"since=2026-11-23T22:30:00Z&until=2026-11-27T06:00:00Z", SummaryOptions{Bucket: 30 * time.Minute}}, // beyond the records
	{"country=CN", SummaryOptions{}},
	{"rule=942100&since=2d", SummaryOptions{Top: 3}},
	{"host=api.example&not_country=US", SummaryOptions{Bucket: 6 * time.Hour}},
}

func TestSummaryMatchesFiles(t *testing.T) {
	entries := fixtures(3000)
	db := openTest(t, SQLiteOptions{})
	insertAll(t, db, entries)
	files := writeJSONL(t, entries)
	for _, tc := range summaryCases {
		t.Run(tc.query, func(t *testing.T) {
			compareSummaries(t, db, files, parse(t, tc.query), tc.opts)
		})
	}
}

func compareSummaries(t *testing.T, db *SQLite, files *Files, f query.Filter, opts SummaryOptions) *Summary {
	t.Helper()
	want, err := files.Summary(context.Background(), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Summary(context.Background(), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sqlite summary differs from the files' one:\n got %+v\nwant %+v", brief(got), brief(want))
	}
	return got
}

func brief(s *Summary) Summary {
	b := *s
	if len(b.Series) > 4 {
		b.Series = b.Series[:4]
	}
	return b
}

func TestTopSegments(t *testing.T) {
	h := func(s string) int64 { return parseTime(t, s) }
	cases := []struct {
		from, to string
		want     []segment
	}{
		{"2026-11-24T00:00:00Z", "2026-11-27T00:00:00Z", []segment{{levelDay, h("2026-11-24T00:00:00Z"), h("2026-11-27T00:00:00Z"), 1}}},
		{"2026-11-24T03:00:00Z", "2026-11-24T09:00:00Z", []segment{{levelHour, h("2026-11-24T03:00:00Z"), h("2026-11-24T09:00:00Z"), 1}}},
		{"2026-11-24T03:00:00Z", "2026-11-25T20:00:00Z", []segment{
			{levelDay, h("2026-11-24T00:00:00Z"), h("2026-11-25T00:00:00Z"), 1},
			{levelHour, h("2026-11-24T00:00:00Z"), h("2026-11-24T03:00:00Z"), -1},
			{levelDay, h("2026-11-25T00:00:00Z"), h("2026-11-26T00:00:00Z"), 1},
			{levelHour, h("2026-11-25T20:00:00Z"), h("2026-11-26T00:00:00Z"), -1},
		}},
		{"2026-11-24T20:00:00Z", "2026-11-26T05:00:00Z", []segment{
			{levelHour, h("2026-11-24T20:00:00Z"), h("2026-11-25T00:00:00Z"), 1},
			{levelDay, h("2026-11-25T00:00:00Z"), h("2026-11-26T00:00:00Z"), 1},
			{levelHour, h("2026-11-26T00:00:00Z"), h("2026-11-26T05:00:00Z"), 1},
		}},
	}
	for _, tc := range cases {
		if got := topSegments(h(tc.from), h(tc.to)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("topSegments(%s, %s)\n got %v\nwant %v", tc.from, tc.to, got, tc.want)
		}
	}
}

func parseTime(t *testing.T, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixNano()
}

func TestSummaryBasics(t *testing.T) {
	entries := fixtures(3000)
	files := writeJSONL(t, entries)
	sum, err := files.Summary(context.Background(), query.Filter{}, SummaryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	blocked, detected, errs, allowed := 0, 0, 0, 0
	for _, e := range entries {
		switch e.Action {
		case audit.ActionBlocked:
			blocked++
		case audit.ActionDetected:
			detected++
		case audit.ActionError:
			errs++
		case audit.ActionAllowed:
			allowed++
		}
	}
	if allowed == 0 {
		t.Fatal("the fixture has no allowed records")
	}
	if sum.Total != len(entries) || sum.Blocked != blocked || sum.Detected != detected || sum.Errors != errs || sum.Allowed != allowed || sum.Other != 0 {
		t.Fatalf("totals %d/%d/%d/%d/%d, want %d/%d/%d/%d/%d", sum.Total, sum.Blocked, sum.Detected, sum.Errors, sum.Allowed, len(entries), blocked, detected, errs, allowed)
	}
	// The total is stated with its parts (issue 13: allowed records were
	// in the total but in none of the parts shown).
	want := fmt.Sprintf("%d records: %d blocked, %d detected, %d errors, %d allowed", len(entries), blocked, detected, errs, allowed)
	if got := sum.Composition(); got != want {
		t.Fatalf("composition %q, want %q", got, want)
	}
	inSeries := 0
	for _, b := range sum.Series {
		inSeries += b.Blocked + b.Detected + b.Errors
	}
	if inSeries != blocked+detected+errs {
		t.Fatalf("series holds %d decided records, want %d", inSeries, blocked+detected+errs)
	}
	if n := len(sum.Series); n < 20 || n > 90 {
		t.Fatalf("%d points with an automatic bucket, want about 60", n)
	}
	if len(sum.TopRules) != 10 || sum.TopRules[0].Message == "" || len(sum.TopClients) != 10 || sum.TopCountries[0].Value == "" {
		t.Fatalf("top lists: %+v", sum)
	}
	for _, r := range sum.TopRules {
		if r.ID == 949110 || r.ID == 980170 {
			t.Fatalf("bookkeeping rule %d in the top rules", r.ID)
		}
	}
	empty := openTest(t, SQLiteOptions{})
	sum, err = empty.Summary(context.Background(), query.Filter{}, SummaryOptions{})
	if err != nil || sum.Total != 0 || len(sum.Series) != 0 {
		t.Fatalf("empty store: %+v, %v", sum, err)
	}
}

func jsonMarshal(e *audit.Entry) ([]byte, error) { return json.Marshal(e) }

// TestFilesSkipMalformedLines: a torn record in the middle (a crash, then
// more records appended) is skipped and reported; a torn last line is a
// record still being written and is skipped quietly.
func TestFilesSkipMalformedLines(t *testing.T) {
	entries := fixtures(20)
	data := append(jsonl(t, entries[:5]), `{"id":"torn","time":"2026-11-2`...)
	data = append(data, jsonl(t, entries[5:])...)
	data = append(data, `{"id":"writing`...)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := OpenFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	files.Warn = func(p string, line int, err error) {
		warnings = append(warnings, fmt.Sprintf("%s:%d", filepath.Base(p), line))
	}
	got := searchAll(t, files, query.Filter{}, 100)
	want := expected(append(append([]*audit.Entry(nil), entries[:5]...), entries[6:]...), query.Filter{})
	if !equalStrings(got, want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	if !equalStrings(warnings, []string{"audit.jsonl:6"}) {
		t.Fatalf("warnings %v", warnings)
	}
}

// TestGetByPrefix: a record id may be given by a unique prefix (issue 13),
// in both stores alike.
func TestGetByPrefix(t *testing.T) {
	base := fixtures(20)
	var entries []*audit.Entry
	add := func(id string, at int) {
		e := *base[at%len(base)]
		e.ID = id
		entries = append(entries, &e)
	}
	add("3f9c0a11aaaaaaaaaaaaaaaaaaaaaaaa", 0)
	add("3f9c0a22bbbbbbbbbbbbbbbbbbbbbbbb", 1)
	add("7d1e55aa00000000000000000000000a", 2)
	add("7d1e55aa00000000000000000000000a0", 3) // the id above is a prefix of this one
	add("c0ffee0000000000000000000000dup1", 4)
	add("c0ffee0000000000000000000000dup1", 5) // written twice: the newer counts
	add("50%_x_00000000000000000000000000", 6) // LIKE metacharacters are plain text
	add("50%_y_00000000000000000000000000", 7)
	for i := range 12 {
		add(fmt.Sprintf("eeeeee%02d000000000000000000000000", 11-i), 8+i)
	}
	newest := func(id string) *audit.Entry {
		var last *audit.Entry
		for _, e := range entries {
			if e.ID == id {
				last = e
			}
		}
		return last
	}
	db := openTest(t, SQLiteOptions{})
	insertAll(t, db, entries)
	files := writeJSONL(t, entries)
	many := make([]string, 0, MaxIDCandidates)
	for i := range MaxIDCandidates {
		many = append(many, fmt.Sprintf("eeeeee%02d000000000000000000000000", i))
	}
	tests := []struct {
		name, id string
		want     string   // the record's id
		amb      []string // candidates of an ambiguous prefix
		more     bool
		notFound string // part of the not-found message
	}{
		{name: "full id", id: "3f9c0a11aaaaaaaaaaaaaaaaaaaaaaaa", want: "3f9c0a11aaaaaaaaaaaaaaaaaaaaaaaa"},
		{name: "unique prefix", id: "3f9c0a2", want: "3f9c0a22bbbbbbbbbbbbbbbbbbbbbbbb"},
		{name: "shortest prefix", id: "50%_x_", want: "50%_x_00000000000000000000000000"},
		{name: "ambiguous prefix", id: "3f9c0a", amb: []string{"3f9c0a11aaaaaaaaaaaaaaaaaaaaaaaa", "3f9c0a22bbbbbbbbbbbbbbbbbbbbbbbb"}},
		{name: "metacharacters", id: "50%_", notFound: "at least 6"},
		{name: "LIKE would match more", id: "50%_x", notFound: "at least 6"},
		{name: "many candidates", id: "eeeeee", amb: many, more: true},
		{name: "exact id beats longer ids", id: "7d1e55aa00000000000000000000000a", want: "7d1e55aa00000000000000000000000a"},
		{name: "prefix of both", id: "7d1e55aa", amb: []string{"7d1e55aa00000000000000000000000a", "7d1e55aa00000000000000000000000a0"}},
		{name: "record written twice", id: "c0ffee", want: "c0ffee0000000000000000000000dup1"},
		{name: "too short", id: "3f9c0", notFound: "at least 6 characters"},
		{name: "unknown", id: "0123456789", notFound: `"0123456789"`},
		{name: "empty", id: "", notFound: "at least 6"},
	}
	for name, s := range map[string]Store{"sqlite": db, "files": files} {
		for _, tc := range tests {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				e, err := s.Get(context.Background(), tc.id)
				var amb *AmbiguousIDError
				switch {
				case tc.want != "":
					if err != nil {
						t.Fatal(err)
					}
					if !sameJSON(t, e, newest(tc.want)) {
						t.Fatalf("got record %s %v, want the newest %s", e.ID, e.Time, tc.want)
					}
				case tc.amb != nil:
					if !errors.As(err, &amb) || errors.Is(err, ErrNotFound) {
						t.Fatalf("got %v, %v; want an ambiguity", e, err)
					}
					if !slices.Equal(amb.Candidates, tc.amb) || amb.More != tc.more {
						t.Fatalf("candidates %v (more %v), want %v (more %v)", amb.Candidates, amb.More, tc.amb, tc.more)
					}
					for _, c := range tc.amb[:2] {
						if !strings.Contains(err.Error(), c) {
							t.Fatalf("message %q does not name %s", err, c)
						}
					}
				default:
					if !errors.Is(err, ErrNotFound) || errors.As(err, &amb) || !strings.Contains(err.Error(), tc.notFound) {
						t.Fatalf("got %v, %v; want not found saying %q", e, err, tc.notFound)
					}
				}
			})
		}
	}
}

// TestGetByPrefixUsesTheIndex: the prefix lookup is a range of the id
// index, not a scan of every record.
func TestGetByPrefixUsesTheIndex(t *testing.T) {
	db := openTest(t, SQLiteOptions{})
	rows, err := db.rdb.Query("EXPLAIN QUERY PLAN "+idsWithPrefixQuery, "3f9c0a", "3f9c0b", MaxIDCandidates+1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(plan, "; ")
	if !strings.Contains(joined, "SEARCH records USING COVERING INDEX records_id (id>? AND id<?)") {
		t.Fatalf("plan %q does not search the id index by range", joined)
	}
}
