package sqli

// The parser checks that a token stream is a syntactically valid
// continuation of a SQL query, and collects what the continuation does
// (boolean logic, UNION, stacked statements, delays). It is recursive
// descent without backtracking (each token is looked at a bounded number
// of times), with nesting bounded by maxNest: linear time, stack bounded.

const maxNest = 48

type signals struct {
	boolOp     bool // AND, OR, XOR, && joining conditions
	compare    bool // =, <>, LIKE, IN, BETWEEN, IS …
	tautology  bool // a comparison of two literals
	fn         int  // function calls
	timeFn     bool // SLEEP, BENCHMARK, PG_SLEEP, WAITFOR DELAY, …
	infoFn     bool // VERSION(), DATABASE(), LOAD_FILE, EXTRACTVALUE, xp_cmdshell, …
	union      bool
	subquery   bool
	stacked    bool // a second statement after ';'
	clause     bool // ORDER BY, GROUP BY, HAVING, LIMIT, PROCEDURE, INTO
	into       bool // INTO OUTFILE/DUMPFILE
	comment    bool // a trailing comment that swallows the rest of the query
	schema     bool // information_schema, sysobjects, pg_catalog, sqlite_master, mysql.user
	sysVar     bool // @@version and friends
	concat     bool // || or + joining strings
	list       bool // the value continued a comma-separated list
	caseExpr   bool // a CASE expression
	truncated  bool // parentheses left open at the end after a strong sign
	trailingOp bool // the value ends with an operator
	orOp       bool // || (MySQL OR, otherwise concatenation)
	probe      bool // a delay or information function opened at the very end
	cast       bool // PostgreSQL's expr::type
	ops        int  // binary operators
}

type parser struct {
	s        string
	t        []token
	pos      int
	nest     int
	bad      bool
	sig      signals
	quote    byte // the application's quote in string contexts
	closeOut int  // parentheses of the application closed by the value
	reopen   int  // parentheses opened by the value and left for the application to close
	steps    int  // token inspections, for the linear-time test
}

func (p *parser) peek() token {
	p.steps++
	if p.pos < len(p.t) {
		return p.t[p.pos]
	}
	return token{kind: kEOF, start: int32(len(p.s)), end: int32(len(p.s))}
}

func (p *parser) peekAt(k int) token {
	if p.pos+k >= 0 && p.pos+k < len(p.t) {
		return p.t[p.pos+k]
	}
	return token{kind: kEOF}
}

func (p *parser) next() token {
	t := p.peek()
	if p.pos < len(p.t) {
		p.pos++
	}
	return t
}

func (p *parser) isKW(k kw) bool {
	t := p.peek()
	return t.kind == kWord && t.kw == k
}

func (p *parser) acceptKW(k kw) bool {
	if p.isKW(k) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) fail() { p.bad = true }

// atEnd reports whether the value is over: no token left, or a comment
// that swallows the rest of the application's query.
func (p *parser) atEnd() bool {
	t := p.peek()
	if t.kind == kComment {
		p.sig.comment = true
		return true
	}
	return t.kind == kEOF
}

func (p *parser) text(t token) string { return p.s[t.start:t.end] }

// closeParen expects ')'. At the end of the value it accepts a
// parenthesis the application will close, if the value closed one of the
// application's before (balanced: "1) OR (1=1").
func (p *parser) closeParen() {
	if p.peek().kind == kRParen {
		p.pos++
		return
	}
	if p.atEnd() && p.closeOut > p.reopen {
		p.reopen++
		return
	}
	if p.atEnd() && (p.sig.subquery || p.sig.timeFn || p.sig.infoFn || p.sig.union) {
		// Cut short after the damage is visible: BENCHMARK(5000000,MD5(1
		p.sig.truncated = true
		return
	}
	p.fail()
}

