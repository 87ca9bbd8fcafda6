// Package jndi detects Log4Shell-style lookups: values that, written to a
// log through a vulnerable Log4j 2, make it resolve ${jndi:…} (and load a
// class from the attacker) or leak secrets through ${env:…}, ${sys:…} and
// kin, however the lookup is obfuscated.
//
// Place in the request path: a detector of the waf stage, run on values
// that waf/decode has already decoded. What is specific to the lookup
// language stays here: a small evaluator of Log4j 2's substitution rules,
// bounded in depth and output. Variable names are substituted before
// they are resolved (so ${${lower:j}ndi:…} and ${jndi${env:x:-:}…} build
// "jndi:"), ":-" supplies defaults (${::-j}, ${env:NaN:-j}), prefixes are
// case-insensitive, resolved values are substituted again (so a default
// can itself build a "${jndi:…}"), "$${" escapes, and the side-effect-free
// lookups (lower, upper, date, base64) are computed. A value is reported
// when evaluation reaches the jndi lookup, whatever its spelling, or uses
// a lookup that reads the environment. Shell and template placeholders
// (${HOME}, ${price}, ${VAR:-default}) resolve to nothing and pass.
package jndi

import (
	"sync"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector finds Log4j lookup injection.
type Detector struct{}

// New returns the JNDI detector.
func New() *Detector { return &Detector{} }

// Class reports detect.JNDI.
func (*Detector) Class() detect.Class { return detect.JNDI }

// Detect reports the strongest finding in in.Value.
func (d *Detector) Detect(in detect.Input) (detect.Finding, bool) {
	var e eval
	return e.run(in)
}

const (
	maxDepth = 10   // nesting of substitutions followed
	arenaCap = 4096 // bytes of intermediate text
	nameCap  = 96   // bytes of a jndi name kept for the reason
)

type lookupKind uint8

const (
	lkNone    lookupKind = iota
	lkCompute            // lower, upper, date, base64: obfuscation helpers
	lkSecret             // env, sys, ctx, main, docker, k8s, spring, web, bundle, jvmrunargs, java
	lkJNDI               // jndi: the remote class load
)

// arenas recycles the evaluator's scratch space: only values with "${"
// need one, and none is kept past a call.
var arenas = sync.Pool{New: func() any { return new([arenaCap]byte) }}

// eval is the evaluator's state for one value.
type eval struct {
	v     string
	arena []byte // append-only with a fixed capacity: slices stay valid
	full  bool
	steps int

	jndi      int // jndi lookups reached
	jndiName  [nameCap]byte
	jndiLen   int
	secret    int // secret-reading lookups reached
	compute   int // helper lookups reached
	spanStart int
	spanEnd   int
	spanKind  lookupKind
}

func (e *eval) run(in detect.Input) (detect.Finding, bool) {
	v := in.Value
	e.v = v
	open := -1
	for i := 0; i+1 < len(v); i++ {
		if v[i] == '$' && v[i+1] == '{' {
			open = i
			break
		}
	}
	e.steps += len(v)
	if open < 0 {
		return detect.Finding{}, false
	}
	for open > 0 && v[open-1] == '$' {
		open-- // "$${" is an escape: start at the escaping '$'
	}
	ap := arenas.Get().(*[arenaCap]byte)
	defer arenas.Put(ap)
	e.arena = ap[:0:arenaCap]
	e.spanStart = -1
	e.top(open)
	switch {
	case e.jndi > 0:
		conf := 92
		name := e.jndiName[:e.jndiLen]
		if remoteScheme(name) {
			conf = 98
		}
		r := 0
		if !containsFold(v, "${jndi:") {
			r |= 1
		}
		if e.secret > 0 {
			r |= 2
		}
		reason := jndiReasons[r]
		return e.finding(conf, reason), true
	case e.secret > 0:
		return e.finding(72, "lookup reads the environment, system properties or context"), true
	case e.compute > 0:
		return e.finding(50, "Log4j helper lookup (lower, upper, date, base64)"), true
	}
	return detect.Finding{}, false
}

var jndiReasons = [4]string{
	"lookup resolves to jndi: (remote object load)",
	"obfuscated lookup resolves to jndi: (remote object load)",
	"lookup resolves to jndi: (remote object load) carrying an environment or system lookup",
	"obfuscated lookup resolves to jndi: (remote object load) carrying an environment or system lookup",
}

func (e *eval) finding(conf int, reason string) detect.Finding {
	start, end := e.spanStart, e.spanEnd
	if start < 0 || end > len(e.v) || end < start {
		start, end = 0, len(e.v)
	}
	return detect.Finding{Class: detect.JNDI, Detector: "jndi", Confidence: conf, Reason: reason, Start: start, End: end}
}

// top substitutes the value itself, recording which top-level variable
// reached the strongest lookup (the evidence span).
func (e *eval) top(open int) {
	v := e.v
	for i := open; i+1 < len(v); {
		e.steps++
		if v[i] == '$' && v[i+1] == '$' {
			i += 2 // "$$" escapes: the next "${" stays text
			continue
		}
		if v[i] != '$' || v[i+1] != '{' {
			i++
			continue
		}
		j := matchEnd(e, v, i)
		if j < 0 {
			return
		}
		before := e.strongest()
		mark := len(e.arena)
		variable(e, v[i+2:j], 1)
		e.arena = e.arena[:mark]
		if after := e.strongest(); after > before {
			e.spanStart, e.spanEnd, e.spanKind = i, j+1, after
		}
		i = j + 1
	}
}

func (e *eval) strongest() lookupKind {
	switch {
	case e.jndi > 0:
		return lkJNDI
	case e.secret > 0:
		return lkSecret
	case e.compute > 0:
		return lkCompute
	}
	return lkNone
}

// text is what the evaluator reads: the value itself or arena bytes.
type text interface{ ~string | ~[]byte }

// matchEnd returns the index of the '}' that closes the "${" at s[i], or
// -1; nested "${" count.
func matchEnd[T text](e *eval, s T, i int) int {
	depth := 0
	for k := i; k < len(s); k++ {
		e.steps++
		switch {
		case s[k] == '$' && k+1 < len(s) && s[k+1] == '{':
			depth++
			k++
		case s[k] == '}':
			depth--
			if depth == 0 {
				return k
			}
		}
	}
	return -1
}

func (e *eval) put(c byte) {
	if len(e.arena) == cap(e.arena) {
		e.full = true
		return
	}
	e.arena = append(e.arena, c)
}

func put[T text](e *eval, s T) {
	e.steps += len(s)
	for i := 0; i < len(s); i++ {
		if len(e.arena) == cap(e.arena) {
			e.full = true
			return
		}
		e.arena = append(e.arena, s[i])
	}
}

// subst substitutes s, appending the result to the arena. s may be arena
// bytes: the arena only grows past them while they are read.
func subst[T text](e *eval, s T, depth int) {
	for i := 0; i < len(s); {
		e.steps++
		c := s[i]
		if c == '$' && i+2 < len(s) && s[i+1] == '$' && s[i+2] == '{' {
			// "$${x}" is the text "${x}".
			j := matchEnd(e, s, i+1)
			if j < 0 {
				put(e, s[i+1:])
				return
			}
			put(e, s[i+1:j+1])
			i = j + 1
			continue
		}
		if c == '$' && i+1 < len(s) && s[i+1] == '{' {
			j := matchEnd(e, s, i)
			if j < 0 {
				put(e, s[i:])
				return
			}
			if depth >= maxDepth {
				put(e, s[i:j+1])
			} else {
				variable(e, s[i+2:j], depth+1)
			}
			i = j + 1
			continue
		}
		e.put(c)
		i++
	}
}

// variable substitutes the variable whose expression is expr and appends
// its value (or its text, when it does not resolve) to the arena.
func variable[T text](e *eval, expr T, depth int) {
	mark := len(e.arena)
	subst(e, expr, depth)
	nameEnd := len(e.arena)
	name := e.arena[mark:nameEnd]
	varName, def, hasDef := splitDefault(name)
	valAt, ok := e.resolve(varName)
	var val []byte
	if ok {
		val = e.arena[valAt:]
	} else if hasDef {
		val, ok = def, true
	}
	if !ok {
		// Unresolved: the text "${name}" stays.
		e.arena = e.arena[:nameEnd]
		e.put(0)
		e.put(0)
		e.put(0)
		if len(e.arena) == nameEnd+3 {
			copy(e.arena[mark+2:], e.arena[mark:nameEnd])
			e.arena[mark], e.arena[mark+1], e.arena[nameEnd+2] = '$', '{', '}'
		} else {
			e.arena = e.arena[:mark] // out of room: drop it
		}
		return
	}
	resAt := len(e.arena)
	subst(e, val, depth)
	n := copy(e.arena[mark:], e.arena[resAt:])
	e.arena = e.arena[:mark+n]
}

// splitDefault splits a variable name at its first ":-".
func splitDefault(name []byte) ([]byte, []byte, bool) {
	for k := 0; k+1 < len(name); k++ {
		if name[k] == ':' && name[k+1] == '-' {
			return name[:k], name[k+2:], true
		}
	}
	return name, nil, false
}

// resolve looks a name up as Log4j's Interpolator does; computed values
// are appended to the arena and their start returned.
func (e *eval) resolve(name []byte) (int, bool) {
	p := -1
	for k := 0; k < len(name); k++ {
		if name[k] == ':' {
			p = k
			break
		}
	}
	if p < 0 {
		return 0, false // the default lookup: properties we cannot know
	}
	prefix, arg := name[:p], name[p+1:]
	var buf [16]byte
	if len(prefix) > len(buf) {
		return 0, false
	}
	for k := 0; k < len(prefix); k++ {
		c := prefix[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[k] = c
	}
	at := len(e.arena)
	switch string(buf[:len(prefix)]) {
	case "jndi":
		e.jndi++
		if e.jndiLen == 0 {
			e.jndiLen = copy(e.jndiName[:], arg)
		}
		return 0, false
	case "env", "sys", "ctx", "main", "docker", "k8s", "spring", "web", "bundle", "jvmrunargs", "map", "sd", "marker", "event":
		if len(arg) > 0 {
			e.secret++
		}
		return 0, false
	case "java":
		if len(arg) > 0 {
			e.secret++
		}
		put(e, "java")
		return at, true
	case "lower":
		e.compute++
		for k := 0; k < len(arg); k++ {
			c := arg[k]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			e.put(c)
		}
		e.steps += len(arg)
		return at, true
	case "upper":
		e.compute++
		for k := 0; k < len(arg); k++ {
			c := arg[k]
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			e.put(c)
		}
		e.steps += len(arg)
		return at, true
	case "date":
		e.compute++
		e.date(arg)
		return at, true
	case "base64":
		e.compute++
		if !e.base64(arg) {
			e.arena = e.arena[:at]
			return 0, false
		}
		return at, true
	}
	return 0, false
}

// date formats a SimpleDateFormat pattern with placeholder digits: quoted
// text is literal (a doubled quote is one quote), pattern letters become
// digits.
func (e *eval) date(pat []byte) {
	inQuote := false
	for k := 0; k < len(pat); k++ {
		e.steps++
		c := pat[k]
		switch {
		case c == '\'':
			if k+1 < len(pat) && pat[k+1] == '\'' {
				e.put('\'')
				k++
				continue
			}
			inQuote = !inQuote
		case inQuote:
			e.put(c)
		case c|0x20 >= 'a' && c|0x20 <= 'z':
			e.put('0')
		default:
			e.put(c)
		}
	}
}

// base64 decodes standard or URL-safe base64 (padding optional).
func (e *eval) base64(s []byte) bool {
	var acc uint32
	bits := 0
	for k := 0; k < len(s); k++ {
		e.steps++
		c := s[k]
		var d uint32
		switch {
		case c >= 'A' && c <= 'Z':
			d = uint32(c - 'A')
		case c >= 'a' && c <= 'z':
			d = uint32(c-'a') + 26
		case c >= '0' && c <= '9':
			d = uint32(c-'0') + 52
		case c == '+' || c == '-':
			d = 62
		case c == '/' || c == '_':
			d = 63
		case c == '=':
			return true
		default:
			return false
		}
		acc = acc<<6 | d
		bits += 6
		if bits >= 8 {
			bits -= 8
			e.put(byte(acc >> bits))
		}
	}
	return true
}

func remoteScheme(name []byte) bool {
	for _, p := range []string{"ldap:", "ldaps:", "rmi:", "dns:", "iiop:", "corba:", "nds:", "nis:", "http:", "https:", "iiopname:", "corbaname:"} {
		if len(name) >= len(p) && equalFold(string(name[:len(p)]), p) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func containsFold(s, w string) bool {
	for k := 0; k+len(w) <= len(s); k++ {
		if equalFold(s[k:k+len(w)], w) {
			return true
		}
	}
	return false
}
