// Package nosql detects NoSQL (MongoDB-style) injection: query operators
// smuggled where an application expects a plain value (user[$ne]=x, a
// JSON {"$gt": ""}), server-side JavaScript operators ($where, $function,
// $accumulator) and JavaScript written to run inside them (this.password
// comparisons, sleep loops, "return true").
//
// Place in the request path: a detector of the waf stage, run on values
// that waf/decode has already decoded, with the variable name the
// extraction gave them (ARGS:user[$ne], JSON:user.$ne). Three readings:
//
//   - the name: bracket or dotted key paths whose segment is an operator
//     ("$" and an identifier), as qs-style parsers and JSON bodies turn
//     them into operator objects;
//   - the value as JSON or a JavaScript object literal: object keys that
//     are operators, found by a small tokenizer that tracks the key path;
//   - the value as $where JavaScript: member access on "this", sleep and
//     busy loops, "return true", db.* calls, after a statement break.
//
// Operators are judged by what they do and where they sit: $where and its
// kin run code; comparison operators on a credential field are a login
// bypass; the same operators inside a filter container are how Strapi- or
// Feathers-style APIs are queried; MongoDB Extended JSON ($oid, $date)
// and JSON Schema ($schema, $ref) keys are data.
package nosql

import (
	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector finds NoSQL operator and $where injection.
type Detector struct{}

// New returns the NoSQL detector.
func New() *Detector { return &Detector{} }

// Class reports detect.NoSQL.
func (*Detector) Class() detect.Class { return detect.NoSQL }

// Detect reports the strongest finding for in.
func (d *Detector) Detect(in detect.Input) (detect.Finding, bool) {
	var s scan
	return s.run(in)
}

type scan struct {
	in    detect.Input
	steps int
	best  detect.Finding
	found bool
	code  bool // the name puts the value in a JavaScript operator
}

func (s *scan) report(conf int, reason string, start, end int) {
	conf = min(conf, 100)
	if conf < 1 || (s.found && conf <= s.best.Confidence) {
		return
	}
	s.found = true
	s.best = detect.Finding{Class: detect.NoSQL, Detector: "nosql", Confidence: conf, Reason: reason, Start: start, End: end}
}

func (s *scan) run(in detect.Input) (detect.Finding, bool) {
	s.in = in
	v := in.Value
	// The variable name (after the collection prefix "ARGS:", "JSON:").
	name := in.Name
	for k := 0; k < len(name); k++ {
		if name[k] == ':' {
			name = name[k+1:]
			break
		}
	}
	if hasOperatorMark(name) {
		s.path(name, false)
	}
	if in.Where == detect.WhereArgName && hasOperatorMark(v) && v != name {
		s.path(v, true)
	}
	// Pre-filter, one pass: an operator mark, or the start of a word
	// the $where reading looks for (this., sleep, while, return, db.,
	// for, function, new Date) or "==".
	dollar, jsHint := false, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '$':
			if i+1 < len(v) && isIdentStart(v[i+1]) {
				dollar = true
			}
		case '=':
			jsHint = jsHint || i+1 < len(v) && v[i+1] == '='
		case 't', 's', 'w', 'r', 'd', 'f', 'n':
			if !jsHint && (i == 0 || !isIdent(v[i-1])) && jsWord(v[i:]) {
				jsHint = true
			}
		}
	}
	s.steps += len(v)
	if dollar && in.Where != detect.WhereArgName {
		s.json(v)
	}
	if jsHint {
		s.javascript(v)
	}
	if !s.found {
		return detect.Finding{}, false
	}
	return s.best, true
}

func hasOperatorMark(s string) bool {
	for k := 0; k+1 < len(s); k++ {
		if s[k] == '$' && isIdentStart(s[k+1]) {
			return true
		}
	}
	return false
}

