// Package ldap detects LDAP filter injection: a value that, placed as an
// assertion value in a search filter such as (&(uid=VALUE)(objectClass=x)),
// closes the assertion and adds filter components of its own, or that
// carries a complete composite filter.
//
// Place in the request path: a detector of the waf stage, run on values
// that waf/decode has already decoded. What is specific to LDAP stays
// here: RFC 4515 filter syntax, its \XX escapes (an escaped parenthesis is
// data, not structure), RFC 4526 absolute true and false ("(&)", "(|)"),
// extensible matches and NUL truncation by C-based servers.
//
// The value is read as the server would read it after the application
// pasted it into a filter: the text up to the first unescaped ')' must be
// a valid assertion value (no unescaped '('), and what follows the ')'
// must parse as filter syntax: more closing parentheses for the
// template's enclosing levels, then filters, the last of which the
// template's own ')' may close. Prose with parentheses, emoticons and
// wildcard searches do not parse that way.
package ldap

import (
	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector finds LDAP filter injection.
type Detector struct{}

// New returns the LDAP detector.
func New() *Detector { return &Detector{} }

// Class reports detect.LDAP.
func (*Detector) Class() detect.Class { return detect.LDAP }

// Detect reports the strongest finding in in.Value.
func (d *Detector) Detect(in detect.Input) (detect.Finding, bool) {
	var s scan
	return s.run(in)
}

const (
	maxDepth   = 32 // nesting the parser follows
	maxClosers = 4  // template levels a value may close
)

type scan struct {
	v     string
	steps int
}

func (s *scan) run(in detect.Input) (detect.Finding, bool) {
	v := in.Value
	s.v = v
	closeAt, openAt := -1, -1
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' {
			i++
			continue
		}
		if c == ')' && closeAt < 0 {
			closeAt = i
		}
		if c == '(' && openAt < 0 {
			openAt = i
		}
	}
	s.steps += len(v)
	if closeAt < 0 {
		return s.wildcard(in)
	}
	best := detect.Finding{}
	found := false
	if (openAt < 0 || openAt > closeAt) && assertionPrefix(v[:closeAt]) {
		// The assertion value ends at the first ')'.
		r := s.parse(closeAt, false)
		if f, ok := injectionFinding(r, closeAt); ok {
			best, found = f, true
		} else if s.malformed(closeAt) >= 0 {
			best, found = finding(75, "value closes the assertion and adds malformed filter components", closeAt, len(v)), true
		}
	}
	if openAt >= 0 && (!found || best.Confidence < 80) {
		if f, ok := s.embedded(in, openAt); ok && (!found || f.Confidence > best.Confidence) {
			best, found = f, true
		}
	}
	return best, found
}

