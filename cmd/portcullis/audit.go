package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/audit/store/export"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/review/score"
)

const auditHelp = `Records come from --db FILE (the SQLite audit store), --file FILE (JSON-lines
audit files, repeatable, oldest first), or else the configuration (-c,
default portcullis.yaml): its audit store when it exists, otherwise its
audit file.

Filters (repeatable, comma-separated; --not-X excludes):
  --since/--until 15m|1h|7d|RFC 3339   --ip ADDR|CIDR   --host H   --path PREFIX
  --rule ID   --tag TAG   --action blocked|detected|error|allowed
  --stage waf|ratelimit|ban|...   --status CODE   --country CC

Record ids may be shortened to a unique prefix (at least 6 characters).
`

func auditCommand() *command {
	return &command{name: "audit", summary: "search and review audit records", help: auditHelp, subs: []*command{
		{name: "search", summary: "matching records, newest first, one per line with the deciding stage and reason", run: runAuditSearch},
		{name: "summary", summary: "counts, a chart over time, top rules, clients, paths, countries, hosts", run: runAuditSummary},
		{name: "show", args: "ID", summary: "one record, its anomaly score rule by rule", run: runAuditShow},
		{name: "tail", summary: "the latest records; -f follows new ones", run: runAuditTail},
		{name: "export", summary: "every matching record as jsonl, csv or ocsf", run: runAuditExport},
		{name: "explain", args: "ID", summary: "the smallest exclusion that lets a blocked request pass, verified", run: runAuditExplain},
		{name: "replay", summary: "judge stored requests with a --candidate configuration and list what changes", run: runAuditReplay},
	}}
}

// cmdAudit runs `portcullis audit ...` (for tests).
func cmdAudit(args []string, stdout, stderr io.Writer) int {
	return run(append([]string{"audit"}, args...), stdout, stderr)
}

// auditFlags are the flags every audit command shares: where records come
// from and, for most, the filter.
type auditFlags struct {
	cmd     *command
	fs      *flag.FlagSet
	config  string
	db      string
	files   []string
	filters func() url.Values
	args    []string // positional arguments
}

func newAuditFlags(c *command, stderr io.Writer, withFilters bool) *auditFlags {
	a := &auditFlags{cmd: c, fs: c.newFlags(stderr)}
	configFlag(a.fs, &a.config, "", "configuration `FILE` naming the audit store or file (default portcullis.yaml)")
	a.fs.StringVar(&a.db, "db", "", "SQLite audit database `FILE`")
	a.fs.Func("file", "JSON-lines audit `FILE` (repeatable, oldest first)", func(s string) error {
		a.files = append(a.files, s)
		return nil
	})
	if withFilters {
		a.filters = query.BindFlags(a.fs)
	}
	return a
}

// parse parses args and the filter; it prints errors (or the help)
// itself and returns the exit status to use when ok is false. nargs is how
// many positional arguments the command takes.
func (a *auditFlags) parse(args []string, nargs int, stdout, stderr io.Writer) (f query.Filter, code int, ok bool) {
	pos, code, ok := a.cmd.parseFlags(a.fs, args, stdout, stderr)
	if !ok {
		return f, code, false
	}
	if len(pos) != nargs {
		if nargs == 0 {
			return f, a.cmd.usageError(stderr, a.fs, "takes no arguments, got %q", pos[0]), false
		}
		return f, a.cmd.usageError(stderr, a.fs, "give one record id"), false
	}
	a.args = pos
	if a.filters != nil {
		var err error
		if f, err = query.Parse(a.filters(), time.Now()); err != nil {
			fmt.Fprintln(stderr, err)
			return f, 2, false
		}
	}
	return f, 0, true
}

// open opens the record source the flags name; warnings about skipped
// lines of JSONL files go to stderr.
func (a *auditFlags) open(stderr io.Writer) (store.Store, error) {
	s, err := a.openStore()
	if files, ok := s.(*store.Files); ok {
		files.Warn = func(path string, line int, err error) {
			fmt.Fprintf(stderr, "warning: %s line %d skipped: %v\n", path, line, err)
		}
	}
	return s, err
}