// query parses the continuation after the leading operand: more
// expression, then clauses and statements, to the end.
func (p *parser) query() {
	p.exprRest()
	p.matchMode()
	for !p.bad && !p.atEnd() {
		t := p.peek()
		switch {
		case t.kind == kRParen && p.closeOut < 3:
			p.pos++
			p.closeOut++
			// ') AS alias WHERE …': the value closed a derived table.
			if p.acceptKW(kwAs) {
				if n := p.next(); n.kind != kWord && n.kind != kQIdent {
					p.fail()
				}
			}
			p.exprRest()
			p.matchMode()
		case t.kind == kComma:
			// the value sits in a list (ORDER BY x, VALUE; IN (…, VALUE))
			p.pos++
			p.sig.list = true
			p.expr()
			p.alias()
		case t.kind == kSemi:
			p.pos++
			p.statement()
		case t.kind == kWord && isStmtKeyword(t.kw) && p.pos > 0 &&
			(p.t[p.pos-1].kind == kString || p.t[p.pos-1].kind == kNumber || p.t[p.pos-1].kind == kRParen):
			// T-SQL runs statements written one after another.
			p.statement()
		case t.kind == kWord && (t.kw == kwUnion || ((equalFold(p.text(t), "except") || equalFold(p.text(t), "intersect") || equalFold(p.text(t), "minus")) &&
			p.peekAt(1).kind == kWord && (p.peekAt(1).kw == kwSelect || p.peekAt(1).kw == kwAll || p.peekAt(1).kw == kwValues))):
			p.pos++
			if p.isKW(kwValues) {
				p.pos++
				p.operand()
				p.sig.union = true
				continue
			}
			wasUnion := p.sig.union
			if !p.acceptKW(kwAll) {
				p.acceptKW(kwDistinct)
			}
			p.sig.union = true
			if p.atEnd() {
				if p.t[p.pos-1].kw == kwUnion && !p.sig.comment {
					// a bare UNION ends the value: "Jean-Normand
					// Union" is a name; "' UNION" alone is a probe
					p.sig.union, p.sig.probe = wasUnion, true
				}
				return // "' UNION ALL" cut short: a probe
			}
			if p.isKW(kwSelect) && p.peekAt(1).kind == kEOF {
				p.pos++
				return
			}
			p.selectOrParen()
		case t.kind == kOp && p.pos == len(p.t)-1 && (t.op == opConcat || t.op == opPlus || t.op == opMinus):
			// a trailing operator the application's suffix completes
			p.pos++
			p.sig.trailingOp = true
		case t.kind == kWord && (t.kw == kwOrder || t.kw == kwGroup || t.kw == kwHaving || t.kw == kwLimit ||
			t.kw == kwProcedure || t.kw == kwInto || t.kw == kwWhere || t.kw == kwFor || t.kw == kwOffset):
			p.clauses()
		case t.kind == kWord && t.kw == kwWaitfor:
			p.waitfor()
		case t.kind == kWord && t.kw == kwNone && equalFold(p.text(t), "if") && p.pos > 0 &&
			(p.t[p.pos-1].kind == kString || p.t[p.pos-1].kind == kNumber || p.t[p.pos-1].kind == kRParen):
			// T-SQL: … IF (condition) WAITFOR DELAY '0:0:5'
			p.pos++
			p.expr()
			if p.isKW(kwWaitfor) {
				p.waitfor()
			} else {
				p.statement()
			}
		case (t.kind == kWord && (t.kw == kwAnd || t.kw == kwOr || t.kw == kwXor)) || t.kind == kOp:
			// a condition after a clause: … PROCEDURE ANALYSE(…) AND 'a'='a
			before := p.pos
			p.exprRest()
			if p.pos == before {
				p.fail()
			}
		default:
			p.fail()
		}
	}
}

// matchMode reads MySQL full-text modifiers after MATCH … AGAINST('…':
// IN BOOLEAN MODE, IN NATURAL LANGUAGE MODE, WITH QUERY EXPANSION.
func (p *parser) matchMode() {
	t := p.peek()
	if t.kind != kWord {
		return
	}
	if t.kw == kwIn && p.peekAt(1).kind == kWord && (equalFold(p.text(p.peekAt(1)), "boolean") || equalFold(p.text(p.peekAt(1)), "natural")) {
		p.pos += 2
		for p.peek().kind == kWord && !equalFold(p.text(p.peek()), "mode") {
			p.pos++
		}
		if p.peek().kind == kWord {
			p.pos++
		}
		return
	}
	if equalFold(p.text(t), "with") && p.peekAt(1).kind == kWord && equalFold(p.text(p.peekAt(1)), "query") {
		p.pos += 3
	}
}

