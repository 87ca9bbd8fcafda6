package explain

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	libinjection "github.com/corazawaf/libinjection-go"
	"golang.org/x/net/html"
	"mvdan.cc/sh/v3/syntax"

	"github.com/portcullis-waf/portcullis/audit"
)

// Evidence says that a blocked request was a real attack, not a false
// positive: a value that, parsed as the code it is aimed at, does more than
// carry data. Explain never offers an exclusion for it as a fix.
//
// The signal is decided per value the excluded rules matched, and only for
// the attack classes those rules are tagged with (attack-xss, attack-sqli,
// attack-rce; untagged custom rules get every check):
//
//   - xss: the value parsed as HTML (golang.org/x/net/html's tokenizer, as a
//     browser reads it) as text, or as a quoted attribute value that it
//     leaves with its own quote, holds markup that runs script: a <script>
//     element, an on* event handler attribute, a javascript:, vbscript: or
//     data:text/html URL in an attribute that loads or links one (or a
//     <meta> refresh to one), or the whole value is such a URL. Markup that
//     only formats (<b>, <p style>, an <iframe> of a video) is not evidence;
//     libinjection's XSS verdict, which flags it, is therefore not used.
//   - sqli: libinjection (the tokenizer behind CRS 942100) finds SQL that
//     leaves a string or number literal: its fingerprint is named.
//   - shell: the value, placed as one argument of a command (bare, in single
//     or in double quotes) and parsed by mvdan.cc/sh's POSIX/Bash parser,
//     runs a command substitution, or ends the argument after at most one
//     word and starts another command. Text that merely contains commands
//     after several words (a snippet, a how-to) is not evidence.
//
// The anomaly score is not part of the decision: false positives score as
// high as attacks (a shell snippet in a JSON field scores 20, the same as
// an <img onerror> attack), so it is reported, not weighed.
type Evidence struct {
	Variable string // the matched variable, e.g. ARGS:q
	Class    string // "xss", "sqli" or "shell"
	Reason   string // what the value does, in words
	Value    string // the value judged, cut for display
}

// Attack classes of Evidence.
const (
	ClassXSS   = "xss"
	ClassSQLi  = "sqli"
	ClassShell = "shell"
)

// maxJudged bounds each value judged, so a record's largest body costs
// linear time and little memory; evidence past it is not looked for.
const maxJudged = 64 << 10

// attackEvidence judges the values of the variables the rules matched.
func attackEvidence(e *audit.Entry, rules []audit.MatchedRule) []Evidence {
	type target struct {
		variable string
		classes  []string
		values   []string
	}
	var targets []*target
	for _, r := range rules {
		if r.MatchedVariable == "" {
			continue
		}
		i := slices.IndexFunc(targets, func(t *target) bool { return t.variable == r.MatchedVariable })
		if i < 0 {
			targets = append(targets, &target{variable: r.MatchedVariable, values: variableValues(e, r.MatchedVariable)})
			i = len(targets) - 1
		}
		t := targets[i]
		for _, c := range ruleClasses(r) {
			if !slices.Contains(t.classes, c) {
				t.classes = append(t.classes, c)
			}
		}
		if r.MatchedData != "" && !slices.Contains(t.values, r.MatchedData) {
			t.values = append(t.values, r.MatchedData)
		}
	}
	var out []Evidence
	for _, t := range targets {
		for _, c := range []string{ClassXSS, ClassSQLi, ClassShell} {
			if !slices.Contains(t.classes, c) {
				continue
			}
			for _, v := range t.values {
				if reason, ok := judge(c, v); ok {
					out = append(out, Evidence{Variable: t.variable, Class: c, Reason: reason, Value: clip(v, 120)})
					break
				}
			}
		}
	}
	return out
}

// ruleClasses are the evidence classes a rule's tags ask for; a rule
// without attack tags (a custom rule) gets every one.
func ruleClasses(r audit.MatchedRule) []string {
	var out []string
	tagged := false
	for _, tag := range r.Tags {
		switch tag {
		case "attack-xss":
			out = append(out, ClassXSS)
		case "attack-sqli":
			out = append(out, ClassSQLi)
		case "attack-rce":
			out = append(out, ClassShell)
		}
		tagged = tagged || strings.HasPrefix(tag, "attack-")
	}
	if !tagged {
		return []string{ClassXSS, ClassSQLi, ClassShell}
	}
	return out
}

func judge(class, v string) (string, bool) {
	if len(v) > maxJudged {
		v = v[:maxJudged]
	}
	switch class {
	case ClassXSS:
		return executableMarkup(v)
	case ClassSQLi:
		if ok, fp := libinjection.IsSQLi(v); ok {
			return fmt.Sprintf("SQL that leaves its string or number literal (libinjection fingerprint %s)", fp), true
		}
	case ClassShell:
		return shellCommand(v)
	}
	return "", false
}

