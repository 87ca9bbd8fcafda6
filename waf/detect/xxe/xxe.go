// Package xxe detects XML external entity attacks: documents whose DTD
// declares external entities (SYSTEM or PUBLIC identifiers), parameter
// entities that build declarations (the out-of-band exfiltration
// pattern), external DTDs fetched from anywhere but the W3C, XInclude
// elements, and entity expansion bombs (billion laughs, quadratic
// blow-up).
//
// Place in the request path: a detector of the waf stage, run on XML
// bodies and on any value that carries markup, after waf/decode (URL,
// base64, UTF-7…). encoding/xml does not parse DTD internals, so this
// package has a small bounded DTD scanner of its own: the DOCTYPE
// declaration, its external identifier and internal subset, entity
// declarations with their literal values, parameter-entity references,
// comments and processing instructions. XML-specific encodings stay here:
// character references inside entity values (&#x25; for '%'), and UTF-16
// documents, which are narrowed to bytes before scanning.
//
// XML itself is benign: SOAP, RSS, SVG and XHTML pass. A DOCTYPE naming a
// W3C public DTD (XHTML, SVG, MathML; what editors such as Illustrator
// and Inkscape write) is not a finding: a parser that fetches it reaches
// w3.org, not the attacker, and such files are ordinary uploads; internal
// entities with plain values (Illustrator's ns_ entities) are data too.
package xxe