func isStmtKeyword(k kw) bool {
	switch k {
	case kwExec, kwDeclare, kwWaitfor, kwShutdown:
		return true
	}
	return false
}

func (p *parser) waitfor() {
	p.pos++
	if !p.acceptKW(kwDelay) && !p.acceptKW(kwTime) {
		p.fail()
		return
	}
	p.operand()
	p.sig.timeFn = true
}

// statement parses a stacked statement after ';'. SELECT is parsed; other
// statements must start with a statement keyword and are then accepted up
// to the next ';' or the end, as long as their tokens are well formed.
func (p *parser) statement() {
	if p.atEnd() {
		return
	}
	t := p.peek()
	if t.kind == kSemi {
		return
	}
	if t.kind == kLParen || (t.kind == kWord && t.kw == kwNone && p.peekAt(1).kind == kLParen) {
		// ;(SELECT …) or ;IIF(…): an expression run as a batch
		p.expr()
		p.sig.stacked = p.sig.subquery || p.sig.fn > 0
		return
	}
	if t.kind != kWord {
		p.fail()
		return
	}
	switch t.kw {
	case kwSelect:
		p.selectStmt()
		p.sig.stacked = true
		return
	case kwWaitfor:
		p.waitfor()
		p.sig.stacked = true
		return
	case kwInsert, kwUpdate, kwDelete, kwDrop, kwCreate, kwAlter, kwTruncate, kwExec, kwDeclare, kwSet,
		kwShutdown, kwGrant, kwRevoke, kwLoad, kwCall, kwCopy, kwHandler, kwRename, kwReplace, kwShow, kwDo,
		kwBegin, kwCommit, kwEnd, kwAnalyse:
	default:
		if !isStmtFn(p.text(t)) {
			p.fail()
			return
		}
	}
	p.pos++
	if !p.stmtHead(t) {
		p.fail()
		return
	}
	p.sig.stacked = true
	depth := 0
	for !p.atEnd() {
		t := p.peek()
		switch t.kind {
		case kBad:
			p.fail()
			return
		case kOpenStr:
			if !p.openStrOK() {
				p.fail()
				return
			}
		case kLParen:
			depth++
			if prev := p.peekAt(-1); prev.kind == kWord {
				switch fnClass(p.text(prev)) {
				case fnTime:
					p.sig.timeFn = true
				case fnInfo:
					p.sig.infoFn = true
				}
			}
		case kRParen:
			depth--
		case kSemi:
			if depth == 0 {
				return
			}
		case kWord:
			p.classifyName(t)
			if t.kw == kwSelect {
				p.sig.subquery = true
			}
		}
		p.pos++
	}
}

// stmtHead checks the first words of a stacked statement after its
// keyword t, so that "1234; DROP" (a password) is not a statement while
// "1; DROP TABLE users" is.
func (p *parser) stmtHead(t token) bool {
	n := p.peek()
	word := n.kind == kWord || n.kind == kQIdent
	switch t.kw {
	case kwShutdown, kwCommit, kwBegin, kwEnd, kwAnalyse:
		return true
	case kwDrop, kwCreate, kwAlter, kwTruncate, kwRename:
		if n.kind != kWord {
			return false
		}
		switch w := p.text(n); {
		case equalFold(w, "table"), equalFold(w, "database"), equalFold(w, "schema"), equalFold(w, "view"),
			equalFold(w, "user"), equalFold(w, "procedure"), equalFold(w, "function"), equalFold(w, "index"),
			equalFold(w, "trigger"), equalFold(w, "login"), equalFold(w, "role"), equalFold(w, "or"),
			equalFold(w, "temporary"), equalFold(w, "if"):
			return p.peekAt(1).kind == kWord || p.peekAt(1).kind == kQIdent
		}
		return t.kw == kwTruncate && word
	case kwInsert, kwReplace:
		return p.isKW(kwInto) || word
	case kwUpdate:
		return word && (p.peekAt(1).kind == kDot || (p.peekAt(1).kind == kWord && (p.peekAt(1).kw == kwSet || p.peekAt(2).kind == kWord)))
	case kwDelete:
		return p.isKW(kwFrom) || (word && p.peekAt(1).kind == kWord)
	case kwExec, kwCall:
		p.classifyName(n)
		return word || n.kind == kLParen || n.kind == kVar
	case kwDeclare, kwSet:
		return n.kind == kVar || (word && p.peekAt(1).kind == kOp)
	case kwGrant, kwRevoke, kwLoad, kwCopy, kwHandler, kwShow, kwDo:
		return word && p.peekAt(1).kind != kEOF
	}
	if isStmtFn(p.text(t)) {
		p.classifyName(t)
		return true
	}
	return false
}

