package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
	"github.com/portcullis-waf/portcullis/review/explain"
	"github.com/portcullis-waf/portcullis/review/replay"
)

// runAuditExplain prints the smallest exclusion that lets a blocked
// request through, proven by judging the recorded request again. It exits
// 0 only for a verified fix: a request judged a real attack gets its
// exclusions commented out under a warning, and exit 1.
func runAuditExplain(c *command, args []string, stdout, stderr io.Writer) int {
	a := newAuditFlags(c, stderr, false)
	anyMethod := a.fs.Bool("any-method", false, "do not narrow the exclusion to the request's method")
	if _, code, ok := a.parse(args, 1, stdout, stderr); !ok {
		return code
	}
	id := a.args[0]
	cfgPath := a.config
	if cfgPath == "" {
		cfgPath = "portcullis.yaml"
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	s, ctx, done, ok := a.start(stderr)
	if !ok {
		return 1
	}
	defer done()
	e, ok := getRecord(ctx, s, id, stderr)
	if !ok {
		return 1
	}
	sug, err := explain.Explain(ctx, cfg, e, explain.Options{AnyMethod: *anyMethod})
	if err != nil {
		fmt.Fprintf(stderr, "record %s: %v\n", e.ID, err)
		return 1
	}
	fmt.Fprint(stdout, sug.YAML())
	if len(sug.Attack) > 0 {
		fmt.Fprintf(stderr, "record %s: not a false positive by the evidence (%s in %s): no fix suggested\n", e.ID, sug.Attack[0].Reason, sug.Attack[0].Variable)
	}
	if !sug.Fix() {
		return 1
	}
	return 0
}

// runAuditReplay judges stored requests again with a candidate
// configuration and reports what would change.
func runAuditReplay(c *command, args []string, stdout, stderr io.Writer) int {
	a := newAuditFlags(c, stderr, true)
	candidatePath := a.fs.String("candidate", "", "candidate configuration `FILE` to judge the records with (required)")
	// -c/--config name Portcullis's running configuration here too (they
	// named the candidate before); a second one is that old spelling.
	var configs []string
	for _, name := range []string{"c", "config"} {
		a.fs.Lookup(name).Value = flagFunc(func(s string) error { configs = append(configs, s); a.config = s; return nil })
	}
	id := a.fs.String("id", "", "replay only this record (a unique prefix of its id is enough)")
	limit := a.fs.Int("limit", 100000, "replay at most this many records, newest first")
	asJSON := a.fs.Bool("json", false, "print every changed record as a JSON line")
	f, code, ok := a.parse(args, 0, stdout, stderr)
	if !ok {
		return code
	}
	if *candidatePath == "" {
		if len(configs) == 2 {
			return c.usageError(stderr, a.fs, "--config now names the running configuration, as in every command; give the candidate with --candidate FILE")
		}
		return c.usageError(stderr, a.fs, "give the candidate configuration with --candidate FILE")
	}
	if len(configs) > 1 {
		return c.usageError(stderr, a.fs, "give the running configuration once (-c and --config are the same flag)")
	}
	if *limit < 1 {
		return c.usageError(stderr, a.fs, "--limit must be at least 1")
	}
	candidate, err := config.Load(*candidatePath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	in, err := gateway.NewInspector(candidate, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	s, ctx, done, ok := a.start(stderr)
	if !ok {
		return 1
	}
	defer done()

	var rp replay.Report
	bar := newProgress(stderr, "replayed")
	judge := func(e *audit.Entry) error {
		defer bar.add(1)
		res, err := replay.Judge(ctx, in, e)
		if err != nil {
			bar.done()
			fmt.Fprintf(stderr, "warning: record %s not replayed: %v\n", e.ID, err)
			return nil
		}
		rp.Add(res)
		return ctx.Err()
	}
	if *id != "" {
		e, ok := getRecord(ctx, s, *id, stderr)
		if !ok {
			return 1
		}
		_ = judge(e)
	} else if err := eachRecord(ctx, s, f, *limit, judge); err != nil {
		bar.done()
		fmt.Fprintln(stderr, err)
		return 1
	}
	bar.done()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		for _, c := range rp.Changes {
			_ = enc.Encode(map[string]any{"id": c.Record.ID, "time": c.Record.Time, "before": c.Before, "after": c.After,
				"method": c.Record.Method, "host": c.Record.Host, "uri": c.Record.URI, "rules_before": ruleIDs(c.Record.Rules), "rules_after": ruleIDs(c.Now.Rules), "notes": c.Notes})
		}
		return 0
	}
	printReplay(stdout, *candidatePath, rp)
	return 0
}

// eachRecord calls fn for the records matching f, newest first, page by
// page, at most limit of them.
func eachRecord(ctx context.Context, s store.Store, f query.Filter, limit int, fn func(*audit.Entry) error) error {
	page := store.Page{Limit: 500}
	for n := 0; n < limit; {
		res, err := s.Search(ctx, f, page)
		if err != nil {
			return err
		}
		for _, e := range res.Entries {
			if n >= limit {
				return nil
			}
			if err := fn(e); err != nil {
				return err
			}
			n++
		}
		if res.Next == "" {
			return nil
		}
		page.After = res.Next
	}
	return nil
}

// ruleIDs lists the rules that matched, bookkeeping left out (as in the
// search listing): the detection rules, and custom or engine rules, which
// may block on their own.
func ruleIDs(rules []audit.MatchedRule) []int {
	var out []int
	for _, r := range rules {
		if !audit.IsBookkeeping(r) {
			out = append(out, r.ID)
		}
	}
	return out
}

func printReplay(w io.Writer, candidate string, rp replay.Report) {
	fmt.Fprintf(w, "Replayed %d records against %s:\n", rp.Total, candidate)
	fmt.Fprintf(w, "  was blocked, would pass:   %d\n", rp.NowPass)
	fmt.Fprintf(w, "  was not blocked, would be: %d\n", rp.NowBlock)
	fmt.Fprintf(w, "  detected <-> allowed:      %d\n", rp.Other)
	fmt.Fprintf(w, "  unchanged:                 %d\n", rp.Same)
	fmt.Fprintf(w, "  not replayable:            %d (decided by bans, lists, GeoIP or rate limits)\n", rp.Skipped)
	if rp.WithNotes > 0 {
		fmt.Fprintf(w, "  judged on redacted or cut input: %d (marked *; redacted values replay as %q, so their verdicts may differ from the original)\n", rp.WithNotes, audit.Redacted)
	}
	if len(rp.Changes) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANGE\tTIME\tID\tREQUEST\tRULES BEFORE\tRULES NOW")
	for _, c := range rp.Changes {
		mark := ""
		if len(c.Notes) > 0 {
			mark = "*"
		}
		change := c.Before + " -> " + c.After
		req := clean(truncate(c.Record.Method+" "+c.Record.Host+c.Record.URI, 70))
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\n", change, mark, c.Record.Time.UTC().Format(time.DateTime), c.Record.ID, req,
			joinInts(ruleIDs(c.Record.Rules)), joinInts(ruleIDs(c.Now.Rules)))
	}
	_ = tw.Flush()
}

func joinInts(ids []int) string {
	if len(ids) == 0 {
		return "-"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

// flagFunc is a flag.Value that calls a function with each value given.
type flagFunc func(string) error

func (f flagFunc) Set(s string) error { return f(s) }
func (f flagFunc) String() string     { return "" }
