package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/audit/store/storetest"
)

// auditFixture is the same records in a database and in a JSONL file.
type auditFixture struct {
	entries  []*audit.Entry
	db, file string
	known    *audit.Entry // a blocked SQL injection with a hostile URI
}

var auditStart = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	dir := t.TempDir()
	g := storetest.NewGenerator(3, auditStart, 48*time.Hour, 400)
	fx := &auditFixture{db: filepath.Join(dir, "audit.db"), file: filepath.Join(dir, "audit.jsonl")}
	for range 400 {
		fx.entries = append(fx.entries, g.Next())
	}
	fx.known = &audit.Entry{
		ID: "known-1", Time: auditStart.Add(48*time.Hour + time.Minute), ClientIP: "203.0.113.9", ClientPort: 5555, Country: "CN",
		Host: "shop.example", Method: "GET", URI: "/search?q=\x1b[31mred", Protocol: "HTTP/1.1", Status: 403,
		Action: audit.ActionBlocked, Stage: audit.StageWAF, Reason: "request denied by rule 949110", WAFMode: "block",
		InboundScore: 8,
		Rules: []audit.MatchedRule{
			{ID: 942100, Message: "SQL Injection Attack Detected via libinjection", Severity: "critical", Phase: 2,
				MatchedVariable: "ARGS:q", MatchedData: "1' OR '1'='1", Tags: []string{"attack-sqli", "paranoia-level/1"}, ParanoiaLevel: 1},
			{ID: 920350, Message: "Host header is a numeric IP address", Severity: "warning", Phase: 1,
				MatchedVariable: "REQUEST_HEADERS:Host", MatchedData: "203.0.113.10"},
			{ID: 949110, Message: "Inbound Anomaly Score Exceeded (Total Score: 8)", Severity: "emergency", Phase: 2, Tags: []string{"anomaly-evaluation"}},
			{ID: 980170, Message: "Anomaly Scores: (Inbound Scores: blocking=8)", Phase: 5, Tags: []string{"reporting"}},
		},
		Headers: map[string][]string{"User-Agent": {"evil\x07agent"}, "Cookie": {audit.Redacted}},
	}
	fx.entries = append(fx.entries, fx.known)
	s, err := store.OpenSQLite(fx.db, store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(context.Background(), fx.entries...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	sink := audit.NewWriterSink(&buf)
	for _, e := range fx.entries {
		if err := sink.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(fx.file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return fx
}

// sources are the two ways to name records.
func (fx *auditFixture) sources() map[string][]string {
	return map[string][]string{"db": {"--db", fx.db}, "file": {"--file", fx.file}}
}

// matching is the oracle: ids selected by the URL-form filter, newest first.
func (fx *auditFixture) matching(t *testing.T, q string) []string {
	t.Helper()
	f := parseFilter(t, q)
	var out []string
	for i := len(fx.entries) - 1; i >= 0; i-- {
		if f.Match(fx.entries[i]) {
			out = append(out, fx.entries[i].ID)
		}
	}
	return out
}

func parseFilter(t *testing.T, q string) query.Filter {
	t.Helper()
	v := map[string][]string{}
	for _, kv := range strings.Split(q, "&") {
		if k, val, ok := strings.Cut(kv, "="); ok {
			v[k] = append(v[k], val)
		}
	}
	f, err := query.Parse(v, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func runAudit(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = cmdAudit(args, &o, &e)
	return o.String(), e.String(), code
}

func jsonIDs(t *testing.T, out string) []string {
	t.Helper()
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON record: %q", sc.Text())
		}
		ids = append(ids, e.ID)
	}
	return ids
}

func TestAuditSearch(t *testing.T) {
	fx := newAuditFixture(t)
	cases := []struct {
		args  []string
		query string
	}{
		{nil, ""},
		{[]string{"--rule", "942100"}, "rule=942100"},
		{[]string{"--action", "blocked", "--not-country", "US,DE"}, "action=blocked&not_country=US,DE"},
		{[]string{"--ip", "0.0.0.0/1", "--not-stage", "waf"}, "ip=0.0.0.0/1&not_stage=waf"},
		{[]string{"--host", "api.example", "--path", "/api/v1/"}, "host=api.example&path=/api/v1/"},
		{[]string{"--since", "2026-11-21T12:00:00Z", "--until", "2026-11-21T18:00:00Z", "--tag", "attack-sqli"}, "since=2026-11-21T12:00:00Z&until=2026-11-21T18:00:00Z&tag=attack-sqli"},
	}
	for name, src := range fx.sources() {
		for _, tc := range cases {
			t.Run(name+" "+tc.query, func(t *testing.T) {
				args := append(append([]string{"search", "--json", "--limit", "10000"}, src...), tc.args...)
				out, stderr, code := runAudit(args...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				want := fx.matching(t, tc.query)
				if got := jsonIDs(t, out); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("%d records, want %d", len(got), len(want))
				}
			})
		}
	}
}

func TestAuditSearchTableAndPages(t *testing.T) {
	fx := newAuditFixture(t)
	for name, src := range fx.sources() {
		t.Run(name, func(t *testing.T) {
			out, stderr, code := runAudit(append([]string{"search", "--rule", "942100", "--limit", "1"}, src...)...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME") {
				t.Fatalf("exit %d, output:\n%s%s", code, out, stderr)
			}
			for _, want := range []string{"2026-11-22T00:01:00Z", "known-1", "203.0.113.9", "CN", "blocked", "403", "GET",
				`shop.example/search?q=\x1b[31mred`, "942100,920350"} {
				if !strings.Contains(lines[1], want) {
					t.Errorf("row lacks %q: %s", want, lines[1])
				}
			}
			if strings.ContainsRune(out, '\x1b') {
				t.Error("a raw escape character reached the terminal")
			}
			cursor, ok := strings.CutPrefix(strings.TrimSpace(stderr), "more records: add --after ")
			if !ok {
				t.Fatalf("no cursor: %q", stderr)
			}
			// Following the cursors visits every match once.
			var ids []string
			for range 1000 {
				out, stderr, code = runAudit(append([]string{"search", "--rule", "942100", "--limit", "3", "--json", "--after", cursor}, src...)...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				ids = append(ids, jsonIDs(t, out)...)
				if cursor, ok = strings.CutPrefix(strings.TrimSpace(stderr), "more records: add --after "); !ok {
					break
				}
			}
			if want := fx.matching(t, "rule=942100")[1:]; strings.Join(ids, ",") != strings.Join(want, ",") {
				t.Fatalf("pages gave %v, want %v", ids, want)
			}
		})
	}
}

func TestAuditErrors(t *testing.T) {
	fx := newAuditFixture(t)
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{}, 2, "Usage: portcullis audit COMMAND"},
		{[]string{"frobnicate"}, 2, `portcullis audit: unknown command "frobnicate"`},
		{[]string{"search", "--db", fx.db, "--rule", "abc"}, 2, `invalid rule "abc": want a rule id (a positive integer)`},
		{[]string{"search", "--db", fx.db, "--since", "yesterday", "--country", "Germany"}, 2, "invalid since \"yesterday\": want a duration like 15m, 1h or 7d, an RFC 3339 time or a date (2006-01-02)\ninvalid country \"Germany\": want a two-letter ISO 3166 country code"},
		{[]string{"search", "--db", fx.db, "--file", fx.file}, 1, "use either --db or --file, not both"},
		{[]string{"search", "--db", filepath.Join(t.TempDir(), "none.db")}, 1, "no such file or directory"},
		{[]string{"search", "--db", fx.db, "--limit", "0"}, 2, "--limit must be from 1 to 10000"},
		{[]string{"search", "--db", fx.db, "--after", "nonsense"}, 1, `invalid page cursor "nonsense"`},
		{[]string{"show", "--db", fx.db}, 2, "portcullis audit show: give one record id\n\nUsage: portcullis audit show [flags] ID"},
		{[]string{"show", "a", "b", "--db", fx.db}, 2, "give one record id"},
		{[]string{"search", "--db", fx.db, "--bogus"}, 2, "flag provided but not defined: -bogus\n\nUsage: portcullis audit search [flags]"},
		{[]string{"replay", "--db", fx.db}, 2, "give the candidate configuration with --candidate FILE"},
		{[]string{"replay", "--db", fx.db, "--config", "a.yaml", "-c", "b.yaml"}, 2, "--config now names the running configuration"},
		{[]string{"show", "nope", "--db", fx.db}, 1, `audit record not found: "nope" (an id prefix needs at least 6 characters)`},
		{[]string{"export", "--db", fx.db, "--format", "xml"}, 2, `unknown export format "xml" (want jsonl, csv, ocsf)`},
		{[]string{"search", "-c", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "missing.yaml"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, code := runAudit(tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.stderr)
			}
		})
	}
}

func TestAuditShow(t *testing.T) {
	fx := newAuditFixture(t)
	for name, src := range fx.sources() {
		t.Run(name, func(t *testing.T) {
			out, stderr, code := runAudit(append([]string{"show", "known-1"}, src...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, want := range []string{
				"Record       known-1",
				"Client       203.0.113.9 port 5555, CN",
				`Request      GET shop.example /search?q=\x1b[31mred HTTP/1.1`,
				"Decision     blocked by waf: request denied by rule 949110",
				"Anomaly score: inbound 8, outbound 0",
				"942100  5       critical  ARGS:q                1' OR '1'='1  SQL Injection Attack Detected via libinjection",
				"920350  3       warning   REQUEST_HEADERS:Host  203.0.113.10  Host header is a numeric IP address",
				"total   8",
				"CRS bookkeeping rules (score evaluation and reporting)\n  949110  Inbound Anomaly Score Exceeded (Total Score: 8)\n  980170",
				`User-Agent: evil\aagent`,
				"Cookie: [redacted]",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("show output lacks %q", want)
				}
			}
			if strings.ContainsAny(out, "\x1b\x07") {
				t.Error("raw control characters reached the terminal")
			}
			if strings.Contains(out, "the engine recorded") {
				t.Error("score mismatch reported for matching scores")
			}
			if t.Failed() {
				t.Log(out)
			}
			out, _, code = runAudit(append([]string{"show", "--json", "known-1"}, src...)...)
			var e audit.Entry
			if code != 0 || json.Unmarshal([]byte(out), &e) != nil || e.ID != "known-1" || len(e.Rules) != 4 {
				t.Fatalf("--json: exit %d, %q", code, out)
			}
		})
	}
}

func TestAuditSummary(t *testing.T) {
	fx := newAuditFixture(t)
	for name, src := range fx.sources() {
		t.Run(name, func(t *testing.T) {
			out, stderr, code := runAudit(append([]string{"summary", "--top", "3"}, src...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var blocked, detected, errs, allowed int
			for _, e := range fx.entries {
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
			// The total names all its parts, allowed records too (issue 13).
			head := fmt.Sprintf("%d records: %d blocked, %d detected, %d errors, %d allowed\nfrom 2026-11-20T00:", len(fx.entries), blocked, detected, errs, allowed)
			if !strings.HasPrefix(out, head) {
				t.Errorf("summary starts %q, want %q", out[:min(len(out), 80)], head)
			}
			for _, want := range []string{"one column per 1h", "\nblocked  ", "\ndetected ", "\nerrors   ", "\nTop rules\n", "\nTop clients\n", "\nTop paths\n", "\nTop countries\n", "\nTop hosts\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("summary lacks %q:\n%s", want, out)
				}
			}
			out, _, code = runAudit(append([]string{"summary", "--json", "--action", "blocked", "--bucket", "6h"}, src...)...)
			var sum store.Summary
			if code != 0 || json.Unmarshal([]byte(out), &sum) != nil {
				t.Fatalf("--json: exit %d %q", code, out)
			}
			if sum.Total != blocked || sum.Bucket != 6*time.Hour || len(sum.Series) != 9 {
				t.Fatalf("--json: total %d bucket %v points %d", sum.Total, sum.Bucket, len(sum.Series))
			}
		})
	}
}

func TestAuditExport(t *testing.T) {
	fx := newAuditFixture(t)
	want := fx.matching(t, "not_action=allowed")
	for name, src := range fx.sources() {
		for _, format := range []string{"jsonl", "csv", "ocsf"} {
			t.Run(name+" "+format, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "out")
				_, stderr, code := runAudit(append([]string{"export", "--format", format, "-o", path, "--not-action", "allowed"}, src...)...)
				if code != 0 || stderr != fmt.Sprintf("%d record(s) written to %s\n", len(want), path) {
					t.Fatalf("exit %d: %q", code, stderr)
				}
				fi, err := os.Stat(path)
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("output file: %v %v", fi, err)
				}
				data, _ := os.ReadFile(path)
				var ids []string
				switch format {
				case "jsonl":
					ids = jsonIDs(t, string(data))
				case "csv":
					rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range rows[1:] {
						ids = append(ids, r[1])
					}
				case "ocsf":
					for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
						var ev struct {
							ClassUID int `json:"class_uid"`
							Metadata struct {
								UID     string `json:"uid"`
								Product struct{ Name, Version string }
							} `json:"metadata"`
						}
						if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.ClassUID != 4002 || ev.Metadata.Product.Name != "Portcullis" || ev.Metadata.Product.Version == "" {
							t.Fatalf("not an OCSF HTTP Activity event: %s", line)
						}
						ids = append(ids, ev.Metadata.UID)
					}
				}
				// The database exports newest first, files in file order.
				got, exp := strings.Join(sorted(ids), ","), strings.Join(sorted(want), ",")
				if got != exp {
					t.Fatalf("exported %d records, want %d", len(ids), len(want))
				}
			})
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestAuditTail(t *testing.T) {
	fx := newAuditFixture(t)
	want := fx.matching(t, "action=blocked")[:4]
	for name, src := range fx.sources() {
		t.Run(name, func(t *testing.T) {
			out, stderr, code := runAudit(append([]string{"tail", "-n", "4", "--json", "--action", "blocked"}, src...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := jsonIDs(t, out)
			// Oldest first, like tail(1).
			if len(got) != 4 || got[0] != want[3] || got[3] != want[0] {
				t.Fatalf("tail gave %v, want the reverse of %v", got, want)
			}
		})
	}
}

// TestAuditTailFollow runs the binary: `tail -f` prints new records as the
// running instance adds them and exits 0 on SIGINT.
func TestAuditTailFollow(t *testing.T) {
	fx := newAuditFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "audit", "tail", "-f", "-n", "1", "--interval", "20ms", "--json", "--db", fx.db, "--not-action", "allowed")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("tail ended: %v %s", lines.Err(), stderr.String())
		}
		var e audit.Entry
		if err := json.Unmarshal(lines.Bytes(), &e); err != nil {
			t.Fatalf("not a record: %q", lines.Text())
		}
		return e.ID
	}
	if id := next(); id != "known-1" {
		t.Fatalf("backlog gave %s, want known-1", id)
	}
	s, err := store.OpenSQLite(fx.db, store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	allowed := &audit.Entry{ID: "new-allowed", Time: time.Now(), ClientIP: "192.0.2.1", Action: audit.ActionAllowed, Status: 200}
	blocked := &audit.Entry{ID: "new-blocked", Time: time.Now(), ClientIP: "192.0.2.2", Action: audit.ActionBlocked, Stage: audit.StageBan, Status: 403}
	if err := s.Insert(context.Background(), allowed, blocked); err != nil {
		t.Fatal(err)
	}
	if id := next(); id != "new-blocked" {
		t.Fatalf("followed %s, want new-blocked", id)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tail -f did not end cleanly on SIGINT: %v %s", err, stderr.String())
	}
}

// TestAuditFromConfig: without --db or --file the configuration names the
// records: its store when the database exists, else its JSONL file.
func TestAuditFromConfig(t *testing.T) {
	fx := newAuditFixture(t)
	dir := t.TempDir()
	write := func(name, storeBlock string) string {
		path := filepath.Join(dir, name)
		cfg := fmt.Sprintf(`upstreams: [{name: app, targets: ["http://127.0.0.1:9"]}]
sites:
  - hosts: ["*"]
    routes: [{path: /, upstream: app}]
audit:
  file: %s
%s`, fx.file, storeBlock)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	withDB := write("db.yaml", fmt.Sprintf("  store: {path: %s}\n", fx.db))
	noDB := write("nodb.yaml", fmt.Sprintf("  store: {path: %s}\n", filepath.Join(dir, "absent.db")))
	disabled := write("off.yaml", fmt.Sprintf("  store: {enabled: false, path: %s}\n", fx.db))
	for name, cfg := range map[string]string{"store": withDB, "file fallback": noDB, "store disabled": disabled} {
		t.Run(name, func(t *testing.T) {
			out, stderr, code := runAudit("search", "-c", cfg, "--json", "--limit", "1000", "--rule", "942100")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got, want := jsonIDs(t, out), fx.matching(t, "rule=942100"); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "absent.db")); err == nil {
		t.Fatal("reading created the database")
	}
}

// TestAuditCommandDispatch: the binary knows the audit command, and the
// top-level help lists every audit command.
func TestAuditCommandDispatch(t *testing.T) {
	out, _, code := runBinary(t, "audit", "help")
	if code != 0 || !strings.Contains(out, "Usage: portcullis audit COMMAND") {
		t.Fatalf("exit %d: %s", code, out)
	}
	out, _, _ = runBinary(t, "help")
	for _, sub := range []string{"search", "summary", "show", "tail", "export", "explain", "replay"} {
		if !strings.Contains(out, "\n  audit "+sub+" ") {
			t.Errorf("usage lacks audit %s:\n%s", sub, out)
		}
	}
}

// TestAuditIDPrefix: show accepts a unique prefix of a record id, and says
// which records an ambiguous one matches (#13: ids had to be given in full).
func TestAuditIDPrefix(t *testing.T) {
	fx := newAuditFixture(t)
	count := func(p string) int {
		n := 0
		for _, e := range fx.entries {
			if strings.HasPrefix(e.ID, p) {
				n++
			}
		}
		return n
	}
	target := fx.entries[200].ID
	unique := ""
	for l := store.MinIDPrefix; l <= len(target); l++ {
		if count(target[:l]) == 1 {
			unique = target[:l]
			break
		}
	}
	ambiguous := ""
	for l := len(target) - 1; l >= store.MinIDPrefix && ambiguous == ""; l-- {
		if count(target[:l]) > 1 {
			ambiguous = target[:l]
		}
	}
	if unique == "" || ambiguous == "" || unique == target {
		t.Fatalf("fixture ids give no unique (%q) or ambiguous (%q) prefix", unique, ambiguous)
	}
	for name, src := range fx.sources() {
		t.Run(name, func(t *testing.T) {
			out, stderr, code := runAudit(append([]string{"show", unique}, src...)...)
			if code != 0 || !strings.Contains(out, "Record       "+target+"\n") {
				t.Fatalf("unique prefix %s: exit %d %s %s", unique, code, out, stderr)
			}
			_, stderr, code = runAudit(append([]string{"show", ambiguous}, src...)...)
			if code != 1 || !strings.Contains(stderr, fmt.Sprintf("id prefix %q is ambiguous", ambiguous)) || !strings.Contains(stderr, target) {
				t.Fatalf("ambiguous prefix %s: exit %d %s", ambiguous, code, stderr)
			}
			_, stderr, code = runAudit(append([]string{"show", "ffffffffffff"}, src...)...)
			if code != 1 || !strings.Contains(stderr, `audit record not found: "ffffffffffff"`) {
				t.Fatalf("unknown id: exit %d %s", code, stderr)
			}
			_, stderr, code = runAudit(append([]string{"show", target[:4]}, src...)...)
			if code != 1 || !strings.Contains(stderr, "an id prefix needs at least 6 characters") {
				t.Fatalf("short prefix: exit %d %s", code, stderr)
			}
		})
	}
}

// TestAuditSearchStageColumn: a ban's 403 and the WAF's 403 differ in the
// listing: search and tail print the deciding stage and the reason (#13).
func TestAuditSearchStageColumn(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	s, err := store.OpenSQLite(db, store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := s.Insert(context.Background(),
		&audit.Entry{ID: "rec-waf", Time: now, ClientIP: "192.0.2.1", Method: "GET", Host: "a", URI: "/x", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF, Reason: "request denied by rule 949110"},
		&audit.Entry{ID: "rec-ban", Time: now.Add(time.Second), ClientIP: "192.0.2.2", Method: "GET", Host: "a", URI: "/x", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageBan, Reason: "banned: 10 strikes within 1m0s"},
	); err != nil {
		t.Fatal(err)
	}
	s.Close()
	out, stderr, code := runAudit("search", "--db", db)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	head := strings.Fields(lines[0])
	if strings.Join(head, " ") != "TIME ID CLIENT CC ACTION STAGE STATUS METHOD TARGET RULES REASON" {
		t.Errorf("header: %s", lines[0])
	}
	for i, want := range [][]string{{"rec-ban", "ban", "banned: 10 strikes within 1m0s"}, {"rec-waf", "waf", "request denied by rule 949110"}} {
		f := strings.Fields(lines[i+1])
		if f[1] != want[0] || f[5] != want[1] || !strings.HasSuffix(lines[i+1], want[2]) {
			t.Errorf("row %d: %s (want %v)", i, lines[i+1], want)
		}
	}
	out, _, _ = runAudit("tail", "--db", db, "-n", "1")
	if !strings.Contains(out, "  ban  ") || !strings.Contains(out, "banned: 10 strikes") {
		t.Errorf("tail lacks stage and reason: %s", out)
	}
}