// isStmtFn: procedures called as statements (MSSQL EXEC-less calls).
func isStmtFn(s string) bool {
	return equalFold(s, "xp_cmdshell") || equalFold(s, "sp_executesql") || equalFold(s, "sp_configure") ||
		equalFold(s, "dbms_lock.sleep") || equalFold(s, "pg_sleep")
}

// openStrOK: an unterminated string at the very end is closed by the
// application's quote, in the string context of that quote.
func (p *parser) openStrOK() bool {
	t := p.peek()
	return t.kind == kOpenStr && p.quote != 0 && byte(t.op) == p.quote && p.pos == len(p.t)-1
}

func (p *parser) clauses() {
	for !p.bad && !p.atEnd() {
		t := p.peek()
		if t.kind != kWord {
			return
		}
		switch t.kw {
		case kwWhere, kwHaving:
			p.pos++
			p.expr()
		case kwOrder, kwGroup:
			p.pos++
			if !p.acceptKW(kwBy) {
				p.fail()
				return
			}
			p.exprList(true)
		case kwLimit:
			p.pos++
			p.operand()
			if p.peek().kind == kComma {
				p.pos++
				p.operand()
			}
			if p.acceptKW(kwOffset) {
				p.operand()
			}
		case kwOffset:
			p.pos++
			p.operand()
		case kwProcedure:
			p.pos++
			p.operand()
		case kwInto:
			p.pos++
			if p.acceptKW(kwOutfile) || p.acceptKW(kwDumpfile) {
				p.sig.into = true
				p.operand()
				p.exportOptions()
			} else {
				p.operand()
				for p.peek().kind == kComma {
					p.pos++
					p.operand()
				}
			}
		case kwFor:
			p.pos++
			if p.peek().kind == kWord {
				p.pos++ // FOR UPDATE / FOR XML …
			}
			for p.peek().kind == kWord && p.peek().kw == kwNone {
				p.pos++
			}
		default:
			return
		}
		p.sig.clause = true
	}
}

// exportOptions reads SELECT … INTO OUTFILE's options: FIELDS/COLUMNS
// TERMINATED BY …, ENCLOSED BY …, ESCAPED BY …, LINES STARTING BY …,
// CHARACTER SET x.
func (p *parser) exportOptions() {
	for !p.bad && !p.atEnd() {
		t := p.peek()
		if t.kind != kWord {
			return
		}
		w := p.text(t)
		switch {
		case equalFold(w, "fields"), equalFold(w, "columns"), equalFold(w, "lines"), equalFold(w, "optionally"):
			p.pos++
		case equalFold(w, "terminated"), equalFold(w, "enclosed"), equalFold(w, "escaped"), equalFold(w, "starting"):
			p.pos++
			if !p.acceptKW(kwBy) {
				p.fail()
				return
			}
			p.operand()
		case equalFold(w, "character"):
			p.pos++
			if !p.acceptKW(kwSet) {
				p.fail()
				return
			}
			p.next()
		default:
			return
		}
	}
}