// assertionPrefix reports whether p can be what a user typed into a
// field before closing the assertion: short, printable text (binary
// data has parentheses and NULs too).
func assertionPrefix(p string) bool {
	if len(p) > 256 {
		return false
	}
	for k := 0; k < len(p); k++ {
		if c := p[k]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// result is what parsing filter syntax found.
type result struct {
	closers    int  // template levels closed before the first filter
	items      int  // complete (or template-closed) items
	composites int  // & | ! components that parsed
	completed  int  // composites closed within the value
	wildcard   bool // a presence or substring assertion
	absolute   bool // (&) or (|)
	nul        bool // stopped at NUL: C servers cut the filter there
	end        int  // where parsing stopped
	errAt      int  // position of a syntax error, or -1
	firstComp  int  // start of the first component, or -1
	spaces     bool // spaces between components
}

type frame struct {
	op       byte // '&', '|', '!'
	start    int
	children int
}

// parse reads filter syntax from v[from:]. In injection mode (embedded ==
// false) v[from] is the ')' that closes the application's assertion, and
// more ')' may close the template's enclosing levels; the input may end
// inside a filter, which the template's own ')' then closes. In embedded
// mode v[from] is a '(' and parsing stops when the outermost filter
// closes.
func (s *scan) parse(from int, embedded bool) result {
	v := s.v
	r := result{errAt: -1, firstComp: -1}
	var stack [maxDepth]frame
	depth := 0
	p := from
	if !embedded {
		p++ // the assertion's ')'
	}
	for p < len(v) {
		s.steps++
		c := v[p]
		if (c == ' ' || c == '\t') && !embedded {
			// Lenient servers skip spaces between components; RFC 4515
			// has none. Counted, so plain prose ("ok) (a=b)") needs
			// more structure than one item to be reported.
			r.spaces = true
			p++
			continue
		}
		switch {
		case c == 0:
			r.nul = true
			r.end = p
			return r
		case c == ')':
			if depth == 0 {
				if embedded || r.items+r.composites > 0 {
					r.end = p
					return r
				}
				r.closers++
				if r.closers > maxClosers {
					r.errAt = p
					r.end = p
					return r
				}
				p++
				continue
			}
			depth--
			f := stack[depth]
			if f.op == '!' && f.children != 1 {
				r.errAt = p
				r.end = p
				return r
			}
			if (f.op == '&' || f.op == '|') && f.children == 0 {
				r.absolute = true
			}
			r.completed++
			if depth > 0 {
				stack[depth-1].children++
			}
			p++
			if depth == 0 && embedded {
				r.end = p
				return r
			}
		case c == '(':
			if r.firstComp < 0 {
				r.firstComp = p
			}
			p++
			if p < len(v) && (v[p] == '&' || v[p] == '|' || v[p] == '!') {
				if depth == maxDepth {
					r.errAt = p
					r.end = p
					return r
				}
				stack[depth] = frame{op: v[p], start: p - 1}
				depth++
				r.composites++
				p++
				continue
			}
			q, ok, wild := s.item(p)
			if !ok {
				r.errAt = p
				r.end = p
				return r
			}
			r.items++
			r.wildcard = r.wildcard || wild
			if depth > 0 {
				stack[depth-1].children++
			}
			if q >= len(v) || v[q] == 0 {
				// The template's ')' closes the item.
				r.nul = q < len(v)
				r.end = q
				return r
			}
			p = q + 1 // past the item's ')'
			if depth == 0 && embedded {
				r.end = p
				return r
			}
		default:
			// Text after a complete structure: some servers stop at
			// the end of the first filter and ignore the rest.
			r.end = p
			if r.items+r.composites == 0 {
				r.errAt = p
			}
			return r
		}
	}
	r.end = p
	return r
}

// item parses an item (attr filtertype value) at v[p:], after its '('.
// It returns the index of the closing ')' (or len(v) or a NUL's index
// when the input ends first), whether it parsed, and whether the value
// has a wildcard.
func (s *scan) item(p int) (int, bool, bool) {
	v := s.v
	start := p
	// attributedescription: descr or numericoid, then ;options. An
	// extensible match may start with ":dn" or ":rule".
	if p < len(v) && isLetter(v[p]) {
		for p < len(v) && (isAlnum(v[p]) || v[p] == '-') {
			p++
		}
	} else if p < len(v) && isDigit(v[p]) {
		for p < len(v) && (isDigit(v[p]) || v[p] == '.') {
			p++
		}
	} else if !(p < len(v) && v[p] == ':') {
		return p, false, false
	}
	for p < len(v) && v[p] == ';' {
		p++
		a := p
		for p < len(v) && (isAlnum(v[p]) || v[p] == '-') {
			p++
		}
		if p == a {
			return p, false, false
		}
	}
	// Extensible: [":dn"] [":" rule] ":=".
	for p < len(v) && v[p] == ':' && !(p+1 < len(v) && v[p+1] == '=') {
		p++
		a := p
		for p < len(v) && (isAlnum(v[p]) || v[p] == '-' || v[p] == '.') {
			p++
		}
		if p == a {
			return p, false, false
		}
	}
	s.steps += p - start
	if p == start || p >= len(v) {
		return p, false, false
	}
	switch v[p] {
	case '=':
		p++
	case '~', '>', '<', ':':
		if p+1 < len(v) && v[p+1] == '=' {
			p += 2
		} else {
			return p, false, false
		}
	default:
		return p, false, false
	}
	// assertionvalue: anything but NUL, '(' and ')', with \XX escapes.
	wild := false
	for p < len(v) {
		s.steps++
		c := v[p]
		switch c {
		case ')', 0:
			return p, true, wild
		case '(':
			return p, false, wild
		case '*':
			wild = true
		case '\\':
			p++
		}
		p++
	}
	return len(v), true, wild
}

// malformed looks after the assertion's ')' for the shape payload lists
// use even where it breaks RFC 4515: parentheses, then an operator, then
// attr=value ("admin*)((|userPassword=*)", "x)!(sn=*"). It returns its position or -1.
func (s *scan) malformed(closeAt int) int {
	v := s.v
	p := closeAt + 1
	for p < len(v) && p-closeAt < 8 && (v[p] == '(' || v[p] == ')' || v[p] == ' ') {
		p++
	}
	if p >= len(v) || (v[p] != '&' && v[p] != '|' && v[p] != '!') {
		return -1
	}
	if p == closeAt+1 && (p+1 >= len(v) || v[p+1] != '(') {
		// ")!(sn=*": the operator right after the ')' must open a
		// filter; ")!" and ")&" alone are punctuation.
		return -1
	}
	q := p + 1
	for q < len(v) && (v[q] == '(' || v[q] == ' ') {
		q++
	}
	a := q
	for q < len(v) && (isAlnum(v[q]) || v[q] == '-' || v[q] == '.') {
		q++
	}
	s.steps += q - closeAt
	if q > a && q < len(v) && (v[q] == '=' || (q+1 < len(v) && v[q+1] == '=' && (v[q] == '~' || v[q] == '>' || v[q] == '<'))) {
		return p
	}
	return -1
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool  { return isLetter(c) || isDigit(c) }

func finding(conf int, reason string, start, end int) detect.Finding {
	return detect.Finding{Class: detect.LDAP, Detector: "ldap", Confidence: conf, Reason: reason, Start: start, End: end}
}

// injectionFinding weighs what followed the value's first ')'.
func injectionFinding(r result, closeAt int) (detect.Finding, bool) {
	if r.errAt >= 0 && r.items+r.composites == 0 {
		return detect.Finding{}, false
	}
	end := r.end
	if r.spaces && r.composites == 0 && !r.wildcard && r.items < 2 {
		return detect.Finding{}, false // "ok) (and=more)": prose with parentheses
	}
	switch {
	case r.items+r.composites > 0 && (r.composites > 0 || r.wildcard):
		return finding(92, "value closes the assertion and adds filter components with an operator or wildcard", closeAt, end), true
	case r.items > 0:
		return finding(82, "value closes the assertion and adds filter components", closeAt, end), true
	case r.nul:
		return finding(70, "value closes the assertion and truncates the filter with NUL", closeAt, end), true
	}
	return detect.Finding{}, false
}

// embedded looks for a complete composite filter anywhere in the value:
// "(|(uid=*)(cn=x))" pasted where an application takes a fragment.
func (s *scan) embedded(in detect.Input, from int) (detect.Finding, bool) {
	v := s.v
	prose := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			prose = true
			break
		}
	}
	for p := from; p+2 < len(v); {
		s.steps++
		if v[p] != '(' || (v[p+1] != '&' && v[p+1] != '|' && v[p+1] != '!') {
			p++
			continue
		}
		r := s.parse(p, true)
		if r.completed > 0 && r.items > 0 && r.errAt < 0 {
			conf := 80
			if prose {
				conf = 55
			}
			return finding(conf, "value carries a complete composite LDAP filter", p, r.end), true
		}
		if r.end > p {
			p = r.end
		} else {
			p++
		}
	}
	return detect.Finding{}, false
}

// wildcard weighs a value that is only an asterisk: a presence assertion
// that matches every entry, a login bypass in a password or user field.
func (s *scan) wildcard(in detect.Input) (detect.Finding, bool) {
	v := in.Value
	if v != "*" && v != "**" {
		return detect.Finding{}, false
	}
	conf := 25
	name := in.Name
	for _, w := range []string{"pass", "pwd", "user", "login", "uid", "account"} {
		if containsFold(name, w) {
			conf = 55
			break
		}
	}
	return finding(conf, "value is a bare wildcard (presence assertion)", 0, len(v)), true
}

func containsFold(s, w string) bool {
	for k := 0; k+len(w) <= len(s); k++ {
		match := true
		for j := 0; j < len(w); j++ {
			if s[k+j]|0x20 != w[j] {
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