func (a *auditFlags) openStore() (store.Store, error) {
	switch {
	case a.db != "" && len(a.files) > 0:
		return nil, errors.New("use either --db or --file, not both")
	case a.db != "":
		return openAuditDB(a.db)
	case len(a.files) > 0:
		return openAuditFiles(a.files...)
	}
	file := a.config
	if file == "" {
		file = "portcullis.yaml"
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("no audit records named: give --db FILE, --file FILE or -c CONFIG")
		}
	}
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	if cc := cfg.Cluster; cc != nil && cc.Postgres != nil {
		return openAuditPostgres(cc.Postgres)
	}
	if st := cfg.Audit.Store; st.Enabled && st.Path != "" {
		if _, err := os.Stat(st.Path); err == nil {
			return openAuditDB(st.Path)
		}
	}
	return openAuditFiles(cfg.Audit.File)
}

func openAuditDB(path string) (store.Store, error) {
	// Read-only: the running instance owns writes and retention.
	s, err := store.OpenSQLite(path, store.SQLiteOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// openAuditPostgres opens the cluster's shared audit store for reading:
// every instance's records. Schema changes and retention are the running
// instances' job.
func openAuditPostgres(pc *config.PostgresConfig) (store.Store, error) {
	return store.OpenPostgres(store.PostgresOptions{ConnString: pc.ConnString, Password: pc.Password.Reveal(),
		Schema: pc.Schema, Timeout: pc.Timeout, Dial: pc.Dial, ReadOnly: true})
}

func openAuditFiles(paths ...string) (store.Store, error) {
	s, err := store.OpenFiles(paths...)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// start opens the record source and a context that ends on SIGINT or
// SIGTERM; done releases both. It prints the error itself.
func (a *auditFlags) start(stderr io.Writer) (s store.Store, ctx context.Context, done func(), ok bool) {
	s, err := a.open(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, nil, false
	}
	ctx, stop := signalContext()
	return s, ctx, func() { stop(); s.Close() }, true
}

// getRecord fetches one record by its id or a unique prefix of it,
// printing why it could not.
func getRecord(ctx context.Context, s store.Store, id string, stderr io.Writer) (*audit.Entry, bool) {
	e, err := findRecord(ctx, s, id)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, false
	}
	return e, true
}

// findRecord returns the record whose id is id or, failing that, the one
// record whose id starts with id (the store resolves prefixes of at least
// store.MinIDPrefix characters, with an index range query in SQLite). An
// ambiguous prefix is an error naming the candidates.
func findRecord(ctx context.Context, s store.Store, id string) (*audit.Entry, error) {
	// The store's errors name the id and, for a prefix, the candidates.
	return s.Get(ctx, id)
}

// signalContext ends on SIGINT or SIGTERM, so tail -f and long exports stop
// cleanly.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runAuditSearch(c *command, args []string, stdout, stderr io.Writer) int {
	a := newAuditFlags(c, stderr, true)
	limit := a.fs.Int("limit", 50, "records per page (at most 10000)")
	after := a.fs.String("after", "", "continue after this `CURSOR` (printed after a full page)")
	asJSON := a.fs.Bool("json", false, "print records as JSON lines")
	f, code, ok := a.parse(args, 0, stdout, stderr)
	if !ok {
		return code
	}
	if *limit <= 0 || *limit > store.MaxLimit {
		return c.usageError(stderr, a.fs, "--limit must be from 1 to %d", store.MaxLimit)
	}
	s, ctx, done, ok := a.start(stderr)
	if !ok {
		return 1
	}
	defer done()
	res, err := s.Search(ctx, f, store.Page{Limit: *limit, After: *after})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *asJSON {
		if err := writeJSONLines(stdout, res.Entries); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tID\tCLIENT\tCC\tACTION\tSTAGE\tSTATUS\tMETHOD\tTARGET\tRULES\tREASON")
		for _, e := range res.Entries {
			fmt.Fprintln(tw, recordRow(e, "\t"))
		}
		_ = tw.Flush()
	}
	if res.Next != "" {
		fmt.Fprintf(stderr, "more records: add --after %s\n", res.Next)
	} else if len(res.Entries) == 0 {
		fmt.Fprintln(stderr, "no matching records")
	}
	return 0
}

// recordRow is one record in the search and tail listings.
func recordRow(e *audit.Entry, sep string) string {
	target := e.Host + query.RequestPath(e.URI)
	if q := strings.IndexByte(e.URI, '?'); q >= 0 {
		target += e.URI[q:]
	}
	cols := []string{
		e.Time.UTC().Format(time.RFC3339),
		e.ID,
		e.ClientIP,
		orDash(e.Country),
		orDash(e.Action),
		orDash(e.Stage), // a ban's 403 is not the WAF's
		strconv.Itoa(e.Status),
		e.Method,
		truncate(target, 60),
		orDash(ruleList(e)),
		orDash(truncate(e.Reason, 48)),
	}
	for i := range cols {
		cols[i] = clean(cols[i])
	}
	return strings.Join(cols, sep)
}

// ruleList names the detection rules of e, or its bookkeeping rules when
// it has no others.
func ruleList(e *audit.Entry) string {
	var ids, book []string
	for _, r := range e.Rules {
		id := strconv.Itoa(r.ID)
		if audit.IsBookkeeping(r) {
			if !slices.Contains(book, id) {
				book = append(book, id)
			}
		} else if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		ids = book
	}
	return strings.Join(ids, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncate shortens s to n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// clean makes attacker-chosen text safe for a terminal: control characters
// (escape sequences could rewrite the screen) and invalid UTF-8 are shown
// escaped.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, width := utf8.DecodeRuneInString(s[i:])
		w = width
		switch {
		case r == utf8.RuneError && width <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func writeJSONLines(w io.Writer, entries []*audit.Entry) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("write record %s: %w", e.ID, err)
		}
	}
	return nil
}

func runAuditSummary(c *command, args []string, stdout, stderr io.Writer) int {
	a := newAuditFlags(c, stderr, true)
	bucket := a.fs.Duration("bucket", 0, "width of one point of the chart (default: about 60 points)")
	top := a.fs.Int("top", 10, "rows per top list")
	asJSON := a.fs.Bool("json", false, "print the summary as JSON")
	f, code, ok := a.parse(args, 0, stdout, stderr)
	if !ok {
		return code
	}
	if *bucket < 0 || *top < 1 {
		return c.usageError(stderr, a.fs, "--bucket must not be negative and --top must be at least 1")
	}
	s, ctx, done, ok := a.start(stderr)
	if !ok {
		return 1
	}
	defer done()
	sum, err := s.Summary(ctx, f, store.SummaryOptions{Bucket: *bucket, Top: *top})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	printSummary(stdout, sum)
	return 0
}

func printSummary(w io.Writer, sum *store.Summary) {
	fmt.Fprintln(w, sum.Composition())
	if len(sum.Series) > 0 {
		fmt.Fprintf(w, "from %s to %s, one column per %s\n\n", sum.Since.Format(time.RFC3339), sum.Until.Format(time.RFC3339), formatDuration(sum.Bucket))
		series := chartColumns(sum.Series, 120)
		for _, k := range []struct {
			name string
			get  func(store.Bucket) int
		}{
			{"blocked ", func(b store.Bucket) int { return b.Blocked }},
			{"detected", func(b store.Bucket) int { return b.Detected }},
			{"errors  ", func(b store.Bucket) int { return b.Errors }},
		} {
			vals := make([]int, len(series))
			for i, b := range series {
				vals[i] = k.get(b)
			}
			fmt.Fprintf(w, "%s %s  max %d\n", k.name, sparkline(vals), slices.Max(vals))
		}
	}
	section := func(title string, rows [][2]string) {
		if len(rows) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s\n", title)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t  %s\n", r[0], clean(r[1]))
		}
		_ = tw.Flush()
	}
	var rules [][2]string
	for _, r := range sum.TopRules {
		rules = append(rules, [2]string{strconv.Itoa(r.Count), strconv.Itoa(r.ID) + "  " + truncate(r.Message, 80)})
	}
	section("Top rules", rules)
	counts := func(cs []store.Count) [][2]string {
		var out [][2]string
		for _, c := range cs {
			out = append(out, [2]string{strconv.Itoa(c.Count), truncate(c.Value, 80)})
		}
		return out
	}
	section("Top clients", counts(sum.TopClients))
	section("Top paths", counts(sum.TopPaths))
	section("Top countries", counts(sum.TopCountries))
	section("Top hosts", counts(sum.TopHosts))
}