func (p *parser) exprList(order bool) {
	for {
		p.expr()
		if order {
			if !p.acceptKW(kwAsc) {
				p.acceptKW(kwDesc)
			}
		}
		if p.bad || p.peek().kind != kComma {
			return
		}
		p.pos++
	}
}

func (p *parser) selectOrParen() {
	if p.peek().kind == kLParen && p.peekAt(1).kind == kWord && p.peekAt(1).kw == kwSelect {
		p.pos++
		p.enter()
		p.selectStmt()
		p.leave()
		p.closeParen()
		return
	}
	if !p.isKW(kwSelect) {
		p.fail()
		return
	}
	p.selectStmt()
}

func (p *parser) enter() {
	p.nest++
	if p.nest > maxNest {
		p.fail()
	}
}

func (p *parser) leave() { p.nest-- }

// selectStmt parses SELECT … [FROM …] [clauses] [UNION …].
func (p *parser) selectStmt() {
	if !p.acceptKW(kwSelect) {
		p.fail()
		return
	}
	if !p.acceptKW(kwAll) {
		p.acceptKW(kwDistinct)
	}
	if p.acceptKW(kwTop) {
		p.operand()
	}
	for {
		t := p.peek()
		if t.kind == kOp && t.op == opMul {
			p.pos++
		} else {
			p.expr()
			p.alias()
		}
		if p.bad || p.peek().kind != kComma {
			break
		}
		p.pos++
	}
	if p.acceptKW(kwInto) {
		if p.acceptKW(kwOutfile) || p.acceptKW(kwDumpfile) {
			p.sig.into = true
		}
		p.operand()
	}
	if p.acceptKW(kwFrom) {
		p.tableRefs()
	}
	p.clauses()
	if p.acceptKW(kwUnion) {
		if !p.acceptKW(kwAll) {
			p.acceptKW(kwDistinct)
		}
		p.sig.union = true
		p.selectOrParen()
	}
}

func (p *parser) alias() {
	if p.acceptKW(kwAs) {
		t := p.next()
		if t.kind != kWord && t.kind != kQIdent && t.kind != kString {
			p.fail()
		}
		return
	}
	if t := p.peek(); (t.kind == kWord && t.kw == kwNone) || t.kind == kQIdent {
		p.pos++
	}
}

func (p *parser) tableRefs() {
	for !p.bad {
		p.tableRef()
		t := p.peek()
		if t.kind == kComma {
			p.pos++
			continue
		}
		if t.kind == kWord && (t.kw == kwJoin || t.kw == kwInner || t.kw == kwLeft || t.kw == kwRight ||
			t.kw == kwCross || t.kw == kwOuter || t.kw == kwNatural) {
			for p.peek().kind == kWord && p.peek().kw != kwJoin && p.peek().kw != kwNone {
				p.pos++
			}
			if !p.acceptKW(kwJoin) {
				p.fail()
				return
			}
			p.tableRef()
			if p.acceptKW(kwOn) {
				p.expr()
			} else if p.acceptKW(kwUsing) {
				p.operand()
			}
			continue
		}
		return
	}
}

func (p *parser) tableRef() {
	t := p.peek()
	switch {
	case t.kind == kLParen:
		p.pos++
		p.enter()
		if p.isKW(kwSelect) {
			p.selectStmt()
			p.sig.subquery = true
		} else {
			p.tableRefs()
		}
		p.leave()
		p.closeParen()
	case t.kind == kWord && t.kw == kwNone, t.kind == kQIdent:
		p.qualifiedName()
		if p.peek().kind == kLParen { // table function
			p.callArgs()
		}
	default:
		p.fail()
		return
	}
	p.alias()
}

// qualifiedName reads a.b.c (words, quoted identifiers, '*' last) and
// array subscripts (PostgreSQL array[id], col[1]).
func (p *parser) qualifiedName() {
	defer func() {
		for p.peek().kind == kQIdent && p.text(p.peek())[0] == '[' && p.peekAt(-1).end == p.peek().start {
			p.pos++
		}
	}()
	first := p.next()
	p.classifyName(first)
	for p.peek().kind == kDot {
		p.pos++
		if p.peek().kind == kDot {
			p.pos++ // master..xp_cmdshell: default schema
		}
		t := p.next()
		switch {
		case t.kind == kWord || t.kind == kQIdent:
			p.classifyName(t)
		case t.kind == kOp && t.op == opMul:
			return
		default:
			p.fail()
			return
		}
	}
}

