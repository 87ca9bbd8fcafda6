// Package ssti detects server-side template injection: a value that,
// rendered as part of a template, is template code rather than text. It
// recognises the delimiters of the common engines (Jinja2, Twig, Django,
// Tornado, Nunjucks and Liquid {{ }} and {% %}; Handlebars and Mustache;
// Go templates; Freemarker ${ } and <# >; Velocity #set( ) and $refs;
// Thymeleaf, Spring EL, JSP EL and OGNL ${ } #{ } *{ } @{ } ~{ } %{ };
// ERB, JSP, EJS and Mako <% %>; Smarty { }; Razor @( )) and reads the
// expression inside with a small lexer.
//
// Place in the request path: a detector of the waf stage, run on values
// that waf/decode has already decoded. The question is not whether the
// value contains braces but what the expression inside would do: compute
// (7*7, 7*'7'), reach objects that lead out of the sandbox (__class__,
// __globals__, getClass().forName, T(java.lang.Runtime), @Class@member,
// ?new(), _self.env, constructor), call functions, read configuration
// (config, settings, request), import modules or include files. Tokens,
// not substrings, are judged: "__class__" must be a member or a string
// used as one, "7*7" must be an arithmetic expression between literals.
//
// Near-misses weigh little: a bare placeholder ({{name}}, ${price}) is
// what a forum post about templates or a price list shows; an upper-case
// ${HOME} is a shell variable; method calls without a dangerous object
// are what JavaScript template literals and Vue or Angular templates hold.
package ssti

