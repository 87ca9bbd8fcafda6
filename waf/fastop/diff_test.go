package fastop

import (
	"fmt"
	"os"
	pathpkg "path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"

	"github.com/portcullis-waf/portcullis/rules"
)

// extraPatterns are not in the CRS but probe the corners where this
// package could part ways with Coraza: byte patterns (and the quirks of
// Coraza's test for them), case folding beyond ASCII, empty-width
// assertions, more than nine groups, groups that take no part, Unicode
// classes, U+FFFD. They contain no double quote, so they embed in SecLang
// as they are.
var extraPatterns = []string{
	``, `\xff`, `a\xffb`, `\x{ff}`, `\\xff`, `[\x80-\xff]+`, `\xc3\xa9`, `\x{c3}\x{a9}`, `\x41`,
	`(?i)k`, `(?i)s+cript`, `(?i)é+`, `(?i)straße`, `ǅ`, `(?i)ǅ`, `(?i)[k-l]x`, `\x{212a}`, `(?i)\x{17f}`,
	`^abc$`, `(?m)^x`, `(?-m)^a|b$`, `\bword\b`, `\Bx\B`, `\Aabc\z`, `$`, `^`, `^$`, `\b`,
	`(a)(b)?(c)|(d)`, `((((((((((a))))))))))`, `(?P<n>x)y`, `(a|ab)(c|bcd)(d*)`, `(a*)+$`,
	`\p{Greek}+`, `\pL{3}`, `[^\x00-\x7f]`, `.`, `(?-s).`, `[\s\S]{2}`, `\x{fffd}`, `[^a]`,
	`\d{3,}`, `a{2,5}`, `(?U)a+b`, `x*`, `(?i)[k]`, `[^\n]+\n`, `\n\z`, `[\x00]`, `\x00`,
	`(?i)(?:union|select).*from`, `(?:etc|bin)/(?:passwd|sh)\b`, `<[a-z]+\s`, `'\s*or\s*'`,
}

// harnessRules writes two rules per pattern, with no transformation: one
// with capture on the request header X-Capture, which copies TX.0-TX.9
// into TX variables named after the rule so that captures can be compared,
// and one without capture (Coraza then calls MatchString) on X-Match.
func harnessRules(patterns []rxRule) string {
	var b strings.Builder
	b.WriteString("SecRuleEngine On\n")
	for i, p := range patterns {
		id := 1000000 + 2*i
		fmt.Fprintf(&b, "SecRule REQUEST_HEADERS:X-Match \"@%s %s\" \"id:%d,phase:1,pass,log,t:none\"\n", p.op(), p.Raw, id)
		fmt.Fprintf(&b, "SecRule REQUEST_HEADERS:X-Capture \"@%s %s\" \"id:%d,phase:1,pass,log,t:none,capture", p.op(), p.Raw, id+1)
		for g := 0; g <= 9; g++ {
			fmt.Fprintf(&b, ",setvar:'tx.c%d_%d=%%{tx.%d}'", i, g, g)
		}
		b.WriteString("\"\n")
	}
	return b.String()
}

// extraPm are @pm word lists probing the prefilter's refusals: an empty
// word (two spaces), a word of one letter, a word that is not UTF-8, the
// non-ASCII fold partners of k and s, words longer than an atom.
var extraPm = []string{
	"union  select", "a select", "x\xffy sel\xc3", "\xe2\x84\xaaill \xc5\xbfleep", "Kill ſleep",
	"passwd shadow", "javascript:alert onerror=", "verylongwordindeed anotherlongword",
}

type harness struct {
	patterns []rxRule
	stock    coraza.WAF // Coraza's own operators
	fast     coraza.WAF // this package's
	// args are the operators and arguments Coraza handed to the operator
	// factories when compiling the full rule set Portcullis builds by
	// default ("rx <pattern>", "pm <words>", "pmFromFile <file>").
	args map[string]bool
	// engines are whole rule sets (engineSettings), stock and fast.
	engines map[string][2]coraza.WAF
	// res are the patterns in this package's compiled form (in the order
	// of patterns), for the component checks.
	res []componentCase
}