func (p *parser) classifyName(t token) {
	if t.kind != kWord && t.kind != kQIdent {
		return
	}
	s := p.text(t)
	if t.kind == kQIdent && len(s) >= 2 {
		s = s[1 : len(s)-1]
	}
	for _, n := range schemaNames {
		if equalFold(s, n) {
			p.sig.schema = true
			return
		}
	}
}

var schemaNames = [...]string{
	"information_schema", "sysobjects", "syscolumns", "sysdatabases", "pg_catalog", "pg_shadow", "pg_user",
	"sqlite_master", "sqlite_schema", "all_tables", "user_tables", "dba_users", "all_users", "v$version",
	"mysql", "master", "msdb", "xp_cmdshell", "sys",
}

func (p *parser) expr() {
	p.operand()
	p.exprRest()
}

// exprRest continues an expression after an operand: binary operators
// and postfix predicates.
func (p *parser) exprRest() {
	for !p.bad {
		t := p.peek()
		switch t.kind {
		case kOp:
			switch t.op {
			case opNot, opBitNot:
				return
			case opEq, opNe, opLt, opGt, opLe, opGe, opNullEq, opRegex, opContains:
				p.sig.compare = true
				p.binary(true)
			case opAnd:
				p.sig.boolOp = true
				p.binary(false)
			case opConcat:
				p.sig.concat = true
				p.sig.orOp = true
				p.binary(false)
			case opCast:
				p.pos++
				t := p.next()
				if t.kind != kWord {
					p.fail()
				}
				p.sig.cast = true
			case opAssign:
				p.binary(false)
			default:
				if t.op == opPlus {
					p.sig.concat = true
				}
				p.binary(false)
			}
		case kWord:
			switch t.kw {
			case kwAnd, kwOr, kwXor:
				p.sig.boolOp = true
				if t.kw == kwOr && p.peekAt(1).kind == kWord && p.peekAt(1).kw == kwTrue {
					p.sig.tautology = true // 1 OR TRUE
				}
				p.binary(false)
			case kwDiv, kwMod:
				p.binary(false)
			case kwIs:
				p.pos++
				p.acceptKW(kwNot)
				if !(p.acceptKW(kwNull) || p.acceptKW(kwTrue) || p.acceptKW(kwFalse) || p.acceptKW(kwUnknown)) {
					p.fail()
				}
				p.sig.compare = true
			case kwNot:
				n := p.peekAt(1)
				if n.kind != kWord || !(n.kw == kwIn || n.kw == kwLike || n.kw == kwBetween || n.kw == kwRlike || n.kw == kwRegexp || n.kw == kwSimilar) {
					return
				}
				p.pos++
			case kwIn:
				if n := p.peekAt(1); n.kind == kWord && (equalFold(p.text(n), "boolean") || equalFold(p.text(n), "natural")) {
					p.matchMode()
					return
				}
				p.pos++
				p.sig.compare = true
				if p.peek().kind != kLParen {
					p.fail()
					return
				}
				p.operand()
			case kwLike, kwRlike, kwRegexp, kwSimilar, kwSounds:
				p.pos++
				if t.kw == kwSimilar || t.kw == kwSounds {
					n := p.next()
					if n.kind != kWord {
						p.fail()
					}
				}
				p.sig.compare = true
				p.operand()
				if p.acceptKW(kwEscape) {
					p.operand()
				}
			case kwBetween:
				p.pos++
				p.sig.compare = true
				p.operand()
				p.arith()
				if !p.acceptKW(kwAnd) {
					p.fail()
					return
				}
				p.operand()
				p.arith()
			case kwCollate:
				p.pos++
				if n := p.next(); n.kind != kWord && n.kind != kQIdent && n.kind != kString {
					p.fail() // COLLATE utf8mb4_bin, `nocase`, "C"
				}
			default:
				return
			}
		default:
			return
		}
	}
}