// chartColumns merges neighbouring buckets so a chart fits in width
// columns.
func chartColumns(series []store.Bucket, width int) []store.Bucket {
	per := (len(series) + width - 1) / width
	if per <= 1 {
		return series
	}
	var out []store.Bucket
	for i := 0; i < len(series); i += per {
		b := series[i]
		for _, x := range series[i+1 : min(i+per, len(series))] {
			b.Blocked += x.Blocked
			b.Detected += x.Detected
			b.Errors += x.Errors
		}
		out = append(out, b)
	}
	return out
}

// sparkline draws values as block characters, zero as a dot.
func sparkline(vals []int) string {
	bars := []rune("▁▂▃▄▅▆▇█")
	top := slices.Max(vals)
	var b strings.Builder
	for _, v := range vals {
		switch {
		case v == 0:
			b.WriteRune('·')
		default:
			b.WriteRune(bars[min(len(bars)-1, (v*len(bars)-1)/max(top, 1))])
		}
	}
	return b.String()
}

func formatDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return d.String()
}

func runAuditShow(c *command, args []string, stdout, stderr io.Writer) int {
	a := newAuditFlags(c, stderr, false)
	asJSON := a.fs.Bool("json", false, "print the record as JSON only")
	if _, code, ok := a.parse(args, 1, stdout, stderr); !ok {
		return code
	}
	id := a.args[0]
	s, ctx, done, ok := a.start(stderr)
	if !ok {
		return 1
	}
	defer done()
	e, ok := getRecord(ctx, s, id, stderr)
	if !ok {
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(e); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	printRecord(stdout, e)
	return 0
}

// printScore prints the anomaly score rule by rule: review/score's
// breakdown, the same one the dashboard shows.
func printScore(w io.Writer, b score.Breakdown) {
	fmt.Fprintf(w, "\nAnomaly score: inbound %d, outbound %d\n", b.RecordedInbound, b.RecordedOutbound)
	scored := func(title string, rules []score.Rule, sum, recorded int) {
		if len(rules) == 0 && sum == recorded {
			return // a score no listed rule explains is still shown
		}
		fmt.Fprintf(w, "\n%s\n", title)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  RULE\tPOINTS\tSEVERITY\tVARIABLE\tMATCHED DATA\tMESSAGE")
		for _, r := range rules {
			fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%s\t%s\n", r.ID, r.Points, clean(r.SeverityName), clean(truncate(r.MatchedVariable, 40)),
				clean(truncate(r.MatchedData, 40)), clean(truncate(r.Message, 70)))
		}
		fmt.Fprintf(tw, "  total\t%d\t\t\t\t\n", sum)
		_ = tw.Flush()
		if sum != recorded {
			fmt.Fprintf(w, "  (the engine recorded %d: %s)\n", recorded, b.Difference())
		}
	}
	scored("Inbound scoring rules ("+score.Legend()+")", b.Inbound, b.InboundSum, b.RecordedInbound)
	scored("Outbound scoring rules", b.Outbound, b.OutboundSum, b.RecordedOutbound)
	if len(b.Bookkeeping) > 0 {
		fmt.Fprintln(w, "\nCRS bookkeeping rules (score evaluation and reporting)")
		for _, r := range b.Bookkeeping {
			fmt.Fprintf(w, "  %d  %s\n", r.ID, clean(truncate(r.Message, 160)))
			if r.MatchedVariable != "" || r.MatchedData != "" {
				fmt.Fprintf(w, "          %s: %s\n", clean(r.MatchedVariable), clean(truncate(r.MatchedData, 120)))
			}
		}
	}
	if len(b.Other) > 0 {
		fmt.Fprintln(w, "\nOther rules (outside CRS scoring: no points in the sums; custom and engine rules may block on their own)")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  RULE\tSEVERITY\tVARIABLE\tMATCHED DATA\tMESSAGE")
		for _, r := range b.Other {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", r.ID, orDash(clean(r.SeverityName)), clean(truncate(r.MatchedVariable, 40)),
				clean(truncate(r.MatchedData, 40)), clean(truncate(r.Message, 70)))
		}
		_ = tw.Flush()
	}
}