// urlAttributes load or follow a URL; a javascript: URL there runs script.
var urlAttributes = []string{"href", "src", "action", "formaction", "data", "xlink:href", "background", "poster", "lowsrc", "dynsrc", "codebase", "srcdoc"}

// executableMarkup reports markup in v that would run script if an
// application put v into a page unescaped: as text, or as the value of a
// quoted attribute that v leaves with its own quote.
func executableMarkup(v string) (string, bool) {
	if scriptURL(v) {
		return "a " + urlScheme(v) + " URL", true
	}
	if reason, ok := markupRuns(v, ""); ok {
		return reason, true
	}
	for _, q := range []string{`"`, "'"} {
		if !strings.Contains(v, q) {
			continue
		}
		if reason, ok := markupRuns("<x a="+q+v+q+">", "a"); ok {
			return "markup that leaves an attribute value (" + q + "): " + strings.TrimPrefix(reason, "executable markup: "), true
		}
	}
	return "", false
}

// markupRuns tokenizes doc as HTML and reports the first element that runs
// script; attribute own (the placeholder a value was put in) is skipped.
func markupRuns(doc, own string) (string, bool) {
	z := html.NewTokenizer(strings.NewReader(doc))
	z.SetMaxBuf(maxJudged + 16)
	for {
		switch z.Next() {
		case html.ErrorToken:
			return "", false
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if tok.Data == "script" {
				return "executable markup: a <script> element", true
			}
			for i, a := range tok.Attr {
				key := strings.ToLower(a.Key)
				if i == 0 && own != "" && key == own {
					continue
				}
				switch {
				case handlerName(key):
					return fmt.Sprintf("executable markup: <%s> with an %s event handler", tok.Data, key), true
				case key == "srcdoc" && tok.Data == "iframe":
					return "executable markup: an <iframe> with inline content (srcdoc)", true
				case slices.Contains(urlAttributes, key) && scriptURL(a.Val):
					return fmt.Sprintf("executable markup: <%s %s> with a %s URL", tok.Data, key, urlScheme(a.Val)), true
				case tok.Data == "meta" && key == "content" && refreshToScript(a.Val):
					return "executable markup: a <meta> refresh to a script URL", true
				}
			}
		}
	}
}

// scriptURL reports whether u, read as a browser reads a URL attribute
// (leading spaces and control characters skipped, tabs and line breaks
// inside the scheme ignored), has a scheme that runs script.
func scriptURL(u string) bool {
	s := urlScheme(u)
	return s == "javascript:" || s == "vbscript:" || s == "data:text/html"
}

// handlerName reports whether an attribute name is an event handler's:
// "on" and letters (onerror, onload); a name with other characters, which
// a browser keeps as an unknown attribute, runs nothing.
func handlerName(key string) bool {
	rest, ok := strings.CutPrefix(key, "on")
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// refreshToScript reports whether a <meta http-equiv=refresh> content
// ("0; url=…") sends the page to a script URL.
func refreshToScript(content string) bool {
	i := strings.Index(strings.ToLower(content), "url=")
	return i >= 0 && scriptURL(strings.Trim(content[i+4:], `'"`))
}

func urlScheme(u string) string {
	var b strings.Builder
	for _, c := range u {
		if c <= ' ' {
			continue // browsers drop these from a URL's scheme
		}
		b.WriteRune(c)
		if b.Len() >= 14 {
			break
		}
	}
	s := strings.ToLower(b.String())
	for _, scheme := range []string{"javascript:", "vbscript:", "data:text/html"} {
		if strings.HasPrefix(s, scheme) {
			return scheme
		}
	}
	return ""
}

// shellCommand reports whether v, placed as one argument of a shell
// command, makes the shell run something else.
func shellCommand(v string) (string, bool) {
	for _, ctx := range []struct{ open, close string }{{"", ""}, {"'", "'"}, {`"`, `"`}} {
		f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader("cmd "+ctx.open+v+ctx.close+"\n"), "")
		if err != nil {
			continue
		}
		var subst string
		syntax.Walk(f, func(n syntax.Node) bool {
			switch n := n.(type) {
			case *syntax.CmdSubst:
				if len(n.Stmts) > 0 && subst == "" {
					subst = "a command substitution: " + clip(printNode(n), 60)
				}
			case *syntax.ProcSubst:
				if len(n.Stmts) > 0 && subst == "" {
					subst = "a process substitution: " + clip(printNode(n), 60)
				}
			}
			return subst == ""
		})
		if subst != "" {
			return subst, true
		}
		var calls []*syntax.CallExpr
		for _, st := range f.Stmts {
			calls = appendCalls(calls, st)
		}
		// The first command is "cmd" and what v put in its argument; one
		// word of v there is an argument, several are text.
		if len(calls) > 1 && calls[0] != nil && len(calls[0].Args) <= 2 {
			for _, c := range calls[1:] {
				if c != nil && len(c.Args) > 0 && commandName(c.Args[0]) {
					return "a second shell command after the argument: " + clip(printNode(c), 60), true
				}
			}
		}
	}
	return "", false
}