// arith continues an operand with arithmetic only (inside BETWEEN).
func (p *parser) arith() {
	for !p.bad {
		t := p.peek()
		if t.kind == kOp && (t.op == opPlus || t.op == opMinus || t.op == opMul || t.op == opDiv || t.op == opMod || t.op == opConcat) {
			p.pos++
			p.operand()
			continue
		}
		return
	}
}

func (p *parser) binary(cmp bool) {
	left := p.peekAt(-1)
	op := p.peek()
	p.pos++
	p.sig.ops++
	if p.atEnd() {
		if op.kind == kOp && (op.op == opConcat || op.op == opPlus || op.op == opMinus) && p.peek().kind == kEOF {
			// 'x||(SELECT …)||': the application's suffix completes it
			p.sig.trailingOp = true
			return
		}
		p.fail()
		return
	}
	right := p.peek()
	// ANY/ALL/SOME (subquery)
	if right.kind == kWord && (right.kw == kwAll || equalFold(p.text(right), "any") || equalFold(p.text(right), "some")) &&
		p.peekAt(1).kind == kLParen {
		p.pos++
	}
	p.operand()
	if cmp && isLiteral(left) && isLiteral(right) && p.peekAt(-1) == right {
		p.sig.tautology = true
	}
}

func isLiteral(t token) bool {
	return t.kind == kNumber || t.kind == kString || t.kind == kOpenStr
}

// operand parses one operand (literal, name, call, parenthesised
// expression or subquery, unary operator, CASE, EXISTS, INTERVAL).
func (p *parser) operand() {
	p.enter()
	defer p.leave()
	if p.bad {
		return
	}
	t := p.peek()
	switch t.kind {
	case kNumber, kString:
		p.pos++
		// adjacent string literals concatenate ('a' 'b')
		for t.kind == kString && p.peek().kind == kString {
			p.pos++
		}
	case kOpenStr:
		if !p.openStrOK() {
			p.fail()
			return
		}
		p.pos++
	case kVar:
		p.pos++
		if s := p.text(t); len(s) > 2 && s[1] == '@' {
			p.sig.sysVar = true
		}
	case kQIdent:
		p.qualifiedName()
	case kOp:
		switch t.op {
		case opMinus, opPlus, opBitNot, opNot:
			p.pos++
			p.operand()
		default:
			p.fail()
		}
	case kLParen:
		p.pos++
		if p.isKW(kwSelect) {
			p.sig.subquery = true
			p.selectStmt()
		} else {
			p.expr()
			for !p.bad && p.peek().kind == kComma {
				p.pos++
				p.expr()
			}
		}
		p.closeParen()
	case kWord:
		p.wordOperand(t)
	default:
		p.fail()
	}
}

func (p *parser) wordOperand(t token) {
	switch t.kw {
	case kwNull, kwTrue, kwFalse, kwUnknown:
		p.pos++
	case kwNot:
		p.pos++
		p.operand()
	case kwBinary:
		p.pos++
		if p.peek().kind == kLParen {
			p.callArgs()
			return
		}
		p.operand()
	case kwExists:
		p.pos++
		if p.peek().kind != kLParen {
			p.fail()
			return
		}
		p.operand()
	case kwInterval:
		p.pos++
		p.operand()
		if n := p.next(); n.kind != kWord {
			p.fail()
		}
	case kwCase:
		p.pos++
		p.sig.caseExpr = true
		if !p.isKW(kwWhen) {
			p.expr()
		}
		for p.acceptKW(kwWhen) {
			p.expr()
			if !p.acceptKW(kwThen) {
				p.fail()
				return
			}
			p.expr()
		}
		if p.acceptKW(kwElse) {
			p.expr()
		}
		if !p.acceptKW(kwEnd) {
			p.fail()
		}
	case kwNone, kwLeft, kwRight, kwReplace, kwInsert, kwTime, kwMod, kwValues, kwDelay, kwTruncate, kwDo, kwLoad, kwAnalyse, kwSet, kwShow,
		kwLike, kwRlike, kwRegexp:
		// A name, or a function call. Keywords that are also function
		// names (LEFT(), REPLACE(), INSERT(), MOD()) only as calls.
		if t.kw != kwNone && p.peekAt(1).kind != kLParen {
			p.fail()
			return
		}
		start := p.pos
		p.qualifiedName()
		if p.peek().kind == kLParen {
			name := p.s[p.t[start].start:p.t[p.pos-1].end]
			p.sig.fn++
			switch fnClass(name) {
			case fnTime:
				p.sig.timeFn = true
			case fnInfo:
				p.sig.infoFn = true
			}
			p.callArgs()
		}
	default:
		p.fail()
	}
}