type componentCase struct {
	rule rxRule
	c    *rxCompiled // @rx other than byte patterns
	pm   *pmCompiled // @pm, @pmFromFile
}

var (
	harnessOnce sync.Once
	theHarness  *harness
	harnessErr  error
)

// getHarness builds the stock WAF first, while Coraza's own operators are
// still registered, then registers this package's (process-wide, for the
// rest of the test binary) and builds the fast one.
func getHarness(t testing.TB) *harness {
	t.Helper()
	harnessOnce.Do(func() {
		h := &harness{args: map[string]bool{}}
		seen := map[string]bool{}
		for _, p := range crsOperators(t) {
			seen[p.op()+" "+p.Pattern] = true
			h.patterns = append(h.patterns, p)
		}
		// Portcullis's own rules (engine settings) also use @rx.
		for _, p := range patternsIn("rules.Build", rules.Text(rules.Build(stockCRS()))) {
			if !seen["rx "+p.Pattern] {
				seen["rx "+p.Pattern] = true
				h.patterns = append(h.patterns, p)
			}
		}
		for _, p := range extraPatterns {
			if !seen["rx "+p] {
				seen["rx "+p] = true
				h.patterns = append(h.patterns, rxRule{ID: "extra", Raw: p, Pattern: p})
			}
		}
		for _, p := range extraPm {
			h.patterns = append(h.patterns, rxRule{ID: "extra", Op: "pm", Raw: p, Pattern: p})
		}
		text := harnessRules(h.patterns)
		wafConfig := func() coraza.WAFConfig {
			return coraza.NewWAFConfig().WithRootFS(rules.FS()).WithDirectives(text)
		}
		if h.stock, harnessErr = coraza.NewWAF(wafConfig()); harnessErr != nil {
			return
		}
		h.engines = map[string][2]coraza.WAF{}
		for level, s := range engineSettings() {
			var e [2]coraza.WAF
			if e[0], harnessErr = compileRules(s); harnessErr != nil {
				return
			}
			h.engines[level] = e
		}
		var mu sync.Mutex
		record := func(op string, factory plugintypes.OperatorFactory) plugintypes.OperatorFactory {
			return func(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
				arg := o.Arguments
				if op == "pmFromFile" && len(o.Path) > 0 {
					arg = pathpkg.Join(o.Path[0], arg)
				}
				mu.Lock()
				h.args[op+" "+arg] = true
				mu.Unlock()
				return factory(o)
			}
		}
		plugins.RegisterOperator("rx", record("rx", NewRx))
		plugins.RegisterOperator("pm", record("pm", NewPm))
		plugins.RegisterOperator("pmFromFile", record("pmFromFile", NewPmFromFile))
		plugins.RegisterOperator("pmf", record("pmFromFile", NewPmFromFile))
		if h.fast, harnessErr = coraza.NewWAF(wafConfig()); harnessErr != nil {
			return
		}
		for level, s := range engineSettings() {
			e := h.engines[level]
			if e[1], harnessErr = compileRules(s); harnessErr != nil {
				return
			}
			h.engines[level] = e
		}
		clear(h.args)
		full := rules.Text(rules.Build(stockCRS()))
		if _, harnessErr = coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(rules.FS()).WithDirectives(full)); harnessErr != nil {
			return
		}
		for _, p := range h.patterns {
			cc := componentCase{rule: p}
			switch {
			case p.Op == "pm":
				op, _ := NewPm(plugintypes.OperatorOptions{Arguments: p.Pattern})
				cc.pm = op.(*pmOperator).pmCompiled
			case p.Op == "pmFromFile":
				op, err := NewPmFromFile(plugintypes.OperatorOptions{Arguments: p.Pattern, Path: []string{""}, Root: rules.FS()})
				if err != nil {
					harnessErr = err
					return
				}
				cc.pm = op.(*pmOperator).pmCompiled
			case !matchesBytes(flags + p.Pattern):
				op, err := NewRx(plugintypes.OperatorOptions{Arguments: p.Pattern})
				if err != nil {
					harnessErr = err
					return
				}
				cc.c = op.(*rxOperator).rxCompiled
			}
			h.res = append(h.res, cc)
		}
		theHarness = h
	})
	if harnessErr != nil {
		t.Fatal(harnessErr)
	}
	return theHarness
}

