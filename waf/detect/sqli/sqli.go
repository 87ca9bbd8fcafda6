// Package sqli detects SQL injection: a value that, placed in a SQL query
// as a number, inside a '…' or "…" string literal, or after a closed
// parenthesis, ends that literal and continues as valid SQL that changes
// the query (boolean logic, UNION SELECT, stacked statements, delays,
// clauses, a comment that cuts the rest of the query).
//
// Place in the request path: one of the waf stage's detectors, run on each
// decoded variant (waf/decode) of each request value.
//
// Design: libinjection (in Coraza as libinjection-go) tokenises a value in
// three quoting contexts and compares a five-token fingerprint with a list
// of known-bad shapes. We keep its idea — the quoting contexts, judging
// token shape not words — but check the whole continuation with a real
// SQL grammar (lexer + recursive-descent parser over the union of the
// MySQL, PostgreSQL, MSSQL, Oracle and SQLite dialects): English with an
// apostrophe ("O'Brien and friends") fails the grammar at once, while
// "x' AND '1'='1" parses. Full SQL parsers (vitess's, xwb1989/sqlparser)
// accept only complete statements of one dialect, allocate an AST and
// are generated yacc parsers; a continuation fragment is not a statement,
// and every value of every request goes through here, so they do not fit.
// libinjection's verdict is recorded as a second opinion (see Detect).
package sqli