// commandName reports whether w can name a program: Unix commands are
// lower-case or paths, so a capitalised word ("Tom & Jerry") is prose.
func commandName(w *syntax.Word) bool {
	lit := w.Lit()
	if lit == "" {
		return true // built from expansions or quotes: could be anything
	}
	c := lit[0]
	return c < 'A' || c > 'Z'
}

// appendCalls lists the simple commands of st in order: those joined by
// ;, &, |, && and ||. Other compound commands count as one (nil) command.
func appendCalls(calls []*syntax.CallExpr, st *syntax.Stmt) []*syntax.CallExpr {
	switch c := st.Cmd.(type) {
	case *syntax.CallExpr:
		return append(calls, c)
	case *syntax.BinaryCmd:
		return appendCalls(appendCalls(calls, c.X), c.Y)
	}
	return append(calls, nil)
}

func printNode(n syntax.Node) string {
	var b strings.Builder
	if err := syntax.NewPrinter(syntax.SingleLine(true)).Print(&b, n); err != nil {
		return ""
	}
	return b.String()
}

// variableValues returns the value a rule variable had in the recorded
// request, as the application reads it (decoded), when the record keeps
// it: query and form arguments, JSON members, headers, cookies, names, the
// path and the body.
func variableValues(e *audit.Entry, variable string) []string {
	name, key, _ := strings.Cut(variable, ":")
	rawQuery := ""
	if _, q, ok := strings.Cut(e.URI, "?"); ok {
		rawQuery = q
	}
	header := http.Header(e.Headers)
	var out []string
	switch name {
	case "ARGS", "ARGS_GET", "ARGS_POST":
		if name != "ARGS_POST" {
			q, _ := url.ParseQuery(rawQuery) // the pairs that parse
			out = append(out, q[key]...)
		}
		if name != "ARGS_GET" {
			out = append(out, bodyArgs(e.RequestBody, header.Get("Content-Type"), key)...)
		}
	case "ARGS_NAMES", "ARGS_GET_NAMES", "ARGS_POST_NAMES":
		out = append(out, key)
	case "REQUEST_HEADERS":
		out = append(out, header.Values(key)...)
	case "REQUEST_COOKIES":
		r := http.Request{Header: http.Header{"Cookie": header.Values("Cookie")}}
		if c, err := r.Cookie(key); err == nil {
			out = append(out, c.Value)
		}
	case "REQUEST_URI", "REQUEST_URI_RAW", "REQUEST_LINE":
		out = append(out, e.URI)
		if u, err := url.PathUnescape(e.URI); err == nil {
			out = append(out, u)
		}
	case "REQUEST_FILENAME", "REQUEST_BASENAME":
		out = append(out, requestPath(e.URI))
	case "QUERY_STRING":
		out = append(out, rawQuery)
	case "REQUEST_BODY":
		out = append(out, e.RequestBody)
	}
	return slices.DeleteFunc(out, func(v string) bool { return v == "" || v == audit.Redacted })
}

// bodyArgs returns the values of argument key in a recorded urlencoded or
// JSON body. The engine names JSON members by their path: json.a.b for
// {"a":{"b":…}}, json.a.0 for the first element of an array.
func bodyArgs(body, contentType, key string) []string {
	if body == "" {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/x-www-form-urlencoded":
		v, _ := url.ParseQuery(body)
		return v[key]
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		path, ok := strings.CutPrefix(key, "json")
		if !ok {
			return nil
		}
		var doc any
		if json.Unmarshal([]byte(body), &doc) != nil {
			return nil
		}
		for _, part := range strings.Split(strings.TrimPrefix(path, "."), ".") {
			if part == "" {
				continue
			}
			switch d := doc.(type) {
			case map[string]any:
				doc = d[part]
			case []any:
				i, err := strconv.Atoi(part)
				if err != nil || i < 0 || i >= len(d) {
					return nil
				}
				doc = d[i]
			default:
				return nil
			}
		}
		switch d := doc.(type) {
		case string:
			return []string{d}
		case float64, bool:
			return []string{fmt.Sprint(d)}
		}
	}
	return nil
}

// clip cuts s to at most n bytes (on a rune boundary) for display.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