import (
	"strings"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector finds XML external entity attacks.
type Detector struct{}

// New returns the XXE detector.
func New() *Detector { return &Detector{} }

// Class reports detect.XXE.
func (*Detector) Class() detect.Class { return detect.XXE }

// Detect reports the strongest finding in in.Value.
func (d *Detector) Detect(in detect.Input) (detect.Finding, bool) {
	var s scan
	return s.run(in)
}

const (
	maxEntities = 64
	maxNarrowed = 1 << 16        // bytes of a UTF-16 document scanned
	bombSize    = 1 << 16        // expanded bytes that make a bomb…
	bombRatio   = 16             // …when also this many times the document
	saturate    = int64(1) << 40 // expansion sizes stop growing here
)

type entity struct {
	nameA, nameB int
	param        bool
	external     bool
	valA, valB   int
	size         int64 // expanded size
	depth        int   // nesting of entity references below it
}

type scan struct {
	doc    string // the value, or its UTF-16 narrowing
	narrow bool   // doc is a narrowing: spans are not offsets into the value
	xiNS   int8   // 0 unknown, 1 the XInclude namespace is declared, -1 not
	steps  int
	best   detect.Finding
	found  bool
	ents   [maxEntities]entity
	n      int
	dtdEnd int
}

func (s *scan) report(conf int, reason string, start, end int) {
	conf = min(conf, 100)
	if conf < 1 || (s.found && conf <= s.best.Confidence) {
		return
	}
	s.found = true
	s.best = detect.Finding{Class: detect.XXE, Detector: "xxe", Confidence: conf, Reason: reason, Start: start, End: end}
}

func (s *scan) run(in detect.Input) (detect.Finding, bool) {
	v := in.Value
	if utf16Shape(v) {
		s.doc = narrow16(v)
		s.narrow = true
	} else {
		s.doc = v
	}
	d := s.doc
	// Pre-filter: markup declarations ("<!") or an include element.
	hit := false
	for i := 0; i+1 < len(d); i++ {
		if d[i] == '<' && (d[i+1] == '!' || d[i+1] != '/' && s.includeAt(i)) {
			hit = true
			break
		}
	}
	s.steps += len(d)
	if !hit {
		return detect.Finding{}, false
	}
	for i := 0; i+1 < len(d); {
		s.steps++
		if d[i] != '<' {
			i++
			continue
		}
		switch {
		case hasPrefix(d[i:], "<!--"):
			i = s.skipPast(i+4, "-->")
		case hasPrefix(d[i:], "<![CDATA["):
			i = s.skipPast(i+9, "]]>")
		case hasPrefixFold(d[i:], "<!DOCTYPE"):
			i = s.doctype(i)
		case hasPrefix(d[i:], "<!ENTITY"):
			// A declaration outside any DOCTYPE: a fragment meant for a
			// document the application assembles.
			end := s.entityDecl(i, true)
			i = max(end, i+1)
		case d[i+1] != '/' && d[i+1] != '!' && d[i+1] != '?' && s.includeAt(i):
			s.report(s.includeConfidence(), "XInclude element pulls in another resource", i, min(len(d), i+80))
			i++
		default:
			i++
		}
	}
	s.bombs()
	if !s.found {
		return detect.Finding{}, false
	}
	f := s.best
	if s.narrow {
		f.Start, f.End = 0, len(v) // spans of the narrowing are not offsets into v
	}
	return f, true
}

// utf16Shape reports a UTF-16 document: a byte-order mark, or '<' with a
// zero byte beside it.
func utf16Shape(v string) bool {
	if len(v) < 4 {
		return false
	}
	if (v[0] == 0xfe && v[1] == 0xff) || (v[0] == 0xff && v[1] == 0xfe) {
		return true
	}
	return (v[0] == '<' && v[1] == 0 && v[3] == 0) || (v[0] == 0 && v[1] == '<' && v[2] == 0)
}

// narrow keeps the ASCII characters of a UTF-16 document (either byte
// order) and turns the rest into '?'; markup is ASCII.
func narrow16(v string) string {
	var dst strings.Builder
	dst.Grow(min(len(v)/2, maxNarrowed))
	i := 0
	if len(v) >= 2 && ((v[0] == 0xfe && v[1] == 0xff) || (v[0] == 0xff && v[1] == 0xfe)) {
		i = 2
	}
	bigEndian := i == 2 && v[0] == 0xfe || i == 0 && v[0] == 0
	for ; i+1 < len(v) && dst.Len() < maxNarrowed; i += 2 {
		hi, lo := v[i], v[i+1]
		if !bigEndian {
			hi, lo = lo, hi
		}
		if hi == 0 && lo < 0x80 {
			dst.WriteByte(lo)
		} else {
			dst.WriteByte('?')
		}
	}
	return dst.String()
}

func (s *scan) skipPast(i int, end string) int {
	d := s.doc
	for ; i+len(end) <= len(d); i++ {
		s.steps++
		if d[i] == end[0] && d[i:i+len(end)] == end {
			return i + len(end)
		}
	}
	return len(d)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scan) skipS(i int) int {
	d := s.doc
	for i < len(d) && isSpace(d[i]) {
		i++
		s.steps++
	}
	return i
}

func isNameStart(c byte) bool {
	return c|0x20 >= 'a' && c|0x20 <= 'z' || c == '_' || c == ':' || c >= 0x80
}

func isName(c byte) bool {
	return isNameStart(c) || c >= '0' && c <= '9' || c == '-' || c == '.'
}

func (s *scan) name(i int) int {
	d := s.doc
	if i >= len(d) || !isNameStart(d[i]) {
		return i
	}
	for i < len(d) && isName(d[i]) {
		i++
		s.steps++
	}
	return i
}

// literal reads a quoted literal at d[i]; it returns the content span and
// the index after the closing quote, or ok == false.
func (s *scan) literal(i int) (a, b, next int, ok bool) {
	d := s.doc
	if i >= len(d) || (d[i] != '"' && d[i] != '\'') {
		return 0, 0, i, false
	}
	q := d[i]
	for j := i + 1; j < len(d); j++ {
		s.steps++
		if d[j] == q {
			return i + 1, j, j + 1, true
		}
	}
	return 0, 0, len(d), false
}

// externalID reads "SYSTEM lit" or "PUBLIC lit [lit]" at d[i].
func (s *scan) externalID(i int) (pubA, pubB, sysA, sysB, next int, ok bool) {
	d := s.doc
	pubA, pubB, sysA, sysB = -1, -1, -1, -1
	switch {
	case hasPrefix(d[i:], "SYSTEM"):
		a, b, n, lit := s.literal(s.skipS(i + 6))
		if !lit {
			return pubA, pubB, sysA, sysB, n, false
		}
		return pubA, pubB, a, b, n, true
	case hasPrefix(d[i:], "PUBLIC"):
		a, b, n, lit := s.literal(s.skipS(i + 6))
		if !lit {
			return pubA, pubB, sysA, sysB, n, false
		}
		pubA, pubB = a, b
		if sa, sb, n2, lit2 := s.literal(s.skipS(n)); lit2 {
			sysA, sysB, n = sa, sb, n2
		}
		return pubA, pubB, sysA, sysB, n, true
	}
	return pubA, pubB, sysA, sysB, i, false
}

// doctype scans "<!DOCTYPE name [externalID] [[subset]]>" at d[i] and
// returns the index after it.
func (s *scan) doctype(i int) int {
	d := s.doc
	start := i
	i = s.skipS(i + 9)
	i = s.name(i)
	i = s.skipS(i)
	pubA, pubB, sysA, sysB, next, ok := s.externalID(i)
	if ok {
		s.judgeExternalDTD(start, next, pubA, pubB, sysA, sysB)
		i = s.skipS(next)
	}
	if i < len(d) && d[i] == '[' {
		i = s.subset(i + 1)
	}
	i = s.skipS(i)
	if i < len(d) && d[i] == '>' {
		i++
	}
	s.dtdEnd = max(s.dtdEnd, i)
	return max(i, start+1)
}

// judgeExternalDTD rates the DTD a DOCTYPE loads.
func (s *scan) judgeExternalDTD(start, end, pubA, pubB, sysA, sysB int) {
	d := s.doc
	if sysA < 0 {
		return // PUBLIC without a system literal: resolved from a catalogue
	}
	sys := d[sysA:sysB]
	w3cPublic := pubA >= 0 && hasPrefix(d[pubA:pubB], "-//W3C//")
	switch {
	case w3cHost(sys) && (w3cPublic || pubA < 0):
		return // XHTML, SVG, MathML from the W3C
	case hasPrefixFold(sys, "file:") || hasPrefixFold(sys, "php:") || hasPrefixFold(sys, "jar:") ||
		hasPrefixFold(sys, "netdoc:") || hasPrefixFold(sys, "gopher:") || hasPrefixFold(sys, "expect:"):
		s.report(92, "DOCTYPE loads a DTD through a local or dangerous scheme", start, end)
	case scheme(sys) && !w3cPublic && pubA >= 0 && contains(d[pubA:pubB], "//DTD "):
		// A formal public identifier of a published DTD (Apple's
		// property lists, DocBook, framework configuration files): what
		// ordinary uploads carry. Attackers name their DTD by SYSTEM.
		s.report(35, "DOCTYPE names a published public DTD", start, end)
	case scheme(sys):
		s.report(85, "DOCTYPE loads an external DTD from a remote host", start, end)
	default:
		s.report(40, "DOCTYPE names a relative external DTD", start, end)
	}
}

func w3cHost(uri string) bool {
	for _, p := range []string{"http://www.w3.org/", "https://www.w3.org/", "http://w3.org/", "https://w3.org/"} {
		if hasPrefixFold(uri, p) {
			return true
		}
	}
	return false
}

// scheme reports whether uri starts with "scheme:".
func scheme(uri string) bool {
	for k := 0; k < len(uri) && k < 32; k++ {
		c := uri[k]
		if c == ':' {
			return k > 1
		}
		if !(c|0x20 >= 'a' && c|0x20 <= 'z' || k > 0 && (c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-')) {
			return false
		}
	}
	return false
}

// subset scans an internal subset from d[i] to its ']' and returns the
// index after it.
func (s *scan) subset(i int) int {
	d := s.doc
	for i < len(d) {
		s.steps++
		c := d[i]
		switch {
		case c == ']':
			return i + 1
		case isSpace(c):
			i++
		case c == '%':
			// A parameter-entity reference where declarations go.
			e := s.name(i + 1)
			if e > i+1 && e < len(d) && d[e] == ';' {
				if k := s.lookup(i+1, e, true); k >= 0 {
					ent := s.ents[k]
					switch {
					case ent.external:
						s.report(95, "parameter entity reference loads an external DTD", i, e+1)
					default:
						s.report(85, "parameter entity reference expands to declarations", i, e+1)
					}
				} else {
					s.report(60, "reference to an undeclared parameter entity", i, e+1)
				}
				i = e + 1
			} else {
				i++
			}
		case hasPrefix(d[i:], "<!--"):
			i = s.skipPast(i+4, "-->")
		case hasPrefix(d[i:], "<?"):
			i = s.skipPast(i+2, "?>")
		case hasPrefix(d[i:], "<!ENTITY"):
			i = max(s.entityDecl(i, false), i+1)
		case hasPrefix(d[i:], "<!["):
			// Conditional sections belong to external subsets.
			s.report(60, "conditional section in an internal subset", i, min(len(d), i+40))
			i += 3
		case c == '<':
			i = s.skipDecl(i)
		default:
			i++
		}
	}
	return i
}

// skipDecl skips a markup declaration (ELEMENT, ATTLIST, NOTATION) at
// d[i], quoted literals included.
func (s *scan) skipDecl(i int) int {
	d := s.doc
	for j := i + 1; j < len(d); j++ {
		s.steps++
		switch d[j] {
		case '"', '\'':
			_, _, n, ok := s.literal(j)
			if !ok {
				return len(d)
			}
			j = n - 1
		case '>':
			return j + 1
		}
	}
	return len(d)
}

// entityDecl scans "<!ENTITY [%] name (value | externalID [NDATA n])>"
// at d[i] and returns the index after it.
func (s *scan) entityDecl(i int, loose bool) int {
	d := s.doc
	start := i
	i = s.skipS(i + 8)
	param := false
	if i < len(d) && d[i] == '%' {
		param = true
		i = s.skipS(i + 1)
	}
	nameA := i
	i = s.name(i)
	if i == nameA {
		return i
	}
	nameB := i
	i = s.skipS(i)
	ent := entity{nameA: nameA, nameB: nameB, param: param, valA: -1, valB: -1}
	if a, b, n, ok := s.literal(i); ok {
		ent.valA, ent.valB = a, b
		i = n
		s.judgeValue(&ent, start)
	} else if _, _, sysA, sysB, n, ok := s.externalID(i); ok {
		ent.external = true
		i = n
		conf := 95
		if loose {
			conf = 88
		}
		reason := "DTD declares an external entity"
		if param {
			reason = "DTD declares an external parameter entity"
		}
		if sysA >= 0 && sysB > sysA && !scheme(d[sysA:sysB]) && !loose {
			conf = 90 // a relative system identifier: still a file read
		}
		s.report(conf, reason, start, min(len(d), n+1))
	} else {
		return i
	}
	i = s.skipS(i)
	for i < len(d) && d[i] != '>' && i-start < 4096 {
		i++ // NDATA name
		s.steps++
	}
	if i < len(d) {
		i++
	}
	if s.n < maxEntities {
		s.ents[s.n] = ent
		s.n++
	}
	return i
}

// judgeValue computes an internal entity's expanded size from the
// entities it references and rates markup hidden in its value.
func (s *scan) judgeValue(ent *entity, declStart int) {
	d := s.doc
	val := d[ent.valA:ent.valB]
	size := int64(0)
	for k := 0; k < len(val); k++ {
		s.steps++
		c := val[k]
		if (c == '&' || c == '%') && k+1 < len(val) && val[k+1] != '#' {
			e := k + 1
			for e < len(val) && isName(val[e]) {
				e++
			}
			if e > k+1 && e < len(val) && val[e] == ';' {
				if j := s.lookup(ent.valA+k+1, ent.valA+e, c == '%'); j >= 0 {
					size += s.ents[j].size
					if size > saturate {
						size = saturate
					}
					ent.depth = max(ent.depth, s.ents[j].depth+1)
				}
				k = e
				continue
			}
		}
		size++
	}
	ent.size = size
	if ent.param {
		switch {
		case contains(val, "<!ENTITY") && (contains(val, "SYSTEM") || contains(val, "PUBLIC")):
			s.report(95, "parameter entity declares an external entity", declStart, ent.valB)
		case contains(val, "<!ENTITY"):
			s.report(85, "parameter entity declares entities", declStart, ent.valB)
		}
	}
	// Markup hidden behind character references: "&#x25;" is '%', the
	// out-of-band pattern that declares an entity from an entity.
	if (contains(val, "&#x25;") || contains(val, "&#37;") || contains(val, "&#X25;")) &&
		(contains(val, "ENTITY") || contains(val, "SYSTEM")) {
		s.report(92, "entity value declares a parameter entity through character references", declStart, ent.valB)
	}
}

// lookup finds a declared entity named d[a:b] of the given kind.
func (s *scan) lookup(a, b int, param bool) int {
	d := s.doc
	name := d[a:b]
	for k := 0; k < s.n; k++ {
		s.steps++
		e := s.ents[k]
		if e.param == param && d[e.nameA:e.nameB] == name {
			return k
		}
	}
	return -1
}

// bombs reports entities that expand past bombSize and bombRatio times
// the document, and documents whose references to entities do
// (quadratic blow-up).
func (s *scan) bombs() {
	if s.n == 0 {
		return
	}
	d := s.doc
	limit := max(int64(bombSize), int64(bombRatio)*int64(len(d)))
	for k := 0; k < s.n; k++ {
		// Past the size limit, or nested three deep and expanding four
		// times the document: the shape of billion laughs at any scale.
		if s.ents[k].size >= limit || s.ents[k].depth >= 3 && s.ents[k].size >= 1024 && s.ents[k].size >= 4*int64(len(d)) {
			e := s.ents[k]
			s.report(95, "entity expansion bomb (nested entity references)", e.nameA, e.valB)
			return
		}
	}
	total := int64(0)
	for i := s.dtdEnd; i < len(d); i++ {
		s.steps++
		if d[i] != '&' {
			continue
		}
		e := s.name(i + 1)
		if e > i+1 && e < len(d) && d[e] == ';' {
			if k := s.lookup(i+1, e, false); k >= 0 {
				total += s.ents[k].size
				if total >= limit {
					s.report(90, "entity references expand past the size limit (quadratic blow-up)", i, e+1)
					return
				}
			}
			i = e
		}
	}
}

// includeAt reports an XInclude element at d[i] ("<xi:include" or any
// prefix with local name include).
func (s *scan) includeAt(i int) bool {
	d := s.doc
	j := i + 1
	for j < len(d) && j-i < 40 && isName(d[j]) && d[j] != ':' {
		j++
	}
	s.steps += j - i
	if j >= len(d) || d[j] != ':' || j == i+1 {
		return false
	}
	return hasPrefix(d[j+1:], "include") && j+8 < len(d) && (isSpace(d[j+8]) || d[j+8] == '/' || d[j+8] == '>')
}

func (s *scan) includeConfidence() int {
	if s.xiNS == 0 {
		s.xiNS = -1
		s.steps += len(s.doc)
		if contains(s.doc, "http://www.w3.org/2001/XInclude") {
			s.xiNS = 1
		}
	}
	if s.xiNS > 0 {
		return 92
	}
	return 75
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func hasPrefixFold(s, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for k := 0; k < len(p); k++ {
		a, b := s[k], p[k]
		if a >= 'a' && a <= 'z' {
			a -= 'a' - 'A'
		}
		if b >= 'a' && b <= 'z' {
			b -= 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

func contains(s, w string) bool {
	for k := 0; k+len(w) <= len(s); k++ {
		if s[k] == w[0] && s[k:k+len(w)] == w {
			return true
		}
	}
	return false
}