import (
	"strings"

	"github.com/corazawaf/libinjection-go"
	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector is the SQL injection detector. The zero value is ready to use.
type Detector struct{}

var _ detect.Detector = Detector{}

// New returns the detector.
func New() Detector { return Detector{} }

// Class implements detect.Detector.
func (Detector) Class() detect.Class { return detect.SQLi }

// MaxLen is the longest value examined; longer values are judged on their
// first MaxLen bytes (a query fragment is short; bodies are split into
// fields before detection).
const MaxLen = 8192

// interesting marks the bytes without which no context can break out:
// quotes, comment starts, parentheses, operators, separators.
var interesting = func() (t [256]bool) {
	for _, c := range []byte("'\"`;()=<>|&-#/*@,!~^+%") {
		t[c] = true
	}
	return t
}()

// Prefilter reports whether v could possibly be SQL injection: values
// without any quote, operator, comment or parenthesis byte cannot end a
// literal or join a condition. It does not allocate.
func Prefilter(v string) bool {
	// A value that starts with a number may continue it with keywords
	// alone ("1 LIMIT 1 UNION SELECT 1").
	for i := 0; i < len(v) && i < 8; i++ {
		if c := v[i]; isDigit(c) {
			return true
		} else if c != ' ' && c != '\t' {
			break
		}
	}
	for i := 0; i < len(v); i++ {
		if interesting[v[i]] {
			return true
		}
	}
	// "exec xp_cmdshell": a procedure call needs no punctuation.
	t := v
	for len(t) > 0 && (t[0] == ' ' || t[0] == '\t') {
		t = t[1:]
	}
	return len(t) > 5 && equalFold(t[:4], "exec") && (t[4] == ' ' || t[4]|0x20 == 'u')
}

type context struct {
	quote byte
	name  string
}

var contexts = [...]context{
	{0, "number"},
	{'\'', "single-quoted string"},
	{'"', "double-quoted string"},
	{'`', "backquoted identifier"},
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

// run is Detect that also reports the work done (token inspections).
func (d Detector) run(in detect.Input) (detect.Finding, bool, int) {
	v := in.Value
	if len(v) > MaxLen {
		v = v[:MaxLen]
	}
	if in.Where == detect.WhereFileName {
		// A file name's extension is the client's, appended after the
		// part an application might store or query with.
		if i := strings.LastIndexByte(v, '.'); i > 0 && len(v)-i <= 6 && isAlnumString(v[i+1:]) {
			if f, ok, n := d.run(detect.Input{Value: v[:i], Where: detect.WhereQuery, Name: in.Name}); ok {
				return f, ok, n
			}
		}
	}
	if !Prefilter(v) {
		return detect.Finding{}, false, 0
	}
	var best result
	steps := 0
	var l lexer
	l.s = v
	for mode := 0; mode < 2; mode++ {
		if mode == 1 {
			// Second pass only when an inline comment touches a word and
			// so may split a keyword (UN/**/ION); "*/*" in an Accept
			// header does not.
			if !wordComment(v) {
				break
			}
			l.joinComments = true
		}
		for k, c := range contexts {
			if c.quote != 0 && indexByte(v, c.quote) < 0 {
				continue
			}
			r := judge(&l, c)
			steps += r.steps
			if r.score > best.score {
				best = r
			}
			if k == 0 {
				// the same tokens, judged as a whole value
				r := judgeWhole(&l)
				steps += r.steps
				if r.score > best.score {
					best = r
				}
			}
		}
	}
	if best.score < 80 && strings.Contains(v, "(") {
		// "1(select*from(select(sleep(5)))d)": a parenthesised subquery
		// that calls a delay function is evidence wherever it sits, even
		// when what surrounds it does not parse; in every context the
		// value may close ("' (SELECT 0 WHERE 1=1 AND SLEEP(5)) '").
		for _, c := range contexts {
			if c.quote != 0 && indexByte(v, c.quote) < 0 {
				continue
			}
			if !l.lex(c.quote) || l.n == 0 || l.trunc {
				continue
			}
			r := delaySubquery(&l)
			steps += r.steps
			if r.score > best.score {
				best = r
			}
		}
	}
	if best.score < minScore {
		return detect.Finding{}, false, steps
	}
	if in.Where == detect.WhereHeader && best.score < 80 {
		// A header value is a SQL literal less often than an argument;
		// weak shapes there are mostly prose or tokens.
		best.score -= 10
	}
	// libinjection's second opinion raises confidence in a shape both
	// recognise; on its own it is not evidence (its fingerprints match
	// ordinary text too often: see the package tests).
	if ok, _ := libinjection.IsSQLi(v); ok && best.score < 95 {
		best.score += 5
	}
	return detect.Finding{
		Class:      detect.SQLi,
		Detector:   "sqli",
		Confidence: best.score,
		Reason:     best.reason,
		Start:      best.start,
		End:        best.end,
	}, true, steps
}

// minScore is the lowest confidence reported.
const minScore = 40

func isAlnumString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && !('a' <= c|0x20 && c|0x20 <= 'z') {
			return false
		}
	}
	return len(s) > 0
}

func spaces(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			n++
		}
	}
	return n
}

