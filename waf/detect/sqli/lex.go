package sqli

// The SQL lexer: a permissive union of the MySQL, PostgreSQL, MSSQL,
// Oracle and SQLite lexical grammars, enough to tell whether a value
// closes the literal it lands in and continues as SQL. It writes into a
// fixed token array (no allocation) and stops at maxTokens.

type kind uint8

const (
	kEOF     kind = iota
	kString       // '…' or "…" (closed)
	kOpenStr      // a string left open at the end of the value (closed by the application's quote)
	kNumber       // 1, 1.5, 1e3, 0x41, 0b1
	kWord         // identifier or keyword (see kw)
	kQIdent       // `ident` or [ident]
	kVar          // @x, @@version, :x, $1
	kOp           // operators
	kLParen       // (
	kRParen       // )
	kComma        // ,
	kSemi         // ;
	kDot          // .
	kComment      // a comment that runs to the end of the value (--, #, unclosed /*)
	kBad          // a byte no SQL dialect accepts here
)

type token struct {
	kind       kind
	kw         kw // for kWord: the keyword, or kwNone for an identifier
	op         op // for kOp
	start, end int32
}

const maxTokens = 384

type lexer struct {
	s     string
	i     int
	toks  [maxTokens]token
	n     int
	trunc bool // more tokens than maxTokens
	// joinComments drops inline comments without a space (UN/**/ION →
	// UNION), the way filters that strip comments rebuild a keyword.
	joinComments bool
	// inlineComment notes that /*…*/ or /*!…*/ appeared.
	inlineComment bool
	// inExec is set inside a MySQL executable comment /*!…*/.
	inExec bool
}

func (l *lexer) emit(k kind, start int) {
	if l.n == maxTokens {
		l.trunc = true
		return
	}
	l.toks[l.n] = token{kind: k, start: int32(start), end: int32(l.i)}
	l.n++
}

func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', '\v', 0xa0:
		return true
	}
	return false
}

func isWordStart(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c == '_' || c >= 0x80
}