// patternsIn reads the @rx patterns of SecLang text.
func patternsIn(origin, text string) []rxRule {
	var out []rxRule
	for _, line := range logicalLines(text) {
		if !strings.HasPrefix(line, "SecRule ") {
			continue
		}
		raw, _, ok := ruleOperator(line)
		if !ok {
			continue
		}
		raw = strings.TrimPrefix(raw, "!")
		if !strings.HasPrefix(raw, "@rx ") {
			continue
		}
		p := strings.TrimSpace(raw[len("@rx "):])
		out = append(out, rxRule{ID: origin, Raw: p, Pattern: strings.ReplaceAll(p, `\"`, `"`)})
	}
	return out
}

// outcome is what a transaction of the harness decided: the rules that
// matched, and every TX variable (the copied captures).
type outcome struct {
	matched []int
	tx      []string
}

// run evaluates the capturing rules on input and, with match, the others.
func run(w coraza.WAF, input string, match bool) (outcome, error) {
	tx := w.NewTransaction()
	defer tx.Close()
	tx.AddRequestHeader("X-Capture", input)
	if match {
		tx.AddRequestHeader("X-Match", input)
	}
	tx.ProcessRequestHeaders()
	var o outcome
	for _, mr := range tx.MatchedRules() {
		o.matched = append(o.matched, mr.Rule().ID())
	}
	slices.Sort(o.matched)
	state, ok := tx.(plugintypes.TransactionState)
	if !ok {
		return o, fmt.Errorf("transaction %T exposes no state", tx)
	}
	for _, md := range state.Variables().TX().FindAll() {
		o.tx = append(o.tx, md.Key()+"="+md.Value())
	}
	slices.Sort(o.tx)
	return o, nil
}

func (a outcome) equal(b outcome) bool {
	return slices.Equal(a.matched, b.matched) && slices.Equal(a.tx, b.tx)
}