// printRecord shows one record for a person: the request, the decision,
// the anomaly score rule by rule, then everything else.
func printRecord(w io.Writer, e *audit.Entry) {
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-13s%s\n", k, clean(v))
		}
	}
	line("Record", e.ID)
	line("Time", e.Time.UTC().Format(time.RFC3339Nano))
	client := e.ClientIP
	if e.ClientPort != 0 {
		client += " port " + strconv.Itoa(e.ClientPort)
	}
	if e.Country != "" {
		client += ", " + e.Country
	}
	if e.ASN != 0 {
		client += fmt.Sprintf(", AS%d %s", e.ASN, e.ASOrg)
	}
	line("Client", client)
	line("Via proxy", e.Peer)
	line("Allow-listed", e.AllowListed)
	line("Request", strings.TrimSpace(e.Method+" "+e.Host+" "+e.URI+" "+e.Protocol))
	line("Site, route", strings.TrimSpace(e.Site+" "+e.Route))
	decision := e.Action
	if e.Stage != "" {
		decision += " by " + e.Stage
	}
	if e.Reason != "" {
		decision += ": " + e.Reason
	}
	line("Decision", decision)
	if e.WAFMode != "" {
		line("WAF mode", e.WAFMode)
	}
	if e.FailOpen {
		line("Fail-open", "an engine error was let through by the fail-open policy")
	}
	line("Response", fmt.Sprintf("%d, %d bytes, %s (WAF %s, upstream %s)", e.Status, e.BytesSent,
		time.Duration(e.Durations.Total)*time.Microsecond, time.Duration(e.Durations.WAF)*time.Microsecond,
		time.Duration(e.Durations.Upstream)*time.Microsecond))
	line("Upstream", e.Upstream)
	if e.Sampled {
		line("Sampled", "an allowed request kept by audit.sample_allowed")
	}

	printScore(w, score.Of(e))
	if len(e.Rules) > 0 {
		fmt.Fprintln(w, "\nRule details")
		for _, r := range e.Rules {
			fmt.Fprintf(w, "  %d  phase %d", r.ID, r.Phase)
			if r.ParanoiaLevel > 0 {
				fmt.Fprintf(w, ", paranoia level %d", r.ParanoiaLevel)
			}
			if len(r.Tags) > 0 {
				fmt.Fprintf(w, ", tags %s", clean(strings.Join(r.Tags, " ")))
			}
			fmt.Fprintln(w)
			if r.Data != "" {
				fmt.Fprintf(w, "      data: %s\n", clean(truncate(r.Data, 200)))
			}
		}
	}
	if len(e.Headers) > 0 {
		fmt.Fprintln(w, "\nRequest headers")
		names := make([]string, 0, len(e.Headers))
		for k := range e.Headers {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			for _, v := range e.Headers[k] {
				fmt.Fprintf(w, "  %s: %s\n", clean(k), clean(v))
			}
		}
	}
	if e.RequestBody != "" {
		more := ""
		if e.RequestBodyTruncated {
			more = ", truncated"
		}
		fmt.Fprintf(w, "\nRequest body (%d bytes kept%s)\n  %s\n", len(e.RequestBody), more, clean(truncate(e.RequestBody, 2000)))
	}
}