import (
	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector finds template injection.
type Detector struct{}

// New returns the SSTI detector.
func New() *Detector { return &Detector{} }

// Class reports detect.SSTI.
func (*Detector) Class() detect.Class { return detect.SSTI }

// Detect reports the strongest finding in in.Value.
func (d *Detector) Detect(in detect.Input) (detect.Finding, bool) {
	var s scan
	return s.run(in)
}

const (
	maxExpr   = 2048 // bytes of one expression followed
	maxNest   = 32   // bracket nesting followed
	probeSize = 100  // a value this short with many delimiter kinds is a probe

	// The scan stops when its work passes this budget; rescanning is
	// limited by design, this is the backstop.
	budgetPerByte = 12
	budgetConst   = 4096
)

// delimiterKind reports the kind of expression delimiter opening at v[i]
// ("{{", "{%", "${" and kin, "<%", "<#x", "#set(" and kin, "@("), or -1.
func delimiterKind(v string, i int) int {
	if i+1 >= len(v) {
		return -1
	}
	c, n := v[i], v[i+1]
	switch {
	case c == '{' && n == '{':
		return 0
	case c == '{' && n == '%':
		return 1
	case n == '{' && (c == '$' || c == '#' || c == '*' || c == '@' || c == '~' || c == '%'):
		return 2
	case c == '<' && n == '%':
		return 3
	case c == '<' && n == '#' && i+2 < len(v) && isIdentStart(v[i+2]):
		return 4
	case c == '#' && isIdentStart(n) && velocityDirective(v, i+1) > 0:
		return 5
	case c == '@' && n == '(':
		return 6
	}
	return -1
}

type scan struct {
	v     string
	steps int
	best  detect.Finding
	found bool
	prose bool
	kinds uint16 // delimiter kinds seen, for the polyglot probe

	blockParams int // Handlebars block helpers with "as |x|" so far
}

func (s *scan) report(conf int, reason string, start, end int) {
	conf = min(conf, 100)
	if conf < 1 || (s.found && conf <= s.best.Confidence) {
		return
	}
	s.found = true
	s.best = detect.Finding{Class: detect.SSTI, Detector: "ssti", Confidence: conf, Reason: reason, Start: start, End: min(end, len(s.v))}
}

// closer says how an expression ends.
type closer uint8

const (
	closeBraces2 closer = iota // }}
	closeBraces3               // }}}
	closePercent               // %}
	closeBrace                 // } at depth 0
	closeERB                   // %>
	closeAngle                 // > at depth 0
	closeBracket               // ] at depth 0
	closeParen                 // ) at depth 0 (the directive's own parenthesis)
)

// family is the engine family, which decides how statements read.
type family uint8

const (
	famMustache  family = iota // {{ }}: Jinja, Twig, Handlebars, Go, Angular…
	famStatement               // {% %}
	famEL                      // ${ } #{ } *{ } @{ } ~{ } %{ }
	famERB                     // <% %>
	famFTL                     // <# > [# ]
	famVelocity                // #set( ) #if( ) …
	famRazor                   // @( )
)

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
func isIdentStart(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' || c == '_' }
func isIdent(c byte) bool      { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }

// trigger marks the bytes an opener starts with.
var trigger = func() (t [256]bool) {
	for _, c := range []byte("{$#*@~%<[") {
		t[c] = true
	}
	return t
}()

func (s *scan) run(in detect.Input) (detect.Finding, bool) {
	v := in.Value
	s.v = v
	hit := false
	spaces := 0
	for i := 0; i+1 < len(v); i++ {
		c := v[i]
		if trigger[c] {
			n := v[i+1]
			if k := delimiterKind(v, i); k >= 0 {
				s.kinds |= 1 << k
				hit = true
			} else if (c == '{' && (isIdentStart(n) || n == '$' || n == '/')) || (c == '[' && n == '#') || (c == '#' && isIdentStart(n)) ||
				(c == '@' && n >= 'A' && n <= 'Z') || (c == '$' && isIdentStart(n)) {
				hit = true
			}
		} else if c == ' ' {
			spaces++
		}
	}
	s.steps += len(v)
	if !hit {
		return detect.Finding{}, false
	}
	s.prose = spaces >= 6
	budget := budgetPerByte*len(v) + budgetConst
	for i := 0; i+1 < len(v) && s.steps < budget; {
		s.steps++
		if !trigger[v[i]] {
			i++
			continue
		}
		i = s.at(i)
	}
	if s.kinds != 0 && len(v) <= probeSize && popcount(s.kinds) >= 3 {
		s.report(72, "several template delimiters in a short value (template syntax probe)", 0, len(v))
	}
	if !s.found {
		return detect.Finding{}, false
	}
	return s.best, true
}

func popcount(x uint16) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// at looks for an opener at v[i] and judges its expression; it returns
// where scanning continues.
func (s *scan) at(i int) int {
	v := s.v
	c, n := v[i], v[i+1]
	switch {
	case c == '{' && n == '{':
		if i+2 < len(v) && v[i+2] == '{' {
			return s.expr(i, 3, closeBraces3, famMustache)
		}
		return s.expr(i, 2, closeBraces2, famMustache)
	case c == '{' && n == '%':
		return s.expr(i, 2, closePercent, famStatement)
	case c == '{':
		return s.smarty(i)
	case n == '{' && (c == '$' || c == '#' || c == '*' || c == '@' || c == '~' || c == '%'):
		if c == '$' && i > 0 && v[i-1] == '$' {
			return i + 2 // "$${" escapes in several engines
		}
		return s.expr(i, 2, closeBrace, famEL)
	case c == '$' && n == '!' && i+2 < len(v) && v[i+2] == '{':
		return s.expr(i, 3, closeBrace, famEL) // Velocity quiet reference
	case c == '<' && n == '%':
		if hasPrefix(v[i:], "<%--") {
			return skipPast(s, i+4, "--%>")
		}
		skip := 2
		if i+2 < len(v) && (v[i+2] == '=' || v[i+2] == '-' || v[i+2] == '@' || v[i+2] == '#' || v[i+2] == '!') {
			skip = 3
		}
		return s.expr(i, skip, closeERB, famERB)
	case c == '<' && n == '#' && i+2 < len(v) && isIdentStart(v[i+2]):
		return s.expr(i, 2, closeAngle, famFTL)
	case c == '[' && n == '#' && i+2 < len(v) && isIdentStart(v[i+2]):
		if ftlDirective(v[i+2:]) {
			return s.expr(i, 2, closeBracket, famFTL)
		}
	case c == '#' && isIdentStart(n):
		if k := velocityDirective(v, i+1); k > 0 {
			return s.expr(i, k-i, closeParen, famVelocity)
		}
	case c == '@' && n == '(':
		return s.expr(i, 2, closeParen, famRazor)
	case c == '@' && n >= 'A' && n <= 'Z':
		return s.reference(i, i+1)
	case c == '$' && isIdentStart(n):
		return s.reference(i, i+1)
	}
	return i + 1
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func skipPast(s *scan, i int, end string) int {
	v := s.v
	for ; i+len(end) <= len(v); i++ {
		s.steps++
		if v[i] == end[0] && v[i:i+len(end)] == end {
			return i + len(end)
		}
	}
	return len(v)
}

func ftlDirective(rest string) bool {
	for _, d := range []string{"assign", "list", "if", "include", "import", "macro", "function", "setting", "attempt", "global", "local", "ftl", "visit", "recurse", "compress", "noparse"} {
		if hasPrefix(rest, d) && (len(rest) == len(d) || !isIdent(rest[len(d)])) {
			return true
		}
	}
	return false
}

// velocityDirective returns the index after "#name(" (spaces allowed
// before the parenthesis) for a Velocity directive, or 0.
func velocityDirective(v string, a int) int {
	b := a
	for b < len(v) && b-a < 12 && isIdent(v[b]) {
		b++
	}
	switch v[a:b] {
	case "set", "if", "elseif", "foreach", "evaluate", "define", "parse", "include", "macro":
	default:
		return 0
	}
	k := b
	for k < len(v) && (v[k] == ' ' || v[k] == '\t') {
		k++
	}
	if k < len(v) && v[k] == '(' {
		return k + 1
	}
	return 0
}

// features is what lexing an expression found.
type features struct {
	tokens     int
	idents     int
	first      [2]int // span of the first identifier
	strong     bool   // a dangerous object, member or construct
	strongWhy  string
	arithLit   bool // arithmetic between literals: 7*7, 7*'7', "a"+"b"
	arithAny   bool // arithmetic between anything
	calls      int
	members    int
	context    bool // a configuration or request object
	filters    int
	callFilter bool // a filter that calls what a string names
	command    bool // a backtick command (ERB)
	importStmt bool
	include    bool
	debug      bool
	goDot      bool // Go template context "."
	blockAs    bool // Handlebars {{#with … as |x|}}
	goCall     bool // Go template "call"
	badColon   bool // ':' at the top level where the syntax has none
	strClass   bool // a string literal naming a Java class
}

type tokKind uint8

const (
	tNone tokKind = iota
	tIdent
	tNumber
	tString
	tClose // ) or ]
	tDot
	tOp
	tOpen
	tPipe
	tQuestion
	tAt
	tHash
	tOther
)

// expr lexes the expression after the opener at v[i] (of length skip)
// up to its closer, judges it, and returns where scanning continues.
func (s *scan) expr(i, skip int, cl closer, fam family) int {
	v := s.v
	start := i
	k := i + skip
	var f features
	f.first = [2]int{-1, -1}
	var stack [maxNest]byte
	depth := 0
	prev := tNone
	prevIdent := [2]int{-1, -1} // span of the previous identifier token
	lastOperand := tNone        // kind of the operand before a pending operator
	pendingArith := false
	sawQuestion := false
	limit := min(len(v), i+skip+maxExpr)
	for k < limit {
		s.steps++
		c := v[k]
		// Closers at depth 0.
		if depth == 0 {
			switch cl {
			case closeBraces2:
				if c == '}' && k+1 < len(v) && v[k+1] == '}' {
					return s.judge(&f, fam, start, k+2)
				}
			case closeBraces3:
				if c == '}' && hasPrefix(v[k:], "}}}") {
					return s.judge(&f, fam, start, k+3)
				}
			case closePercent:
				if c == '%' && k+1 < len(v) && v[k+1] == '}' {
					return s.judge(&f, fam, start, k+2)
				}
			case closeBrace:
				if c == '}' {
					return s.judge(&f, fam, start, k+1)
				}
			case closeERB:
				if c == '%' && k+1 < len(v) && v[k+1] == '>' {
					return s.judge(&f, fam, start, k+2)
				}
			case closeAngle:
				if c == '>' {
					return s.judge(&f, fam, start, k+1)
				}
			case closeBracket:
				if c == ']' {
					return s.judge(&f, fam, start, k+1)
				}
			case closeParen:
				if c == ')' {
					return s.judge(&f, fam, start, k+1)
				}
			}
		}
		// Another delimiter outside a string: this expression never
		// closed (template engines reject nested delimiters); resume
		// there, so no byte is lexed twice.
		if k > i+skip-1 && trigger[c] && delimiterKind(v, k) >= 0 && delimiterKind(v, k) != 5 {
			return k
		}
		switch {
		case isSpace(c):
			k++
			continue
		case c == '\'' || c == '"' || c == '`':
			e := k + 1
			for e < limit && v[e] != c {
				if v[e] == '\\' {
					e++
				}
				e++
			}
			s.steps += e - k
			if e >= limit {
				// Unterminated: the engine rejects the template. Go on
				// at the first delimiter inside the would-be string.
				for j := k + 1; j < e && j+1 < len(v); j++ {
					if trigger[v[j]] && delimiterKind(v, j) >= 0 {
						return j
					}
				}
				return e
			}
			lit := v[k+1 : e]
			if c == '`' && (fam == famERB || fam == famEL && v[start] == '#') {
				// Ruby's backticks, in ERB or in "#{…}" interpolation;
				// Go templates use them for raw strings.
				f.command = true
			}
			s.stringLiteral(&f, lit)
			if pendingArith && (lastOperand == tNumber || lastOperand == tString) {
				f.arithLit = true
			}
			if pendingArith {
				f.arithAny = true
			}
			pendingArith = false
			lastOperand = tString
			prev = tString
			f.tokens++
			k = e + 1
			continue
		case isDigit(c):
			e := k
			for e < limit && (isDigit(v[e]) || v[e] == '.' || v[e] == 'x' || v[e] == 'e' || v[e]|0x20 >= 'a' && v[e]|0x20 <= 'f' && e > k+1 && (v[k+1] == 'x' || v[k+1] == 'X')) {
				e++
			}
			if pendingArith && (lastOperand == tNumber || lastOperand == tString) {
				f.arithLit = true
			}
			if pendingArith {
				f.arithAny = true
			}
			pendingArith = false
			lastOperand = tNumber
			prev = tNumber
			f.tokens++
			k = e
			continue
		case isIdentStart(c) || c == '$':
			e := k + 1
			for e < limit && isIdent(v[e]) {
				e++
			}
			s.steps += e - k
			name := v[k:e]
			s.ident(&f, name, prev, fam, k, e, v)
			if f.first[0] < 0 {
				f.first = [2]int{k, e}
			}
			if pendingArith {
				f.arithAny = true
			}
			pendingArith = false
			lastOperand = tIdent
			prevIdent = [2]int{k, e}
			prev = tIdent
			f.tokens++
			f.idents++
			k = e
			continue
		}
		// Punctuation.
		f.tokens++
		switch c {
		case '(', '[', '{':
			if c == '(' && (prev == tIdent || prev == tClose) {
				f.calls++
				if prev == tIdent && prevIdent[0] >= 0 {
					s.callee(&f, v[prevIdent[0]:prevIdent[1]], k)
				}
			}
			if c == '[' && (prev == tIdent || prev == tClose || prev == tString) {
				f.members++
			}
			if depth == maxNest {
				return k + 1
			}
			stack[depth] = c
			depth++
			prev = tOpen
			pendingArith = false
		case ')', ']', '}':
			if depth == 0 {
				return k + 1 // unbalanced: not an expression
			}
			depth--
			prev = tClose
			lastOperand = tClose
		case '.':
			prev = tDot
		case '|':
			if k+1 < len(v) && v[k+1] == '|' {
				k++
				prev = tOp
			} else {
				prev = tPipe
			}
		case '?':
			prev = tQuestion
			sawQuestion = true
		case ':':
			if depth == 0 && fam == famMustache && !sawQuestion && f.filters == 0 && !(k+1 < len(v) && v[k+1] == '=') {
				f.badColon = true
			}
			prev = tOther
		case '@':
			prev = tAt
		case '#':
			prev = tHash
		case '+', '-', '*', '/', '%':
			if prev == tNumber || prev == tString || prev == tIdent || prev == tClose {
				pendingArith = true
			}
			prev = tOp
		default:
			prev = tOther
		}
		k++
	}
	return max(k, i+1)
}

// ident weighs an identifier token by its name and position.
func (s *scan) ident(f *features, name string, prev tokKind, fam family, a, b int, v string) {
	switch prev {
	case tDot:
		f.members++
	case tPipe:
		f.filters++
		switch name {
		case "attr", "map", "filter", "reduce", "sort", "apply", "select", "reject":
			// Twig's and Jinja's callable filters: |filter('system'),
			// |attr('__class__'). Judged when a string argument follows.
			if b+1 < len(v) && v[b] == '(' && (v[b+1] == '\'' || v[b+1] == '"') {
				f.callFilter = true
			}
		}
	case tQuestion:
		// Freemarker built-ins: ?new, ?api, ?eval, ?interpret.
		if a > 0 && v[a-1] == '?' {
			switch name {
			case "new", "api", "eval", "interpret", "exec", "eval_json":
				f.strong, f.strongWhy = true, "Freemarker built-in instantiates or evaluates"
			}
		}
	case tAt:
		// OGNL static access: @java.lang.Runtime@getRuntime().
		if fam == famEL {
			for k := b; k < len(v) && k-b < 256; k++ {
				if v[k] == '@' {
					f.strong, f.strongWhy = true, "OGNL static member access"
					break
				}
				if !isIdent(v[k]) && v[k] != '.' {
					break
				}
			}
		}
	case tHash:
		// OGNL context variables: #_memberAccess, #context.
		if fam == famEL && (name[0] == '_' || name == "context" || name == "application" || name == "request" || name == "session" || name == "attr" || name == "parameters") {
			f.strong, f.strongWhy = true, "OGNL context variable"
		}
	}
	if dangerous(name) && (prev == tDot || !dunder(name) || pythonDunder(name)) {
		// A dunder counts as a member ("''.__class__") or as one of
		// Python's own; "defined(__x86_64__)" is a C macro.
		f.strong, f.strongWhy = true, "expression reaches an object that leads out of the template sandbox"
	}
	if contextObject(name) && prev != tDot {
		f.context = true
	}
	switch name {
	case "new":
		if b < len(v) && isSpace(v[b]) {
			f.strong, f.strongWhy = true, "expression constructs an object"
		}
	case "T":
		if b < len(v) && v[b] == '(' && fam == famEL {
			f.strong, f.strongWhy = true, "Spring EL type reference"
		}
	case "import", "from":
		if f.tokens == 0 {
			f.importStmt = true
		}
	case "include", "extends", "parse", "render", "embed", "source":
		if f.tokens == 0 {
			f.include = true
		}
	case "debug":
		if f.tokens == 0 && fam == famStatement {
			f.debug = true
		}
	case "as":
		if fam == famMustache && b+1 < len(v) && v[skipSpaces(v, b)] == '|' {
			f.blockAs = true
		}
	case "call":
		if fam == famMustache && f.tokens == 0 {
			f.goCall = true // Go's call runs a function value
		}
	}
	if prev == tDot && fam == famMustache && f.tokens == 1 {
		f.goDot = true // {{ .Field }}
	}
}

func skipSpaces(v string, k int) int {
	for k < len(v) && isSpace(v[k]) {
		k++
	}
	if k >= len(v) {
		return len(v) - 1
	}
	return k
}

// callee weighs a called function by name.
func (s *scan) callee(f *features, name string, at int) {
	switch name {
	case "exec", "popen", "system", "eval", "spawn", "execSync", "passthru", "shell_exec", "proc_open",
		"getRuntime", "forName", "getClass", "invoke", "newInstance", "getMethod", "loadClass",
		"__import__", "import_module", "getattr", "getBean", "setStatic", "getFilter",
		"registerUndefinedFilterCallback", "defineClass", "getDeclaredMethod", "getDeclaredField",
		"setAccessible", "getEngineByName", "require", "open", "check_output",
		"Popen", "load", "subprocess", "Start", "ReadAllText":
		f.strong, f.strongWhy = true, "expression calls a function that runs commands, loads classes or reads files"
	}
	// read() and readlines() read what something else opened (open(),
	// popen()), which is the evidence; on their own they are the
	// ordinary method of every stream in a JavaScript template literal
	// ("${stream.read()}").
}

func dunder(name string) bool {
	return len(name) > 4 && name[0] == '_' && name[1] == '_' && name[len(name)-1] == '_' && name[len(name)-2] == '_'
}

// pythonDunder reports the dunder names of Python's object model that
// sandbox escapes walk.
func pythonDunder(name string) bool {
	switch name {
	case "__import__", "__builtins__", "__globals__", "__class__", "__subclasses__", "__mro__", "__base__",
		"__bases__", "__init__", "__getattribute__", "__dict__", "__getitem__", "__module__", "__loader__", "__self__", "__func__", "__code__":
		return true
	}
	return false
}

// dangerous reports names that lead from a template to the runtime.
func dangerous(name string) bool {
	if len(name) > 4 && name[0] == '_' && name[1] == '_' && name[len(name)-1] == '_' && name[len(name)-2] == '_' {
		return true // __class__, __globals__, __builtins__, __mro__, __init__…
	}
	switch name {
	case "func_globals", "f_globals", "gi_frame", "getClass", "forName", "getRuntime", "Runtime",
		"ProcessBuilder", "ScriptEngineManager", "ObjectConstructor", "JythonRuntime", "Execute",
		"_self", "constructor", "prototype", "_TemplateReference__context", "lipsum", "cycler",
		"joiner", "mro", "subclasses", "registerUndefinedFilterCallback", "getFilter", "classLoader",
		"ClassLoader", "getClassLoader", "_memberAccess", "DEFAULT_MEMBER_ACCESS", "Diagnostics",
		"Reflection", "Activator", "ProcessStartInfo", "os", "subprocess", "popen", "builtins":
		return true
	}
	return false
}

// contextObject reports the objects templates expose that hold
// configuration, secrets or the request.
func contextObject(name string) bool {
	switch name {
	case "config", "settings", "request", "self", "app", "application", "session", "env", "environ",
		"pageContext", "applicationScope", "sessionScope", "requestScope", "facesContext", "servletContext",
		"smarty", "SECRET_KEY", "secrets":
		return true
	}
	return false
}

// stringLiteral weighs a string: dunder names and their escapes (used
// with attr() or subscripts), and Java class names (used with forName or
// ?new).
func (s *scan) stringLiteral(f *features, lit string) {
	s.steps += len(lit)
	for k := 0; k+1 < len(lit); k++ {
		if lit[k] == '_' && lit[k+1] == '_' && k+2 < len(lit) && isIdentStart(lit[k+2]) {
			f.strong, f.strongWhy = true, "string names a dunder attribute"
			return
		}
		if lit[k] == '\\' && (hasPrefix(lit[k+1:], "x5f") || hasPrefix(lit[k+1:], "u005f") || hasPrefix(lit[k+1:], "137")) {
			f.strong, f.strongWhy = true, "string hides an underscore in an escape"
			return
		}
	}
	if javaClassName(lit) {
		f.strClass = true
	}
	switch lit {
	case "constructor", "__proto__", "prototype", "mro", "subclasses", "globals", "builtins", "getRuntime", "forName", "getClass":
		f.strong, f.strongWhy = true, "string names an object that leads out of the sandbox"
	}
}

// javaClassName reports "a.b.Cls": two or more dots, identifier segments,
// an upper-case class segment.
func javaClassName(t string) bool {
	dots, seg, last := 0, 0, 0
	for k := 0; k < len(t); k++ {
		c := t[k]
		switch {
		case c == '.':
			if seg == 0 {
				return false
			}
			dots++
			seg = 0
			last = k + 1
		case isIdent(c):
			seg++
		default:
			return false
		}
	}
	return dots >= 2 && seg > 0 && t[last] >= 'A' && t[last] <= 'Z'
}

// judge turns an expression's features into a finding and returns where
// scanning continues.
func (s *scan) judge(f *features, fam family, start, end int) int {
	conf, reason := 0, ""
	switch {
	case f.strong:
		conf, reason = 95, f.strongWhy
	case f.command:
		conf, reason = 95, "template code runs a shell command"
	case f.callFilter:
		conf, reason = 90, "callable filter applied to a string argument"
	case f.strClass && (f.calls > 0 || fam == famFTL):
		conf, reason = 92, "template code uses a Java class name"
	case f.importStmt && f.idents >= 2:
		conf, reason = 92, "template statement imports a module"
	case f.arithLit:
		conf, reason = 88, "template expression computes on literals"
	case f.include && f.tokens >= 2:
		conf, reason = 72, "template statement includes another template or file"
	case f.debug:
		conf, reason = 70, "template debug statement dumps the context"
	case f.goCall && f.tokens >= 2:
		conf, reason = 85, "Go template calls a function value"
	case f.context && (f.members > 0 || f.calls > 0 || f.tokens == 1):
		conf, reason = 75, "template expression reads a configuration or request object"
	case f.blockAs && s.blockParams >= 1:
		conf, reason = 80, "nested Handlebars block parameters (prototype walking)"
	case f.blockAs:
		conf, reason = 60, "Handlebars block helper with block parameters"
	case f.calls > 0 && (fam == famVelocity || fam == famFTL):
		conf, reason = 35, "template directive with a call"
	case f.calls > 0:
		conf, reason = 55, "template expression calls a function"
	case f.arithAny:
		conf, reason = 50, "template expression computes"
	case f.filters > 0:
		conf, reason = 35, "template expression with filters"
	case f.goDot || (fam == famMustache && f.tokens == 1 && s.v[start+2:end-2] != "" && onlyDot(s.v[start+2:end-2])):
		conf, reason = 35, "Go template expression on the context"
	case f.members > 0:
		conf, reason = 30, "template placeholder with a member path"
	case f.idents > 0:
		conf, reason = 20, "template placeholder"
		if fam == famEL && f.first[0] >= 0 && upper(s.v[f.first[0]:f.first[1]]) {
			conf, reason = 10, "shell-style variable"
		}
	case f.tokens > 0:
		conf, reason = 15, "template delimiters around a literal"
	}
	if f.badColon && !f.strong && !f.command {
		// "{{Lo: 0, Hi: 1<<16 - 1}}": a composite literal in code, not
		// a template expression.
		conf = min(conf, 30)
	}
	if fam == famStatement && conf > 0 && conf < 40 {
		conf, reason = 35, "template statement"
	}
	if s.prose && conf >= 40 && conf < 80 {
		conf -= 20
	}
	if f.blockAs {
		s.blockParams++
	}
	if conf > 0 {
		s.report(conf, reason, start, end)
	}
	return end
}

func onlyDot(body string) bool {
	seen := false
	for k := 0; k < len(body); k++ {
		switch body[k] {
		case '.':
			seen = true
		case ' ', '-':
		default:
			return false
		}
	}
	return seen
}

func upper(name string) bool {
	for k := 0; k < len(name); k++ {
		if c := name[k]; c >= 'a' && c <= 'z' {
			return false
		}
	}
	return true
}

// smarty judges single-brace Smarty and Latte tags at v[i]: {php},
// {$smarty…}, {system('id')}, {Class::method(…)}.
func (s *scan) smarty(i int) int {
	v := s.v
	rest := v[i:]
	switch {
	case hasPrefix(rest, "{php}"), hasPrefix(rest, "{/php}"):
		s.report(95, "Smarty {php} block", i, i+5)
		return i + 5
	case hasPrefix(rest, "{$smarty."):
		s.report(70, "Smarty reads its own configuration", i, i+9)
		return i + 9
	case hasPrefix(rest, "{if ") || hasPrefix(rest, "{include ") || hasPrefix(rest, "{fetch ") || hasPrefix(rest, "{eval ") || hasPrefix(rest, "{math "):
		return s.expr(i, 1+indexByte(rest, ' '), closeBrace, famEL)
	}
	// {name(…)} and {Class::method(…)}: a call that fills the tag.
	k := i + 1
	for k < len(v) && k-i < 64 && (isIdent(v[k]) || v[k] == ':' || v[k] == '\\') {
		k++
	}
	if k == i+1 || k >= len(v) || v[k] != '(' {
		return i + 1
	}
	name := v[i+1 : k]
	if c := indexByte(name, ':'); c >= 0 && (c+1 >= len(name) || name[c+1] != ':') {
		return i + 1 // "{C:f(x)}": a composite literal, not a Smarty static call
	}
	static := indexByte(name, ':') >= 0
	depth := 0
	var quote byte
	e := k
	for ; e < len(v) && e-k < maxExpr; e++ {
		s.steps++
		c := v[e]
		if quote != 0 {
			if c == '\\' {
				e++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case '\'', '"':
			quote = c
		case '{':
			return e // a tag cannot hold another: resume there
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				if e+1 < len(v) && v[e+1] == '}' {
					var f features
					s.callee(&f, lastSegment(name), k)
					if f.strong || static {
						s.report(90, "Smarty tag calls a function", i, e+2)
					}
					return e + 2
				}
				return e + 1
			}
		}
	}
	return max(e, i+1)
}

func indexByte(s string, c byte) int {
	for k := 0; k < len(s); k++ {
		if s[k] == c {
			return k
		}
	}
	return -1
}

func lastSegment(name string) string {
	for k := len(name) - 1; k >= 0; k-- {
		if name[k] == ':' || name[k] == '\\' || name[k] == '.' {
			return name[k+1:]
		}
	}
	return name
}

// reference judges a Velocity ($a.b.c(…)) or Razor (@A.B.C(…)) member
// chain starting with the identifier at v[a]; only chains that reach a
// dangerous object or call count, since $x.y() is ordinary JavaScript.
func (s *scan) reference(i, a int) int {
	v := s.v
	k := a
	strong := false
	calls := 0
	for k < len(v) && k-a < maxExpr {
		s.steps++
		b := k
		for b < len(v) && isIdent(v[b]) && v[b] != '$' {
			b++
		}
		if b == k {
			break
		}
		name := v[k:b]
		if dangerous(name) || name == "class" {
			strong = strong || name != "class" || (b < len(v) && v[b] == '.')
		}
		var f features
		if b < len(v) && v[b] == '(' {
			calls++
			s.callee(&f, name, b)
			strong = strong || f.strong
			// Skip the arguments.
			depth := 0
			for b < len(v) && b-k < maxExpr {
				s.steps++
				if v[b] == '(' {
					depth++
				} else if v[b] == ')' {
					depth--
					if depth == 0 {
						b++
						break
					}
				}
				b++
			}
		}
		if b < len(v) && v[b] == '.' {
			k = b + 1
			continue
		}
		k = b
		break
	}
	if strong && calls > 0 {
		s.report(92, "member chain reaches a dangerous object", i, k)
	}
	return max(k, i+1)
}