// callArgs parses ( args ) of a call, with the keyword separators some
// functions use: CAST(x AS t), CONVERT(x USING u), SUBSTRING(x FROM 1
// FOR 2), EXTRACT(YEAR FROM d), TRIM(LEADING 'x' FROM y), COUNT(*),
// COUNT(DISTINCT x).
func (p *parser) callArgs() {
	p.pos++ // (
	p.enter()
	defer p.leave()
	if p.peek().kind == kRParen {
		p.pos++
		return
	}
	if p.atEnd() && (p.sig.timeFn || p.sig.infoFn) {
		// "benchmark(", "select load_file(": a delay or information
		// function opened and cut off, as probes send it.
		p.sig.truncated = true
		p.sig.probe = true
		return
	}
	if t := p.peek(); t.kind == kOp && t.op == opMul {
		p.pos++
		p.closeParen()
		return
	}
	p.acceptKW(kwDistinct)
	for !p.bad {
		if p.isKW(kwSelect) {
			p.sig.subquery = true
			p.selectStmt()
		} else {
			p.expr()
		}
		t := p.peek()
		switch {
		case t.kind == kComma:
			p.pos++
			continue
		case t.kind == kWord && (t.kw == kwAs || t.kw == kwFrom || t.kw == kwFor || t.kw == kwUsing || t.kw == kwIn):
			p.pos++
			// a type may be several words: SIGNED INTEGER, CHAR(10)
			if t.kw == kwAs || t.kw == kwUsing {
				for p.peek().kind == kWord && p.peekAt(1).kind == kWord {
					p.pos++
				}
			}
			continue
		}
		break
	}
	p.closeParen()
}

type fnKind uint8

const (
	fnPlain fnKind = iota
	fnTime
	fnInfo
)

var timeFns = [...]string{"sleep", "benchmark", "pg_sleep", "pg_sleep_for", "pg_sleep_until", "randomblob",
	"dbms_lock.sleep", "dbms_pipe.receive_message", "dbms_session.sleep", "sys.dbms_lock.sleep", "get_lock", "sys_eval"}

// infoFns are functions with little use outside reading the database's
// identity or files, or forcing errors that leak them; generic ones
// (ASCII, SUBSTRING, CONCAT, EXP…) are ordinary calls, which keeps
// "cbrt(3), exp(3), sqrt(3)" (manual page references) plain.
var infoFns = [...]string{"version", "database", "user", "current_user", "system_user", "session_user",
	"load_file", "extractvalue", "updatexml", "xp_cmdshell", "utl_http.request", "utl_inaddr.get_host_address",
	"db_name", "user_name", "host_name", "@@version", "current_database", "pg_read_file", "lo_import",
	"geometrycollection", "multipoint", "json_keys", "name_const", "sys_exec", "gtid_subset", "sqlite_version",
	"ctxsys.drithsx.sn", "dbms_xmlgen.getxml", "xmltype", "is_srvrolemember", "openrowset", "opendatasource",
	"schema_name", "current_schema", "pg_ls_dir", "dbms_utility.sqlid_to_sqlhash"}

func fnClass(name string) fnKind {
	for _, n := range timeFns {
		if equalFold(name, n) {
			return fnTime
		}
	}
	for _, n := range infoFns {
		if equalFold(name, n) {
			return fnInfo
		}
	}
	return fnPlain
}