// diff describes how two outcomes differ, pattern by pattern.
func (h *harness) diff(stock, fast outcome) string {
	var b strings.Builder
	name := func(id int) string {
		p := h.patterns[(id-1000000)/2]
		return fmt.Sprintf("rule %d (pattern of %s %q)", id, p.ID, truncate(p.Pattern, 80))
	}
	for _, id := range stock.matched {
		if !slices.Contains(fast.matched, id) {
			fmt.Fprintf(&b, "\n  stock matched, fast did not: %s", name(id))
		}
	}
	for _, id := range fast.matched {
		if !slices.Contains(stock.matched, id) {
			fmt.Fprintf(&b, "\n  fast matched, stock did not: %s", name(id))
		}
	}
	if !slices.Equal(stock.tx, fast.tx) {
		fmt.Fprintf(&b, "\n  captures differ:\n    stock %q\n    fast  %q", truncate(strings.Join(stock.tx, " "), 300), truncate(strings.Join(fast.tx, " "), 300))
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// compare runs input through both WAFs of the harness (the rules with
// capture always, those without when match is set), then checks each
// pattern's filters against the stock answer: the prefilter never rejects
// an input the regexp matches, and the DFA gives exactly the regexp's
// answer (the operator trusts it only when it says "no"; this checks "yes"
// as well). It counts what it checked into st.
func (h *harness) compare(t testing.TB, input string, match bool, st *stats) {
	stock, err := run(h.stock, input, match)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := run(h.fast, input, match)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(h.patterns))
	if match {
		n *= 2
	}
	st.evals.Add(n)
	if !stock.equal(fast) {
		st.differ.Add(1)
		t.Errorf("input %q:%s", truncate(input, 200), h.diff(stock, fast))
	}

	// The capturing rule of pattern i matched under stock Coraza exactly
	// when Go's regexp matches.
	for i, cc := range h.res {
		_, want := slices.BinarySearch(stock.matched, 1000000+2*i+1)
		if cc.pm != nil {
			if cc.pm.pf != nil && !cc.pm.pf.mayMatch("", input) && want {
				st.wrong.Add(1)
				t.Errorf("prefilter rejects an input @pm matches: %s %q, input %q", cc.rule.ID, truncate(cc.rule.Pattern, 80), truncate(input, 200))
			}
			continue
		}
		if cc.c == nil {
			continue
		}
		st.checks.Add(1)
		if cc.c.pf != nil && !cc.c.pf.mayMatch("", input) {
			st.pfRejects.Add(1)
			if want {
				st.wrong.Add(1)
				t.Errorf("prefilter rejects an input the regexp matches: pattern of %s %q, input %q", cc.rule.ID, truncate(cc.rule.Pattern, 80), truncate(input, 200))
			}
		}
		if cc.c.automaton() != nil {
			got, done := cc.c.dfa.mayMatch(input)
			if done && got != want {
				st.wrong.Add(1)
				t.Errorf("DFA says %v, regexp %v: pattern of %s %q, input %q", got, want, cc.rule.ID, truncate(cc.rule.Pattern, 80), truncate(input, 200))
			}
			if done && !got {
				st.dfaRejects.Add(1)
			}
		}
	}
}

type stats struct {
	evals, differ                        atomic.Int64 // through Coraza
	checks, pfRejects, dfaRejects, wrong atomic.Int64 // components
}

// TestDifferential is the proof that the operator changes no verdict: every
// @rx pattern of the CRS (and of Portcullis's own rules, and extraPatterns),
// against every input of the corpus, through Coraza with its own @rx and
// with this package's, with capture (and without, for a quarter of the
// inputs: without capture Coraza only asks MatchString, and the component
// check below compares the filters with that answer on every input).
func TestDifferential(t *testing.T) {
	h := getHarness(t)
	// Every pattern Coraza compiles for the default rule set is covered.
	covered := map[string]bool{}
	for _, p := range h.patterns {
		covered[p.op()+" "+p.Pattern] = true
	}
	for arg := range h.args {
		if !covered[arg] {
			t.Errorf("Coraza compiles @%s, which the harness does not cover", truncate(arg, 100))
		}
	}
	inputs := testCorpus(t)
	var st stats
	forEach(inputs, func(i int, in string) {
		if st.differ.Load()+st.wrong.Load() > 20 {
			return // enough to read; the rest would only repeat
		}
		h.compare(t, in, i%4 == 0, &st)
	})
	t.Logf("differential: %d patterns (%d compiled by the default rule set) × %d inputs: %d rule evaluations compared, %d inputs differ",
		len(h.patterns), len(h.args), len(inputs), st.evals.Load(), st.differ.Load())
	t.Logf("components: %d pattern × input checks: prefilter rejected %.1f%%, DFA rejected %.1f%%, %d wrong",
		st.checks.Load(), 100*float64(st.pfRejects.Load())/float64(st.checks.Load()),
		100*float64(st.dfaRejects.Load())/float64(st.checks.Load()), st.wrong.Load())
}

// testCorpus is the corpus for this run: full with FASTOP_FULL=1, a tenth
// of the default with -short.
func testCorpus(t testing.TB) []string {
	inputs := corpus(t, os.Getenv("FASTOP_FULL") == "1")
	if testing.Short() {
		var some []string
		for i := 0; i < len(inputs); i += 10 {
			some = append(some, inputs[i])
		}
		inputs = some
	}
	return inputs
}

// forEach runs f over inputs on every CPU.
func forEach(inputs []string, f func(int, string)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(inputs) {
					return
				}
				f(i, inputs[i])
			}
		}()
	}
	wg.Wait()
}

// FuzzDifferential feeds fuzzed inputs to every pattern through both WAFs
// and to the components. Seeds: edge cases and a sample of the corpus.
func FuzzDifferential(f *testing.F) {
	for _, s := range []string{"", "\xff", "\u212a", "select * from users", "<script>", "a\nb", "${jndi:x}"} {
		f.Add(s)
	}
	h := getHarness(f)
	f.Fuzz(func(t *testing.T, input string) {
		h.compare(t, input, true, &stats{})
	})
}