func isIdentStart(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' || c == '_' }
func isIdent(c byte) bool      { return isIdentStart(c) || c >= '0' && c <= '9' }

// opKind is what an operator does.
type opKind uint8

const (
	opUnknown opKind = iota
	opData           // Extended JSON and JSON Schema keys: data, not queries
	opCompare        // $ne, $gt, $regex, $exists…: match what they should not
	opLogic          // $or, $and, $nor, $not, $elemMatch
	opCode           // $where, $function, $accumulator, $expr: run code
	opStage          // $lookup, $unionWith, $out, $merge, $graphLookup: reach other collections
	opUpdate         // $set, $inc, $push…: change other fields
)

func classifyOp(op string) opKind {
	switch op {
	case "$where", "$function", "$accumulator", "$expr", "$jsonSchema":
		return opCode
	case "$ne", "$eq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex", "$exists", "$type",
		"$mod", "$all", "$size", "$text", "$search", "$options", "$not":
		return opCompare
	case "$or", "$and", "$nor", "$elemMatch":
		return opLogic
	case "$lookup", "$graphLookup", "$unionWith", "$out", "$merge", "$match", "$group", "$project", "$facet", "$addFields", "$replaceRoot":
		return opStage
	case "$set", "$unset", "$inc", "$push", "$pull", "$addToSet", "$rename", "$setOnInsert", "$currentDate", "$mul", "$pop", "$bit", "$max", "$min":
		return opUpdate
	case "$oid", "$date", "$numberLong", "$numberInt", "$numberDouble", "$numberDecimal", "$binary",
		"$uuid", "$timestamp", "$symbol", "$code", "$minKey", "$maxKey", "$undefined",
		"$regularExpression", "$dbPointer", "$ref", "$id", "$db", "$schema", "$defs", "$comment",
		"$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary", "$t", "$type_":
		return opData
	}
	return opUnknown
}

// credential reports whether a field name is one a login or lookup
// compares: an operator there bypasses the comparison.
func credential(field string) bool {
	for _, w := range []string{"user", "login", "email", "mail", "pass", "pwd", "token", "pin", "otp", "secret", "auth", "session", "account", "apikey", "api_key", "code", "role", "admin", "uid"} {
		if containsFold(field, w) {
			return true
		}
	}
	return false
}

// filterContainer reports whether a key holds query filters by design.
func filterContainer(key string) bool {
	var buf [16]byte
	if len(key) > len(buf) {
		return false
	}
	for k := 0; k < len(key); k++ {
		c := key[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[k] = c
	}
	switch string(buf[:len(key)]) {
	case "filter", "filters", "where", "query", "q", "search", "find", "criteria", "conditions", "match", "selector":
		return true
	}
	return false
}

// weigh rates an operator given the field it applies to (the key before
// it) and whether a filter container encloses it.
func weigh(op string, field string, inContainer, prose bool) (int, string) {
	kind := classifyOp(op)
	conf, reason := 0, ""
	switch kind {
	case opData:
		return 0, ""
	case opCode:
		conf, reason = 95, "operator that runs server-side JavaScript or expressions"
	case opCompare, opLogic:
		switch {
		case credential(field):
			conf, reason = 92, "query operator on a credential field (comparison bypass)"
		case inContainer:
			conf, reason = 30, "query operator inside a filter parameter"
		case field == "":
			conf, reason = 80, "query operator where a value is expected"
		default:
			conf, reason = 75, "query operator where a value is expected"
		}
	case opStage:
		conf, reason = 80, "aggregation stage operator"
		if inContainer {
			conf = 60
		}
	case opUpdate:
		conf, reason = 72, "update operator where a value is expected"
		if inContainer {
			conf = 45
		}
	default:
		conf, reason = 35, "unknown $-prefixed key"
	}
	if prose {
		conf -= 40
	}
	return conf, reason
}

// path judges a key path: "user[$ne]", "filters[title][$eq]",
// "user.$ne", "$where". inValue says the path is the value itself (an
// argument name), so the span points into it.
func (s *scan) path(p string, inValue bool) {
	var segs [16]struct{ a, b int }
	n := 0
	for i := 0; i < len(p) && n < len(segs); {
		s.steps++
		for i < len(p) && (p[i] == '[' || p[i] == ']' || p[i] == '.') {
			i++
		}
		a := i
		for i < len(p) && p[i] != '[' && p[i] != ']' && p[i] != '.' {
			i++
		}
		if i > a {
			segs[n] = struct{ a, b int }{a, i}
			n++
		}
	}
	s.steps += len(p)
	inContainer := false
	for k := 0; k < n; k++ {
		seg := p[segs[k].a:segs[k].b]
		if len(seg) > 1 && seg[0] == '$' && isIdentStart(seg[1]) {
			field := ""
			if k > 0 {
				field = p[segs[k-1].a:segs[k-1].b]
			}
			kind := classifyOp(seg)
			if kind == opCode {
				s.code = true
			}
			conf, reason := weigh(seg, field, inContainer, false)
			start, end := 0, len(s.in.Value)
			if inValue {
				start, end = segs[k].a, segs[k].b
			}
			s.report(conf, reason, start, end)
			continue
		}
		if filterContainer(seg) {
			inContainer = true
		}
	}
}

// level is one object or array of the JSON being tokenized.
type level struct {
	keyA, keyB int // span of the last key at this level, keyA < 0 if none
	container  bool
}

// jsonScan is the tokenizer's state.
type jsonScan struct {
	v     string
	stack [32]level
	depth int
	prose bool
}

// json tokenizes v as JSON or a JavaScript object literal and judges
// every object key that is an operator, with the key path above it.
func (s *scan) json(v string) {
	js := jsonScan{v: v}
	lo := skipSpace(v, 0)
	// JSON embedded in prose (a forum post showing a query) is talk.
	js.prose = lo < len(v) && v[lo] != '{' && v[lo] != '['
	for i := lo; i < len(v); {
		s.steps++
		c := v[i]
		switch {
		case c == '{' || c == '[':
			if js.depth < len(js.stack) {
				js.stack[js.depth] = level{keyA: -1}
			}
			js.depth++
			i++
		case c == '}' || c == ']':
			if js.depth > 0 {
				js.depth--
			}
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(v) && v[j] != c {
				if v[j] == '\\' {
					j++
				}
				j++
			}
			s.steps += j - i
			if j >= len(v) {
				return
			}
			i = s.key(&js, i+1, j, j+1)
		case c == '$' || isIdentStart(c):
			// An unquoted key of a JavaScript object literal.
			j := i + 1
			for j < len(v) && (isIdent(v[j]) || v[j] == '$') {
				j++
			}
			s.steps += j - i
			i = s.key(&js, i, j, j)
		default:
			i++
		}
	}
}

// key judges v[a:b] if a ':' follows (at or after next), so that it is an
// object key, records it as its level's key and returns where to go on.
func (s *scan) key(js *jsonScan, a, b, next int) int {
	v := js.v
	j := skipSpace(v, next)
	if j >= len(v) || v[j] != ':' || js.depth == 0 {
		return next
	}
	k := v[a:b]
	if len(k) > 1 && k[0] == '$' && isIdentStart(k[1]) {
		// The field is the key one level up: {"user": {"$ne": 1}}.
		field := ""
		if js.depth >= 2 && js.depth-2 < len(js.stack) {
			if up := js.stack[js.depth-2]; up.keyA >= 0 {
				field = v[up.keyA:up.keyB]
			}
		}
		inContainer := false
		for l := 0; l < js.depth && l < len(js.stack); l++ {
			inContainer = inContainer || js.stack[l].container
		}
		if classifyOp(k) == opCode {
			s.code = true
		}
		conf, reason := weigh(k, field, inContainer, js.prose)
		s.report(conf, reason, a, b)
	}
	if js.depth <= len(js.stack) {
		l := &js.stack[js.depth-1]
		l.keyA, l.keyB = a, b
		l.container = l.container || filterContainer(k)
	}
	return j + 1
}

// javascript judges v as code that would run in $where (or be pasted
// into a $where string): member access on this, sleeps and busy loops,
// "return true", db.* calls, and a statement break before them.
func (s *scan) javascript(v string) {
	thisAccess, thisUse, sleep, busy, ret, db, fn := false, false, false, false, false, false, false
	date, loop := false, false
	first := -1
	mark := func(i int) {
		if first < 0 || i < first {
			first = i
		}
	}
	for i := 0; i < len(v); i++ {
		s.steps++
		c := v[i]
		if c != 't' && c != 's' && c != 'w' && c != 'r' && c != 'd' && c != 'f' {
			continue
		}
		if i > 0 && isIdent(v[i-1]) {
			continue
		}
		rest := v[i:]
		switch {
		case hasPrefix(rest, "this."):
			j := i + 5
			a := j
			for j < len(v) && isIdent(v[j]) {
				j++
			}
			if j > a {
				thisAccess = true
				mark(i)
				// What follows the field: a comparison or a method.
				k := skipSpace(v, j)
				if k < len(v) && (v[k] == '=' || v[k] == '!' || v[k] == '<' || v[k] == '>' || v[k] == '[' || v[k] == '.') {
					thisUse = true
				}
			}
		case hasPrefix(rest, "sleep"):
			k := skipSpace(v, i+5)
			if k < len(v) && v[k] == '(' {
				k = skipSpace(v, k+1)
				a := k
				for k < len(v) && v[k] >= '0' && v[k] <= '9' {
					k++
				}
				if k > a && k-a <= 9 {
					if k = skipSpace(v, k); k < len(v) && v[k] == ')' {
						sleep = true
						mark(i)
					}
				}
			}
		case hasPrefix(rest, "while"):
			k := skipSpace(v, i+5)
			if k < len(v) && v[k] == '(' {
				loop = true
				k = skipSpace(v, k+1)
				if hasPrefix(v[k:], "true") || hasPrefix(v[k:], "1") || hasPrefix(v[k:], "!0") {
					busy = true
					mark(i)
				}
			}
		case hasPrefix(rest, "return"):
			k := skipSpace(v, i+6)
			if k > i+6 || (k < len(v) && (v[k] == '(' || v[k] == '!')) {
				r := v[k:]
				if hasWord(r, "true") || hasWord(r, "1") || hasPrefix(r, "!0") || hasWord(r, "this") || hasPrefix(r, "(") {
					ret = true
					mark(i)
				}
			}
		case hasPrefix(rest, "db."):
			k := i + 3
			a := k
			for k < len(v) && isIdent(v[k]) {
				k++
			}
			if k > a && k < len(v) && v[k] == '.' {
				// db.collection.method(
				k++
				b := k
				for k < len(v) && isIdent(v[k]) {
					k++
				}
				if k == b {
					k = len(v)
				}
			}
			if k > a && k < len(v) && v[k] == '(' {
				db = true
				mark(i)
			}
		case hasPrefix(rest, "for"):
			if k := skipSpace(v, i+3); k < len(v) && v[k] == '(' {
				loop = true
			}
		case hasPrefix(rest, "function"):
			k := skipSpace(v, i+8)
			if k < len(v) && v[k] == '(' {
				fn = true
			}
		}
		s.steps += 8
	}
	// A loop that waits on the clock: new Date() compared in a loop.
	if loop && contains(v, "new Date") {
		date = true
		if at := index(v, "new Date"); first < 0 || at < first {
			first = at
		}
	}
	// A tautology after the break: "' || 1==1//", "' || 'a'=='a".
	taut := -1
	if contains(v, "==") {
		taut = tautology(v)
	}
	if taut >= 0 && (first < 0 || taut < first) {
		first = taut
	}
	if first < 0 {
		return
	}
	conf := 0
	switch {
	case thisUse:
		conf = 70
	case thisAccess:
		conf = 30
	}
	if sleep || busy {
		conf = max(conf, 45)
	}
	if date || taut >= 0 {
		conf = max(conf, 35) // ordinary alone, an attack after a break
	}
	if db {
		conf = max(conf, 50)
	}
	if ret {
		conf = max(conf, 35)
	}
	if fn && conf > 0 {
		conf += 5
	}
	// Breaking out of the string or number the application quoted:
	// "x'; …", "' || …", "1; …".
	if literalBreak(v) {
		conf += 35
	}
	// A $where payload is one short expression; code pasted into a
	// forum post spans lines.
	if !s.code && (len(v) > 300 || indexByte(v, '\n') >= 0) {
		conf = min(conf, 35)
	}
	if s.code {
		conf = max(conf, 95)
	}
	if prose(v) {
		conf -= 35
	}
	s.report(conf, "JavaScript for a $where clause (this access, sleep, busy loop, return true)", first, len(v))
}

// tautology finds a comparison of two equal literals joined by || or
// && ("1==1", "'a'=='a", "\"x\"===\"x\""), or returns -1.
func tautology(v string) int {
	for k := 0; k+1 < len(v); k++ {
		if v[k] != '=' || v[k+1] != '=' {
			continue
		}
		// Left operand: digits or a quoted literal ending at k.
		l := k
		for l > 0 && v[l-1] == ' ' {
			l--
		}
		r := k + 2
		if r < len(v) && v[r] == '=' {
			r++
		}
		for r < len(v) && v[r] == ' ' {
			r++
		}
		left := literalBefore(v, l)
		right := literalAfter(v, r)
		if left != "" && left == right {
			return max(0, l-len(left)-2)
		}
	}
	return -1
}

func literalBefore(v string, l int) string {
	a := l
	if a > 0 && (v[a-1] == '\'' || v[a-1] == '"') {
		q := v[a-1]
		b := a - 1
		for b > 0 && v[b-1] != q && a-b < 32 {
			b--
		}
		if b > 0 {
			return v[b : a-1]
		}
		return ""
	}
	for a > 0 && v[a-1] >= '0' && v[a-1] <= '9' && l-a < 16 {
		a--
	}
	if a == l || (a > 0 && isIdent(v[a-1])) {
		return ""
	}
	return v[a:l]
}

func literalAfter(v string, r int) string {
	if r < len(v) && (v[r] == '\'' || v[r] == '"') {
		q := v[r]
		e := r + 1
		for e < len(v) && v[e] != q && e-r < 32 {
			e++
		}
		// The closing quote may be the application's own ("'a'=='a").
		return v[r+1 : e]
	}
	e := r
	for e < len(v) && v[e] >= '0' && v[e] <= '9' && e-r < 16 {
		e++
	}
	if e == r || (e < len(v) && isIdent(v[e])) {
		return ""
	}
	return v[r:e]
}

func contains(s, w string) bool { return index(s, w) >= 0 }

func index(s, w string) int {
	for k := 0; k+len(w) <= len(s); k++ {
		if s[k] == w[0] && s[k:k+len(w)] == w {
			return k
		}
	}
	return -1
}

// jsWord reports whether s starts with a word the $where reading weighs.
func jsWord(s string) bool {
	switch s[0] {
	case 't':
		return hasPrefix(s, "this.")
	case 's':
		return hasPrefix(s, "sleep")
	case 'w':
		return hasPrefix(s, "while")
	case 'r':
		return hasPrefix(s, "return")
	case 'd':
		return hasPrefix(s, "db.")
	case 'f':
		return hasPrefix(s, "for") || hasPrefix(s, "function")
	case 'n':
		return hasPrefix(s, "new Date")
	}
	return false
}

func skipSpace(v string, k int) int {
	for k < len(v) && (v[k] == ' ' || v[k] == '\t' || v[k] == '\n' || v[k] == '\r') {
		k++
	}
	return k
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func hasWord(s, w string) bool {
	return hasPrefix(s, w) && (len(s) == len(w) || !isIdent(s[len(w)]))
}

// literalBreak reports whether v starts by closing the literal an
// application put it in: a short prefix, a quote, then ';', '||', '&&'
// or ')'; or a number followed by ';', '||' or '&&'.
func literalBreak(v string) bool {
	k := skipSpace(v, 0)
	a := k
	for k < len(v) && k-a <= 32 && v[k] != '\'' && v[k] != '"' && v[k] != ' ' && v[k] != ';' && v[k] != '|' && v[k] != '&' {
		k++
	}
	if k >= len(v) {
		return false
	}
	if v[k] == '\'' || v[k] == '"' {
		k = skipSpace(v, k+1)
	} else {
		// Without a quote the prefix must be a number.
		if k == a {
			return false
		}
		for j := a; j < k; j++ {
			if v[j] < '0' || v[j] > '9' {
				return false
			}
		}
		k = skipSpace(v, k)
	}
	if k >= len(v) {
		return false
	}
	switch v[k] {
	case ';', ')':
		return true
	case '|', '&':
		return k+1 < len(v) && v[k+1] == v[k]
	}
	return false
}

func indexByte(s string, c byte) int {
	for k := 0; k < len(s); k++ {
		if s[k] == c {
			return k
		}
	}
	return -1
}

// prose reports whether v reads as sentences: five or more words of two
// or more letters, and letters and spaces make most of it.
func prose(v string) bool {
	words, run, plain, code := 0, 0, 0, 0
	for k := 0; k <= len(v); k++ {
		var c byte = ' '
		if k < len(v) {
			c = v[k]
		}
		if c|0x20 >= 'a' && c|0x20 <= 'z' {
			run++
			plain++
			continue
		}
		if run >= 2 {
			words++
		}
		run = 0
		switch c {
		case ' ', ',', '.', '\n':
			plain++
		case ';', '(', ')', '{', '}', '=', '|', '&':
			code++
		}
	}
	return words >= 5 && plain*10 >= len(v)*8 && code <= 1
}

func containsFold(s, w string) bool {
	for k := 0; k+len(w) <= len(s); k++ {
		match := true
		for j := 0; j < len(w); j++ {
			c := s[k+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != w[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