func isWordByte(c byte) bool {
	return isWordStart(c) || ('0' <= c && c <= '9') || c == '$'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// lex tokenises l.s. When quote is non-zero, the value starts inside a
// string literal delimited by quote (the application's opening quote).
// It reports false when the value never leaves that literal.
func (l *lexer) lex(quote byte) bool {
	l.i, l.n, l.trunc, l.inExec, l.inlineComment = 0, 0, false, false, false
	if quote != 0 {
		if !l.stringBody(quote, 0) {
			return false
		}
	}
	for l.i < len(l.s) && l.n < maxTokens {
		c := l.s[l.i]
		start := l.i
		switch {
		case c == 0:
			// A NUL ends the query for C-string APIs and some drivers
			// (' or 1=1;%00): what follows is not SQL.
			l.i = len(l.s)
		case isSpace(c):
			l.i++
		case c == '\'' || c == '"':
			l.i++
			l.stringBody(c, start)
		case c == '`':
			l.i++
			for l.i < len(l.s) && l.s[l.i] != '`' {
				l.i++
			}
			if l.i < len(l.s) {
				l.i++
				l.emit(kQIdent, start)
			} else {
				l.emit(kBad, start)
			}
		case c == '[':
			// MSSQL [ident]; elsewhere an array subscript we do not model.
			j := l.i + 1
			for j < len(l.s) && j-l.i < 130 && l.s[j] != ']' && l.s[j] != '[' {
				j++
			}
			empty := true
			for k := l.i + 1; k < j; k++ {
				empty = empty && isSpace(l.s[k])
			}
			l.i = j
			if j < len(l.s) && l.s[j] == ']' && !empty {
				l.i++
				l.emit(kQIdent, start)
			} else {
				// unclosed, or "[]": no dialect has an empty
				// identifier (it is JavaScript's empty array:
				// "window.dataLayer = window.dataLayer || [];")
				l.emit(kBad, start)
			}
		case isDigit(c) || (c == '.' && l.i+1 < len(l.s) && isDigit(l.s[l.i+1])):
			l.number()
			l.emit(kNumber, start)
		case isWordStart(c):
			// N'…', X'…', B'…', E'…' and _charset'…' prefixes.
			for l.i < len(l.s) && isWordByte(l.s[l.i]) {
				l.i++
			}
			if l.i < len(l.s) && l.s[l.i] == '\'' && (l.i-start == 1 || c == '_') {
				l.i++
				l.stringBody('\'', start)
				break
			}
			l.word(start)
		case c == '@' && l.i+1 < len(l.s) && (l.s[l.i+1] == '>' || (l.s[l.i+1] == '@' && (l.i+2 >= len(l.s) || !isWordStart(l.s[l.i+2])))):
			// @> and @@ operators (not @@version)
			l.i += 2
			l.emit(kOp, start)
			l.toks[l.n-1].op = opContains
		case c == '@':
			l.i++
			if l.i < len(l.s) && l.s[l.i] == '@' {
				l.i++
			}
			for l.i < len(l.s) && (isWordByte(l.s[l.i]) || l.s[l.i] == '.') {
				l.i++
			}
			if l.i < len(l.s) && (l.s[l.i] == '\'' || l.s[l.i] == '"' || l.s[l.i] == '`') && l.i == start+1 {
				// @'name' (MySQL quoted user variable)
				q := l.s[l.i]
				l.i++
				for l.i < len(l.s) && l.s[l.i] != q {
					l.i++
				}
				if l.i < len(l.s) {
					l.i++
				}
			}
			l.emit(kVar, start)
		case c == '$' && l.i+1 < len(l.s) && isDigit(l.s[l.i+1]):
			l.i++
			for l.i < len(l.s) && isDigit(l.s[l.i]) {
				l.i++
			}
			l.emit(kVar, start)
		case c == '#':
			l.i = len(l.s)
			l.emit(kComment, start)
		case c == '-' && l.i+1 < len(l.s) && l.s[l.i+1] == '-':
			l.i = len(l.s)
			l.emit(kComment, start)
		case c == '/' && l.i+1 < len(l.s) && l.s[l.i+1] == '*':
			l.blockComment(start)
		case c == '*' && l.inExec && l.i+1 < len(l.s) && l.s[l.i+1] == '/':
			// the end of a /*! executable comment
			l.inExec = false
			l.i += 2
		case c == '(':
			l.i++
			l.emit(kLParen, start)
		case c == ')':
			l.i++
			l.emit(kRParen, start)
		case c == ',':
			l.i++
			l.emit(kComma, start)
		case c == ';':
			l.i++
			l.emit(kSemi, start)
		case c == '.':
			l.i++
			l.emit(kDot, start)
		case c == ':' && l.n > 0 && l.toks[l.n-1].kind == kWord && l.toks[l.n-1].end == int32(l.i) &&
			l.i+1 < len(l.s) && isWordStart(l.s[l.i+1]):
			// Informix database:table
			l.i++
			l.emit(kDot, start)
		case c == '{':
			// ODBC escape {fn …} / {d '…'}: treat as a parenthesis.
			l.i++
			l.emit(kLParen, start)
		case c == '}':
			l.i++
			l.emit(kRParen, start)
		default:
			if o, n := matchOp(l.s[l.i:]); n > 0 {
				l.i += n
				l.emit(kOp, start)
				l.toks[l.n-1].op = o
				break
			}
			l.i++
			l.emit(kBad, start)
		}
	}
	if l.i < len(l.s) {
		l.trunc = true
	}
	return true
}

// stringBody consumes a string literal's body after its opening quote (at
// l.i), with doubled-quote escapes. It emits kString, or kOpenStr when the
// value ends inside the literal, and reports whether it closed.
func (l *lexer) stringBody(q byte, start int) bool {
	for l.i < len(l.s) {
		if l.s[l.i] == q {
			if l.i+1 < len(l.s) && l.s[l.i+1] == q {
				l.i += 2
				continue
			}
			l.i++
			l.emit(kString, start)
			return true
		}
		l.i++
	}
	l.emit(kOpenStr, start)
	l.toks[l.n-1].op = op(q) // remember the delimiter
	return false
}

func (l *lexer) number() {
	s := l.s
	if s[l.i] == '0' && l.i+1 < len(s) && (s[l.i+1] == 'x' || s[l.i+1] == 'X' || s[l.i+1] == 'b' || s[l.i+1] == 'B') {
		l.i += 2
		for l.i < len(s) && (isDigit(s[l.i]) || ('a' <= s[l.i]|0x20 && s[l.i]|0x20 <= 'f')) {
			l.i++
		}
		return
	}
	for l.i < len(s) && isDigit(s[l.i]) {
		l.i++
	}
	if l.i < len(s) && s[l.i] == '.' {
		l.i++
		for l.i < len(s) && isDigit(s[l.i]) {
			l.i++
		}
	}
	if l.i+1 < len(s) && (s[l.i] == 'e' || s[l.i] == 'E') && (isDigit(s[l.i+1]) || ((s[l.i+1] == '+' || s[l.i+1] == '-') && l.i+2 < len(s) && isDigit(s[l.i+2]))) {
		l.i += 2
		for l.i < len(s) && isDigit(s[l.i]) {
			l.i++
		}
	}
}

// blockComment handles /* … */. A MySQL executable comment /*!…*/ (with
// an optional version) is code: its body is lexed. An ordinary comment is
// whitespace, or nothing at all in joinComments mode; an unclosed one
// runs to the end.
func (l *lexer) blockComment(start int) {
	s := l.s
	l.inlineComment = true
	if l.i+2 < len(s) && s[l.i+2] == '!' {
		l.i += 3
		for l.i < len(s) && isDigit(s[l.i]) {
			l.i++
		}
		// The body is lexed as code; its "*/" is skipped by the main
		// loop.
		l.inExec = true
		return
	}
	end := -1
	for j := l.i + 2; j+1 < len(s); j++ {
		if s[j] == '*' && s[j+1] == '/' {
			end = j + 2
			break
		}
	}
	if end < 0 {
		l.i = len(s)
		l.emit(kComment, start)
		return
	}
	l.i = end
	if l.joinComments && l.n > 0 && l.toks[l.n-1].end == int32(start) && l.toks[l.n-1].kind == kWord &&
		l.i < len(s) && isWordByte(s[l.i]) {
		// UN/**/ION: continue the previous word.
		prev := &l.toks[l.n-1]
		for l.i < len(s) && isWordByte(s[l.i]) {
			l.i++
		}
		l.n--
		l.wordJoined(int(prev.start), start, end)
	}
}

// word classifies the word s[start:l.i].
func (l *lexer) word(start int) {
	l.emit(kWord, start)
	if l.n > 0 && l.toks[l.n-1].start == int32(start) {
		l.toks[l.n-1].kw = lookupKW(l.s[start:l.i], "")
	}
}

// wordJoined classifies a word split by an inline comment at
// [cstart,cend).
func (l *lexer) wordJoined(start, cstart, cend int) {
	l.emit(kWord, start)
	if l.n > 0 && l.toks[l.n-1].start == int32(start) {
		l.toks[l.n-1].kw = lookupKW(l.s[start:cstart], l.s[cend:l.i])
	}
}