// wordComment: a "/*" right after a word byte.
func wordComment(v string) bool {
	for i := 1; i+1 < len(v); i++ {
		if v[i] == '/' && v[i+1] == '*' && isWordByte(v[i-1]) {
			return true
		}
	}
	return false
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

type result struct {
	score      int
	reason     string
	start, end int
	steps      int
}

// judge lexes v in context c and scores a valid breakout.
func judge(l *lexer, c context) (res result) {
	var p parser
	defer func() { res.steps = p.steps }()
	if !l.lex(c.quote) {
		return result{} // never leaves the string literal
	}
	if l.n == 0 || l.trunc {
		// Truncated: more tokens than we judge. Grammar validity of the
		// rest is unknown; do not guess.
		return result{}
	}
	p = parser{s: l.s, t: l.toks[:l.n], quote: c.quote}
	first := p.peek()
	bare := first.kind == kWord && first.kw == kwNone && p.peekAt(1).kind != kLParen && p.peekAt(1).kind != kDot
	if first.kind == kWord && first.kw == kwNone && p.peekAt(1).kind == kLParen && p.peekAt(1).start > first.end &&
		fnClass(p.text(first)) == fnPlain {
		// "Price (incl. VAT) = 12.50 or less": a word, a space, then a
		// parenthesis is how prose writes an aside; SQL writes its
		// ordinary calls without the space.
		bare = true
	}
	if c.quote != 0 {
		// The first token is the rest of the application's literal. When
		// it is prose (several words before the quote), the quote is an
		// apostrophe or a quotation in a sentence or a code sample, not a
		// literal's end: "Here is what I ran: 'UPDATE …'".
		prosePrefix := spaces(l.s[first.start:first.end]) > 3
		p.pos = 1
		defer func() {
			// After prose only what no sentence or code sample does
			// counts (so padding an attack with words does not hide it).
			if prosePrefix && res.score > 0 {
				s := p.sig
				if !(s.union || s.timeFn || s.into || (s.boolOp && s.tautology)) {
					res = result{steps: res.steps}
				} else {
					res.score -= 10
				}
			}
		}()
		if p.atEnd() && p.sig.comment {
			// x'-- : literal closed and the rest of the query cut off.
			if quotation(l.s, int(first.end), c.quote) {
				return result{}
			}
			return score(c, p, first, true, false)
		}
	} else {
		switch {
		case first.kind == kNumber, first.kind == kVar, first.kind == kLParen,
			first.kind == kString && p.peekAt(1).kind != kEOF: // 'hi' or 'x'='x': a literal of its own
		case first.kind == kOp && (first.op == opMinus || first.op == opPlus) && p.peekAt(1).kind == kNumber:
		case first.kind == kWord && (first.kw == kwNull || first.kw == kwTrue || first.kw == kwFalse || first.kw == kwNone || first.kw == kwCase || first.kw == kwNot):
		case first.kind == kWord && p.peekAt(1).kind == kLParen:
		case first.kind == kRParen:
			// ") OR (1=1", ")) UNION SELECT …": the value closes the
			// application's parenthesis right away (query reads it).
		default:
			return result{}
		}
		if first.kind != kRParen {
			p.operand()
		}
		if p.bad {
			return result{}
		}
	}
	p.query()
	if p.bad {
		return result{}
	}
	if p.reopen > p.closeOut {
		return result{}
	}
	return score(c, p, first, c.quote != 0, bare)
}

// quotation reports whether the quote at v[at-1] opens a short quotation
// in a sentence rather than closing the application's literal: it follows
// a blank, and the same quote closes it at most 64 bytes later, before a
// blank or punctuation, and a word of the sentence follows ("The special
// argument '--' marks the end", "The "#5" means", "use "--queue-balance
// x:x+n" to"). A breakout closes the literal right after the value's
// first word (admin'--) or ends the value with the quotation (admin '#').
func quotation(v string, at int, q byte) bool {
	if at < 2 || at > len(v) || v[at-1] != q || !isSpace(v[at-2]) {
		return false
	}
	rest := v[at:]
	i := indexByte(rest, q)
	if i <= 0 || i > 64 {
		return false
	}
	j := i + 1
	if j < len(rest) && !isSpace(rest[j]) && indexByte(".,;:!?)", rest[j]) < 0 {
		return false
	}
	// The sentence goes on after the quotation; a value that ends with
	// it (admin '-- ', admin '#') ends the query there.
	for j < len(rest) && (isSpace(rest[j]) || indexByte(".,;:!?)", rest[j]) >= 0) {
		j++
	}
	k := j
	for k < len(rest) && (rest[k] >= 0x80 || ('a' <= rest[k]|0x20 && rest[k]|0x20 <= 'z')) {
		k++
	}
	return k-j >= 2
}

// judgeWhole judges values that are not inside a literal at all: a
// condition appended after the application's own ("or 1=1", " and
// user()=user()") and a whole statement ("SELECT … FROM
// information_schema.tables"). Both need more than grammar to count.
func judgeWhole(l *lexer) (res result) {
	var p parser
	defer func() { res.steps = p.steps }()
	// l holds the number context's tokens (judge lexed them just before)
	if l.n == 0 || l.trunc {
		return result{}
	}
	p = parser{s: l.s, t: l.toks[:l.n]}
	first := p.peek()
	switch {
	case first.kind == kWord && (first.kw == kwAnd || first.kw == kwOr || first.kw == kwXor),
		first.kind == kOp && (first.op == opAnd || first.op == opConcat):
		p.exprRest() // the leading operator joins the application's condition
		p.query()
		if p.bad || p.reopen > p.closeOut {
			return result{}
		}
		r := score(context{name: "appended condition"}, p, first, true, false)
		if !p.sig.compare && p.sig.fn == 0 && !p.sig.union && !p.sig.subquery {
			return result{}
		}
		r.start = int(first.start)
		return r
	case first.kind == kSemi:
		// ";SET @OLD_SQL_MODE=…": a statement stacked on the
		// application's
		p.pos++
		p.statement()
		p.query()
		if p.bad || !p.sig.stacked {
			return result{}
		}
		r := score(context{name: "stacked statement"}, p, first, true, false)
		r.start = 0
		return r
	case first.kind == kWord && (first.kw == kwOrder || first.kw == kwGroup || first.kw == kwHaving || first.kw == kwLimit || first.kw == kwProcedure):
		// a sort or grouping parameter: "order by if(1=1,1,sleep(1))"
		p.clauses()
		p.query()
		s := p.sig
		if p.bad || !(s.union || s.subquery || s.timeFn || s.infoFn || s.tautology) {
			return result{}
		}
		r := score(context{name: "clause"}, p, first, true, false)
		r.start = 0
		return r
	case first.kind == kWord && first.kw == kwSelect:
		p.selectStmt()
		p.query()
		s := p.sig
		if !p.bad && !(s.union || s.subquery || s.schema || s.timeFn || s.into || s.sysVar || s.infoFn) &&
			s.clause && (s.compare || s.fn > 0) && hasFrom(&p) {
			// "select * from user where x not between …": a complete
			// query with its condition, sent as a value.
			return result{score: 72, reason: "statement context: complete SELECT with a condition", start: 0, end: len(p.s)}
		}
		if p.bad || !(s.union || s.subquery || s.schema || s.timeFn || s.into || s.sysVar || s.infoFn) {
			return result{}
		}
		r := score(context{name: "statement"}, p, first, true, false)
		if r.score > 80 {
			r.score = 80
		}
		r.start = 0
		return r
	case first.kind == kWord && wholeStmtShape(&p):
		// INSERT INTO t (…) VALUES (…), UPDATE t SET c=…, CREATE
		// FUNCTION f (…) …: a whole statement of a shape no sentence
		// has, parsed to its end.
		p.statement()
		p.query()
		if p.bad || !p.sig.stacked {
			return result{}
		}
		sc := 75
		if p.sig.timeFn || p.sig.infoFn || p.sig.schema || p.sig.subquery {
			sc = 85
		}
		return result{score: sc, reason: "statement context: whole " + strings.ToUpper(p.text(first)) + " statement", start: 0, end: len(p.s)}
	}
	return result{}
}

// hasFrom: the token stream has a FROM keyword.
func hasFrom(p *parser) bool {
	for _, t := range p.t {
		if t.kind == kWord && t.kw == kwFrom {
			return true
		}
	}
	return false
}

// wholeStmtShape checks the head of a statement that makes up a whole
// value: the structure each statement needs right after its keyword, so
// that "Insert the coin", "update: see below" or "create a table for
// your guests" (prose that starts with the same verbs) do not qualify.
func wholeStmtShape(p *parser) bool {
	t := p.t
	at := func(i int) token {
		if i < len(t) {
			return t[i]
		}
		return token{kind: kEOF}
	}
	name := func(i int) bool { return at(i).kind == kWord && at(i).kw == kwNone || at(i).kind == kQIdent }
	word := func(i int, w string) bool { return at(i).kind == kWord && equalFold(p.text(at(i)), w) }
	switch at(0).kw {
	case kwInsert, kwReplace:
		// INSERT [INTO] name [( … )] VALUES|SELECT|SET
		i := 1
		if at(i).kw == kwInto && at(i).kind == kWord {
			i++
		}
		if !name(i) {
			return false
		}
		i++
		for at(i).kind == kDot && name(i+1) {
			i += 2
		}
		if at(i).kind == kLParen {
			depth := 0
			for ; i < len(t); i++ {
				if at(i).kind == kLParen {
					depth++
				} else if at(i).kind == kRParen {
					if depth--; depth == 0 {
						i++
						break
					}
				}
			}
		}
		return (at(i).kw == kwValues && at(i+1).kind == kLParen) || at(i).kw == kwSelect
	case kwUpdate:
		// UPDATE name SET name =
		return name(1) && at(2).kind == kWord && at(2).kw == kwSet && name(3) && at(4).kind == kOp
	case kwDelete:
		// DELETE FROM name WHERE|;|end
		return at(1).kw == kwFrom && name(2) && (at(3).kw == kwWhere || at(3).kind == kSemi || at(3).kind == kComment)
	case kwCreate, kwAlter:
		// CREATE|ALTER TABLE|FUNCTION|PROCEDURE|… name, then a
		// parenthesis or quote somewhere: definitions have them.
		i := 1
		if word(i, "or") && word(i+1, "replace") {
			i += 2
		}
		if !(word(i, "table") || word(i, "function") || word(i, "procedure") || word(i, "trigger") || word(i, "view") || word(i, "user") || word(i, "login")) {
			return false
		}
		if !name(i+1) && at(i+1).kind != kQIdent {
			return false
		}
		j := i + 2
		for at(j).kind == kDot && (name(j+1) || at(j+1).kind == kQIdent) {
			j += 2
		}
		if at(0).kw == kwCreate && at(j).kind != kLParen && !word(j, "as") {
			return false // CREATE TABLE t (…), CREATE FUNCTION f (…), CREATE VIEW v AS
		}
		if at(0).kw == kwAlter && !(word(j, "add") || word(j, "drop") || word(j, "change") || word(j, "modify") ||
			word(j, "alter") || word(j, "rename") || word(j, "owner") || word(j, "set")) {
			return false // ALTER TABLE t ADD|DROP|CHANGE …
		}
		for _, x := range t[j:] {
			if x.kind == kLParen || x.kind == kString || x.kind == kQIdent {
				return true
			}
		}
		return false
	case kwDrop, kwTruncate:
		// DROP TABLE name; -- a terminator: "drop table tennis" is prose
		i := 1
		if word(i, "table") || word(i, "database") || word(i, "schema") || word(i, "view") || word(i, "user") {
			i++
		}
		return name(i) && (at(i+1).kind == kSemi || at(i+1).kind == kComment)
	case kwExec:
		// EXEC xp_cmdshell …, EXECUTE IMMEDIATE '…'
		return at(1).kind == kWord && (isStmtFn(p.text(at(1))) || (word(1, "immediate") && (at(2).kind == kString || at(2).kind == kOpenStr)))
	}
	return false
}

func score(c context, p parser, first token, breakout, bare bool) result {
	s := p.sig
	s.boolOp = s.boolOp || (s.orOp && s.compare)
	strong := s.union || s.stacked || s.timeFn || s.into || s.subquery || s.schema || s.sysVar
	if bare {
		// A value that starts with a plain word ("hello; drop table
		// tennis lessons", "To execute …, EXECUTE can be used") needs a
		// sign no sentence has.
		strong = s.union || s.timeFn || s.subquery || s.into
	}
	var sc int
	var why string
	switch {
	case s.timeFn:
		sc, why = 95, "time-delay function"
	case s.union:
		sc, why = 95, "UNION SELECT"
	case s.stacked:
		sc, why = 92, "stacked statement"
	case s.into:
		sc, why = 95, "SELECT INTO OUTFILE"
	case s.subquery, s.schema, s.sysVar:
		sc, why = 90, "subquery or system catalog"
	case s.boolOp && (s.compare || s.fn > 0 || s.tautology):
		sc, why = 88, "boolean condition"
		if s.tautology {
			why = "tautology"
		}
	case s.infoFn && (s.concat || s.boolOp || s.ops > 0):
		sc, why = 88, "function call joined to the query"
	case s.clause:
		sc, why = 75, "ORDER BY/GROUP BY/LIMIT clause"
	case s.tautology && (s.fn > 0 || s.caseExpr):
		sc, why = 75, "tautology inside a function or CASE"
	case s.boolOp:
		sc, why = 70, "boolean operator"
	case s.fn > 0 && (s.concat || s.ops > 0 || s.list) && breakout:
		sc, why = 80, "function call joined to the query"
	case s.list && (s.compare || s.infoFn) && s.ops+s.fn > 1:
		sc, why = 75, "expression added to a list"
	case s.comment && breakout && c.quote != '`':
		// admin'-- ; not in backquotes, which markdown uses for code
		// ("`#include <stdio.h>`").
		sc, why = 70, "comment truncates the query"
	case s.compare && breakout && c.quote != '`':
		sc, why = 55, "comparison"
	case s.probe:
		sc, why = 72, "delay or information function opened"
	case s.cast && s.fn > 0 && !bare:
		// "starts_with(password,'a')::int": a function of a column,
		// cast to fit the number it replaces (PostgreSQL error and
		// boolean probes).
		sc, why = 75, "function result cast into the query"
	default:
		return result{}
	}
	if !breakout {
		// Number context: the value replaces a number.
		switch {
		case bare && !strong:
			// "Tom or Jerry": a bare word is a column name only in
			// theory; without a strong sign it is prose.
			return result{}
		case !strong && !s.compare && s.fn == 0 && !s.clause && !s.tautology:
			// "1 or 2": grammatical, but nothing tested.
			sc -= 30
		case !strong:
			sc -= 5
		}
		if s.comment {
			sc += 3
		}
	} else if s.comment && sc < 95 {
		sc += 3
	}
	if sc > 100 {
		sc = 100
	}
	if s.probe && !s.union && !s.stacked && !s.subquery && sc > 72 {
		// An opened call and nothing after it: an attacker's probe,
		// but nothing ran yet.
		sc = 72
	}
	// The evidence: from the breakout (the token after the leading
	// literal or operand) to the end of the value.
	start := int(first.end)
	if !breakout {
		start = 0
	} else if start > 0 && c.quote != 0 {
		start-- // include the closing quote
	}
	return result{score: sc, reason: c.name + " context: " + why, start: start, end: len(p.s)}
}

// delaySubquery finds a "(SELECT …)" among l's tokens that parses as a
// subquery and calls a time-delay function. At most maxSubqueries starts
// are tried, each a bounded parse over the fixed token array.
func delaySubquery(l *lexer) (res result) {
	const maxSubqueries = 4
	tried := 0
	toks := l.toks[:l.n]
	for i := 0; i+1 < len(toks) && tried < maxSubqueries; i++ {
		if toks[i].kind != kLParen || toks[i+1].kind != kWord || toks[i+1].kw != kwSelect {
			continue
		}
		tried++
		p := parser{s: l.s, t: toks, pos: i}
		p.operand()
		res.steps += p.steps
		if !p.bad && p.sig.subquery && p.sig.timeFn {
			end := len(l.s)
			if p.pos < len(toks) {
				end = int(toks[p.pos].start)
			}
			return result{score: 85, reason: "subquery with a time-delay function", start: int(toks[i].start), end: end, steps: res.steps}
		}
	}
	return res
}