func runAuditTail(c *command, args []string, stdout, stderr io.Writer) int {
	a := newAuditFlags(c, stderr, true)
	n := a.fs.Int("n", 10, "how many of the latest records to print first")
	a.fs.IntVar(n, "lines", 10, "same as -n")
	follow := a.fs.Bool("f", false, "keep printing new records until interrupted")
	a.fs.BoolVar(follow, "follow", false, "same as -f")
	interval := a.fs.Duration("interval", time.Second, "how often -f looks for new records")
	asJSON := a.fs.Bool("json", false, "print records as JSON lines")
	f, code, ok := a.parse(args, 0, stdout, stderr)
	if !ok {
		return code
	}
	if *n < 0 || *interval <= 0 {
		return c.usageError(stderr, a.fs, "-n must not be negative and --interval must be positive")
	}
	s, ctx, done, ok := a.start(stderr)
	if !ok {
		return 1
	}
	defer done()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	emit := func(e *audit.Entry) error {
		if *asJSON {
			return enc.Encode(e)
		}
		_, err := fmt.Fprintln(stdout, recordRow(e, "  "))
		return err
	}
	if !*follow {
		res, err := s.Search(ctx, f, store.Page{Limit: max(*n, 1)})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		entries := res.Entries[:min(*n, len(res.Entries))]
		for i := len(entries) - 1; i >= 0; i-- {
			if err := emit(entries[i]); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
		}
		return 0
	}
	fl, ok := s.(store.Follower)
	if !ok {
		fmt.Fprintln(stderr, "portcullis audit tail: this store cannot follow new records")
		return 1
	}
	if err := fl.Follow(ctx, f, *n, *interval, emit); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func runAuditExport(c *command, args []string, stdout, stderr io.Writer) int {
	a := newAuditFlags(c, stderr, true)
	format := a.fs.String("format", "jsonl", "output format: "+strings.Join(export.Formats, ", "))
	out := a.fs.String("o", "", "write to `FILE` (created 0600) instead of standard output")
	a.fs.StringVar(out, "output", "", "same as -o")
	f, code, ok := a.parse(args, 0, stdout, stderr)
	if !ok {
		return code
	}
	s, err := a.open(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer s.Close()
	var w io.Writer = stdout
	if *out != "" {
		file, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer file.Close()
		w = file
	}
	pv, _, _ := versions()
	ew, err := export.New(*format, w, export.Options{Version: pv})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	bar := newProgress(stderr, "exported")
	n, err := exportAll(ctx, s, f, ew, bar)
	bar.done()
	if cerr := ew.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *out != "" {
		fmt.Fprintf(stderr, "%d record(s) written to %s\n", n, *out)
	}
	return 0
}

// exportAll writes every record matching f: in file order from files,
// page by page (newest first) from a database.
func exportAll(ctx context.Context, s store.Store, f query.Filter, w export.Writer, bar *progress) (int, error) {
	n := 0
	if files, ok := s.(*store.Files); ok {
		err := files.Each(ctx, f, func(e *audit.Entry) error {
			n++
			bar.add(1)
			return w.Write(e)
		})
		return n, err
	}
	page := store.Page{Limit: 1000}
	for {
		res, err := s.Search(ctx, f, page)
		if err != nil {
			return n, err
		}
		for _, e := range res.Entries {
			if err := w.Write(e); err != nil {
				return n, err
			}
			n++
			bar.add(1)
		}
		if res.Next == "" {
			return n, nil
		}
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("export interrupted after %d record(s): %w", n, err)
		}
		page.After = res.Next
	}
}
