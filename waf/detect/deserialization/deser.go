// Package deserialization detects serialized objects sent to an
// application that may deserialize them: Java object streams, .NET
// BinaryFormatter streams (also inside ViewState), PHP serialize() objects,
// Python pickles, Ruby Marshal data, YAML tags that construct language
// objects, and JSON with polymorphic type markers (Json.NET $type,
// Jackson @class, fastjson @type).
//
// Place in the request path: a detector of the waf stage, run on values
// and bodies after waf/decode. Each format is parsed far enough to
// confirm a structurally valid object header that names a class: the
// Java stream's class descriptor and its UTF length, the BinaryFormatter
// header record and its first library or class record, PHP's
// O:len:"Class" with the length matching the name, a pickle opcode walk
// that reaches a global and a call, Marshal's object and symbol records.
// Random base64 and prose that mentions a marker do not parse. The
// transport encodings that belong to the formats (base64 "rO0AB", hex
// "aced0005", base64 pickles and Marshal, ViewState) are decoded here, a
// bounded prefix at a time.
//
// Decisions: ASP.NET ViewState ("/wE…") is ordinary WebForms traffic and
// passes unless it carries a BinaryFormatter stream (the gadget carrier);
// whether its MAC is valid cannot be seen from here. Rails signed cookies
// hold Marshal data whose signature the server checks; they are weighed
// low.
package deserialization

import (
	"strings"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector finds serialized objects.
type Detector struct{}

// New returns the deserialization detector.
func New() *Detector { return &Detector{} }

// Class reports detect.Deserialization.
func (*Detector) Class() detect.Class { return detect.Deserialization }

// Detect reports the strongest finding in in.Value.
func (d *Detector) Detect(in detect.Input) (detect.Finding, bool) {
	var s scan
	return s.run(in)
}

const (
	prefixBytes   = 768     // decoded bytes examined from a base64 or hex prefix
	viewStateScan = 1 << 16 // decoded ViewState bytes searched for a BinaryFormatter stream
)

type scan struct {
	in    detect.Input
	v     string
	steps int
	best  detect.Finding
	found bool
}

func (s *scan) report(conf int, reason string, start, end int) {
	conf = min(conf, 100)
	if conf < 1 || (s.found && conf <= s.best.Confidence) {
		return
	}
	s.found = true
	s.best = detect.Finding{Class: detect.Deserialization, Detector: "deserialization", Confidence: conf, Reason: reason, Start: start, End: min(end, len(s.v))}
}

func (s *scan) run(in detect.Input) (detect.Finding, bool) {
	s.in = in
	v := in.Value
	s.v = v
	// The start of the value, past whitespace and a quote.
	lo := 0
	for lo < len(v) && (v[lo] == ' ' || v[lo] == '\t' || v[lo] == '\r' || v[lo] == '\n' || v[lo] == '"' || v[lo] == '\'') {
		lo++
	}
	if lo < len(v) {
		s.atStart(lo)
		s.classValue(lo)
	}
	s.javaNames()
	s.serverPage()
	// Markers anywhere in the value.
	for i := 0; i < len(v); i++ {
		s.steps++
		switch v[i] {
		case 'r':
			if i+3 < len(v) && v[i+1] == 'O' && v[i+2] == '0' && v[i+3] == 'A' && i != lo && (i == 0 || !isB64(v[i-1])) {
				s.javaBase64(i)
			}
		case 'K':
			// A Java stream inside base64 at a byte offset of 1 or 2
			// ("…KztAAU…", "…Cs7QAF…") where it is not at the start.
			if i+1 < len(v) && v[i+1] == 'z' && hasPrefix(v[i:], "KztAA") {
				s.javaBase64Shifted(i, 6)
			}
		case 'q':
			if i >= 2 && v[i-1] == 'e' && v[i-2] == 'r' && hasPrefix(v[i-2:], "require") && (i < 3 || !isLetter(v[i-3])) {
				s.nodeRequire(i - 2)
			}
		case '$':
			if i+1 < len(v) && v[i+1] == '$' && hasPrefix(v[i:], "$$ND_FUNC$$_") {
				s.report(95, "node-serialize function marker (code run on unserialize)", i, min(len(v), i+64))
			}
		case '<':
			if i+1 < len(v) && isLetter(v[i+1]) {
				s.xmlElement(i)
			}
		case 'a', 'A':
			if i+1 < len(v) && v[i+1]|0x20 == 'c' && i != lo && hasPrefixFold(v[i:], "aced0005") && (i == 0 || !isHex(v[i-1])) {
				s.javaHex(i)
			}
		case 0xac:
			if i != lo && hasPrefix(v[i:], "\xac\xed\x00\x05") {
				javaStream(s, v[i:], i, len(v), "Java serialized object stream")
			}
		case 'O', 'C':
			if i+2 < len(v) && v[i+1] == ':' && (isDigit(v[i+2]) || v[i+2] == '+') {
				s.php(i)
			}
			if v[i] == 'C' && i+1 < len(v) && v[i+1] == 's' && hasPrefix(v[i:], "Cs7QA") {
				s.javaBase64Shifted(i, 4)
			}
		case '!':
			if i+1 < len(v) && (v[i+1] == '!' || v[i+1] == '<' || v[i+1] == 'r' || v[i+1] == 'p' || v[i+1] == 'j') {
				s.yamlTag(i)
			}
		case '"':
			if i+6 < len(v) && (v[i+1] == '$' || v[i+1] == '@') {
				s.jsonType(i)
			} else if i+2 < len(v) && isLetter(v[i+1]) && (i == 0 || v[i-1] == '[') {
				s.jacksonArray(i)
			}
		case '_':
			if i+1 < len(v) && v[i+1] == '_' && hasPrefix(v[i:], "__HALT_COMPILER();") {
				s.report(60, "PHP archive (phar) stub", i, i+18)
			}
			if i+1 < len(v) && v[i+1] == '_' && hasPrefix(v[i:], "__js_function") && (i == 0 || !isIdent(v[i-1])) && (i+13 == len(v) || !isIdent(v[i+13])) {
				// funcster's marker: the string after it is compiled
				// as a function when the object is deserialized.
				s.report(85, "funcster function marker (code run on deserialization)", i, i+13)
			}
		}
	}
	if !s.found {
		return detect.Finding{}, false
	}
	return s.best, true
}

// atStart checks the binary and base64 formats that start a value.
func (s *scan) atStart(lo int) {
	v := s.v
	rest := v[lo:]
	switch {
	case hasPrefix(rest, "\xac\xed\x00\x05"):
		javaStream(s, rest, lo, len(v), "Java serialized object stream")
	case hasPrefix(rest, "rO0A"):
		s.javaBase64(lo)
	case hasPrefixFold(rest, "aced0005"):
		s.javaHex(lo)
	case hasPrefix(rest, "\x00\x01\x00\x00\x00\xff\xff\xff\xff"):
		binaryFormatter(s, rest[:min(len(rest), prefixBytes)], lo, "BinaryFormatter stream")
	case hasPrefix(rest, "AAEAAAD/////"), hasPrefix(rest, "AAEAAAD_____"): // base64 and base64url
		var buf [prefixBytes]byte
		n := s.base64Prefix(rest, buf[:])
		binaryFormatter(s, buf[:n], lo, "base64 BinaryFormatter stream")
	case hasPrefix(rest, "/wE"):
		s.viewState(lo)
	case len(rest) >= 2 && rest[0] == 0x80 && rest[1] >= 2 && rest[1] <= 5:
		pickle(s, rest[:min(len(rest), prefixBytes)], lo, "Python pickle")
	case len(rest) >= 4 && (rest[0] == 'c' || rest[0] == '(') && pickleText(rest):
		pickle(s, rest[:min(len(rest), prefixBytes)], lo, "Python pickle (protocol 0)")
	case hasPrefix(rest, "gA") || hasPrefix(rest, "Y") || hasPrefix(rest, "KG"):
		var buf [prefixBytes]byte
		if n := s.base64Prefix(rest, buf[:]); n >= 4 {
			b := buf[:n]
			if (b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) || ((b[0] == 'c' || b[0] == '(') && pickleText(b[:min(len(b), 64)])) {
				pickle(s, b, lo, "base64 Python pickle")
			}
		}
	case hasPrefix(rest, "\x04\x08"):
		marshal(s, rest[:min(len(rest), prefixBytes)], lo, "Ruby Marshal data")
	case hasPrefix(rest, "BAh"):
		var buf [prefixBytes]byte
		if n := s.base64Prefix(rest, buf[:]); n >= 3 {
			marshal(s, buf[:n], lo, "base64 Ruby Marshal data")
		}
	}
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isHex(c byte) bool    { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'f' }
func isB64(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '+' || c == '/' || c == '-' || c == '_'
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func hasPrefixFold(s, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for k := 0; k < len(p); k++ {
		a, b := s[k], p[k]
		if a >= 'A' && a <= 'Z' {
			a += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

func b64val(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+' || c == '-':
		return 62
	case c == '/' || c == '_':
		return 63
	}
	return -1
}

// base64Prefix decodes base64 (standard or URL-safe) from s into dst
// until dst is full or a non-base64 byte; it returns the bytes decoded.
func (s *scan) base64Prefix(src string, dst []byte) int {
	n, acc, bits := 0, 0, 0
	for k := 0; k < len(src) && n < len(dst); k++ {
		s.steps++
		d := b64val(src[k])
		if d < 0 {
			break
		}
		acc = acc<<6 | d
		bits += 6
		if bits >= 8 {
			bits -= 8
			dst[n] = byte(acc >> bits)
			n++
			acc &= 1<<bits - 1
		}
	}
	return n
}

// --- Java --------------------------------------------------------------

func (s *scan) javaBase64(i int) {
	var buf [prefixBytes]byte
	n := s.base64Prefix(s.v[i:], buf[:])
	javaStream(s, buf[:n], i, s.b64End(i), "base64 Java serialized object stream")
}

// javaBase64Shifted decodes base64 starting in the middle of a 4-character
// group: pending is the number of bits the characters before it in the
// group carried beyond whole bytes (6 after one character, 4 after two);
// their values do not matter, and the byte they complete is skipped.
func (s *scan) javaBase64Shifted(i, pending int) {
	var buf [prefixBytes]byte
	n, acc, bits := 0, 0, pending
	for k := i; k < len(s.v) && n < len(buf); k++ {
		s.steps++
		d := b64val(s.v[k])
		if d < 0 {
			break
		}
		acc = acc<<6 | d
		bits += 6
		if bits >= 8 {
			bits -= 8
			buf[n] = byte(acc >> bits)
			n++
			acc &= 1<<bits - 1
		}
	}
	if n > 1 {
		javaStream(s, buf[1:n], i, s.b64End(i), "base64 Java serialized object stream")
	}
}

func (s *scan) b64End(i int) int {
	for i < len(s.v) && (isB64(s.v[i]) || s.v[i] == '=') {
		i++
	}
	return i
}

func (s *scan) javaHex(i int) {
	var buf [prefixBytes]byte
	n := 0
	k := i
	for ; k+1 < len(s.v) && n < len(buf) && isHex(s.v[k]) && isHex(s.v[k+1]); k += 2 {
		s.steps++
		buf[n] = hexVal(s.v[k])<<4 | hexVal(s.v[k+1])
		n++
	}
	javaStream(s, buf[:n], i, k, "hex Java serialized object stream")
}

func hexVal(c byte) byte {
	if isDigit(c) {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}

// javaStream validates a Java object stream header: magic, version, then
// TC_OBJECT with a class descriptor (or a proxy descriptor) naming a
// class, or another stream element.
func javaStream[T ~string | ~[]byte](s *scan, b T, start, end int, what string) {
	if len(b) < 4 || b[0] != 0xac || b[1] != 0xed || b[2] != 0x00 || b[3] != 0x05 {
		return
	}
	if len(b) == 4 {
		// Magic and version alone: the stream header and nothing the
		// prefix could show after it.
		conf := 72
		if hasPrefix(what, "hex") {
			conf = 60 // eight hex digits can be an identifier
		}
		s.report(conf, "Java serialization stream header", start, end)
		return
	}
	s.steps += min(len(b), 64)
	tc := b[4]
	switch {
	case tc == 0x73 && len(b) > 5 && b[5] == 0x72: // TC_OBJECT TC_CLASSDESC
		if len(b) >= 8 {
			n := int(b[6])<<8 | int(b[7])
			if n > 0 && 8+n <= len(b) && javaClassName(b[8:8+n]) {
				s.report(98, "Java serialized object stream with a class descriptor", start, end)
				return
			}
		}
		s.report(75, "Java serialized object stream (truncated class descriptor)", start, end)
	case tc == 0x73 && len(b) > 5 && b[5] == 0x7d: // TC_OBJECT TC_PROXYCLASSDESC
		s.report(95, "Java serialized object stream with a proxy class descriptor", start, end)
	case tc >= 0x70 && tc <= 0x7e:
		s.report(85, what, start, end)
	default:
		s.report(45, "Java serialization magic without a valid element", start, end)
	}
}

// javaClassName checks a class name from a class descriptor: Java
// identifiers joined by '.', '$' allowed, or an array descriptor.
func javaClassName[T ~string | ~[]byte](n T) bool {
	if n[0] == '[' {
		return len(n) > 1
	}
	if !(isLetter(n[0]) || n[0] == '_' || n[0] == '$') {
		return false
	}
	for k := 0; k < len(n); k++ {
		c := n[k]
		if !(isLetter(c) || isDigit(c) || c == '_' || c == '$' || c == '.' || c >= 0x80) {
			return false
		}
	}
	return true
}

// --- Class names and XML object graphs -------------------------------

// gadgetNamespace reports the package roots of the JDK and of the
// libraries deserialization gadget chains are built from.
func gadgetNamespace(t string) bool {
	for _, p := range []string{"java.", "javax.", "sun.", "com.sun.", "jdk.", "org.apache.", "org.springframework.",
		"org.codehaus.groovy.", "com.opensymphony.", "ognl.", "bsh.", "groovy.", "org.hibernate.", "com.mchange.",
		"org.mozilla.javascript.", "clojure.", "com.alibaba.", "ch.qos.logback.", "org.jboss.", "net.sf.json.",
		"weblogic.", "com.ibm.", "org.python.", "com.thoughtworks.xstream.", "org.aspectj.", "com.zaxxer.hikari.", "org.omg."} {
		if hasPrefix(t, p) {
			return true
		}
	}
	return false
}

// classValue judges a whole value (or argument name) that is a fully
// qualified class name in a gadget namespace: what a polymorphic type
// handler instantiates when it reads a type from the request.
func (s *scan) classValue(lo int) {
	v := s.v
	hi := len(v)
	for hi > lo && (v[hi-1] == ' ' || v[hi-1] == '"' || v[hi-1] == '\'' || v[hi-1] == '\n' || v[hi-1] == '\r') {
		hi--
	}
	t := v[lo:hi]
	if len(t) < 6 || len(t) > 200 || !(t[0] >= 'a' && t[0] <= 'z' || t[0] == 'L' || t[0] == '[') {
		return
	}
	for k := 0; k < len(t); k++ {
		if c := t[k]; !(isLetter(c) || isDigit(c) || c == '.' || c == '_' || c == '$' || c == ';' || c == '[') {
			return // not a class name: spaces, slashes, '=' …
		}
	}
	if !gadgetNamespace(trimFastjson(t)) {
		return
	}
	switch {
	case javaTypeName(t):
		s.report(72, "value is a class name in a gadget namespace (type selector)", lo, hi)
	case packageName(t) && strings.Count(t, ".") >= 2 && !javaProperty(t):
		// A whole value that is a package three levels deep in a
		// gadget namespace ("org.apache.commons", "com.sun.org.apache")
		// selects classes, as a type selector does; two levels
		// ("java.util") are words in developer prose too often.
		s.report(72, "value is a package name in a gadget namespace (type selector)", lo, hi)
	case packageName(t):
		s.report(50, "value is a package name in a gadget namespace", lo, hi)
	}
}

// javaProperty reports a name under java. or javax. that is not in one
// of the JDK packages gadget chains use: "java.runtime.version",
// "java.io.tmpdir" and the other system property keys.
func javaProperty(t string) bool {
	rest, ok := strings.CutPrefix(t, "java.")
	if !ok {
		if rest, ok = strings.CutPrefix(t, "javax."); !ok {
			return false
		}
	}
	pkg, _, _ := strings.Cut(rest, ".")
	switch pkg {
	case "lang", "rmi", "beans", "naming", "management", "script":
		return false
	}
	return true
}

func packageName(t string) bool {
	for k := 0; k < len(t); k++ {
		c := t[k]
		if !(c >= 'a' && c <= 'z' || isDigit(c) || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// xmlElement judges an element at v[i]: java.beans.XMLDecoder documents
// (<java class="java.beans.XMLDecoder">, <object class="…">, <void
// method="…">) and XStream documents, whose element names are class
// names.
func (s *scan) xmlElement(i int) {
	v := s.v
	e := i + 1
	for e < len(v) && e-i < 256 && (isLetter(v[e]) || isDigit(v[e]) || v[e] == '.' || v[e] == '_' || v[e] == '$' || v[e] == '-') {
		e++
	}
	s.steps += e - i
	name := v[i+1 : e]
	switch name {
	case "java":
		if attrValueIs(v, e, "class", "java.beans.XMLDecoder") {
			s.report(92, "java.beans.XMLDecoder document", i, min(len(v), e+64))
		}
	case "object":
		if cls, ok := attrValue(v, e, "class"); ok && javaTypeName(cls) && gadgetNamespace(cls) {
			s.report(88, "XMLDecoder object element names a class", i, min(len(v), e+64))
		}
	case "dynamic-proxy", "sorted-set", "tree-map", "linked-hash-set":
		// XStream's own collection and proxy elements.
		if hasPrefix(v[e:], ">") || hasPrefix(v[e:], " ") {
			if contains(v[e:min(len(v), e+512)], "<interface>") || contains(v[e:min(len(v), e+512)], "<handler class=") {
				s.report(88, "XStream proxy or collection with a handler class", i, min(len(v), e+64))
			}
		}
	default:
		if javaTypeName(name) && gadgetNamespace(name) {
			s.report(85, "XML element named by a class (XStream object graph)", i, e)
		}
	}
}

// attrValue finds name="…" in the start tag beginning at v[e].
func attrValue(v string, e int, name string) (string, bool) {
	end := e
	for end < len(v) && v[end] != '>' && end-e < 512 {
		end++
	}
	tag := v[e:end]
	for k := 0; k+len(name)+2 < len(tag); k++ {
		if tag[k:k+len(name)] == name && (k == 0 || tag[k-1] == ' ') && tag[k+len(name)] == '=' {
			q := tag[k+len(name)+1]
			if q != '"' && q != '\'' {
				return "", false
			}
			a := k + len(name) + 2
			b := a
			for b < len(tag) && tag[b] != q {
				b++
			}
			return tag[a:b], true
		}
	}
	return "", false
}

func attrValueIs(v string, e int, name, want string) bool {
	got, ok := attrValue(v, e, name)
	return ok && got == want
}

func contains(s, w string) bool {
	for k := 0; k+len(w) <= len(s); k++ {
		if s[k] == w[0] && s[k:k+len(w)] == w {
			return true
		}
	}
	return false
}

// --- .NET --------------------------------------------------------------

// binaryFormatter validates a SerializationHeaderRecord (record type 0,
// root id, header id, major 1, minor 0) and the record that follows: a
// BinaryLibrary or a class record with a length-prefixed name.
func binaryFormatter[T ~string | ~[]byte](s *scan, b T, start int, what string) {
	s.steps += min(len(b), 64)
	if len(b) < 17 || b[0] != 0 || b[9] != 1 || b[10] != 0 || b[11] != 0 || b[12] != 0 || b[13] != 0 {
		return
	}
	if len(b) > 22 {
		switch b[17] {
		case 0x0c, 0x04, 0x05, 0x01: // BinaryLibrary, SystemClassWithMembersAndTypes, ClassWithMembersAndTypes, ClassWithId
			if name, ok := lengthPrefixed(b[22:]); ok && len(name) > 2 {
				s.report(96, "BinaryFormatter stream naming an assembly or class", start, end(s.v, start))
				return
			}
		}
	}
	s.report(80, what, start, end(s.v, start))
}

func end(v string, start int) int {
	for k := start; k < len(v); k++ {
		if v[k] == '&' || v[k] == '"' || v[k] == ' ' {
			return k
		}
	}
	return len(v)
}

// lengthPrefixed reads a 7-bit-length-prefixed printable string.
func lengthPrefixed[T ~string | ~[]byte](b T) (T, bool) {
	n, shift, k := 0, 0, 0
	for ; k < len(b) && k < 5; k++ {
		n |= int(b[k]&0x7f) << shift
		shift += 7
		if b[k]&0x80 == 0 {
			k++
			break
		}
	}
	if n <= 0 || k+n > len(b) {
		return b[:0], false
	}
	name := b[k : k+n]
	for j := 0; j < len(name); j++ {
		if c := name[j]; c < 0x20 || c > 0x7e {
			return b[:0], false
		}
	}
	return name, true
}

// viewState decodes ASP.NET ViewState (ObjectStateFormatter, "/wE") and
// reports it only when it carries a BinaryFormatter stream.
func (s *scan) viewState(lo int) {
	v := s.v
	// Stream-decode, matching the BinaryFormatter header bytes.
	const header = "\x00\x01\x00\x00\x00\xff\xff\xff\xff\x01\x00\x00\x00"
	matched, acc, bits, n := 0, 0, 0, 0
	for k := lo; k < len(v) && n < viewStateScan; k++ {
		s.steps++
		d := b64val(v[k])
		if d < 0 {
			break
		}
		acc = acc<<6 | d
		bits += 6
		if bits < 8 {
			continue
		}
		bits -= 8
		c := byte(acc >> bits)
		acc &= 1<<bits - 1
		n++
		if c == header[matched] {
			matched++
			if matched == len(header) {
				s.report(88, "ViewState carries a BinaryFormatter stream", lo, end(v, lo))
				return
			}
		} else if c == header[0] {
			matched = 1
		} else {
			matched = 0
		}
	}
}

// --- PHP ---------------------------------------------------------------

// php validates O:len:"Class":count:{ (or C: for Serializable) at v[i],
// with len equal to the name's byte length, and the first member.
func (s *scan) php(i int) {
	v := s.v
	start := i
	kind := v[i]
	k := i + 2
	if k < len(v) && v[k] == '+' {
		k++ // O:+8:"…": a sign PHP accepts and naive filters miss
	}
	n, k, ok := digits(v, k)
	if !ok || k+1 >= len(v) || v[k] != ':' || v[k+1] != '"' {
		return
	}
	k += 2
	if n <= 0 || n > 256 || k+n+2 > len(v) {
		return
	}
	name := v[k : k+n]
	s.steps += n
	if !phpClassName(name) || v[k+n] != '"' || v[k+n+1] != ':' {
		return
	}
	k += n + 2
	count, k, ok := digits(v, k)
	if !ok || k+1 >= len(v) || v[k] != ':' || v[k+1] != '{' {
		return
	}
	k += 2
	conf := 88
	reason := "PHP serialized object naming a class"
	if kind == 'C' {
		reason = "PHP serialized Serializable object naming a class"
	}
	if kind == 'O' && count > 0 {
		// The first member: a property name (s:len:"…"; with
		// \0*\0 or \0Class\0 prefixes) of the declared length.
		if k+2 < len(v) && v[k] == 's' && v[k+1] == ':' {
			m, k2, ok := digits(v, k+2)
			if ok && k2+1 < len(v) && v[k2] == ':' && v[k2+1] == '"' && k2+2+m+1 < len(v) && v[k2+2+m] == '"' && v[k2+3+m] == ';' {
				conf = 95
			}
		}
	}
	if kind == 'O' && count == 0 && k < len(v) && v[k] == '}' {
		conf = 90
	}
	s.report(conf, reason, start, min(len(v), k+64))
}

func digits(v string, k int) (int, int, bool) {
	a := k
	n := 0
	for k < len(v) && isDigit(v[k]) && k-a < 9 {
		n = n*10 + int(v[k]-'0')
		k++
	}
	return n, k, k > a
}

func phpClassName(n string) bool {
	prevSep := true
	for k := 0; k < len(n); k++ {
		c := n[k]
		switch {
		case c == '\\':
			if prevSep && k > 0 {
				return false
			}
			prevSep = true
			continue
		case isLetter(c) || c == '_' || c >= 0x80:
		case isDigit(c):
			if prevSep {
				return false
			}
		default:
			return false
		}
		prevSep = false
	}
	return !prevSep
}

// --- Python ------------------------------------------------------------

// pickleText reports whether s opens like a protocol-0 pickle: "c"
// module "\n" name "\n", or "(" and then an opcode line.
func pickleText[T ~string | ~[]byte](s T) bool {
	if s[0] == '(' {
		return len(s) > 2 && (s[1] == 'c' || s[1] == 'i' || s[1] == 'S' || s[1] == 'V' || s[1] == 'd' || s[1] == 'l' || s[1] == 'I')
	}
	nl := 0
	for k := 1; k < len(s) && k < 128; k++ {
		c := s[k]
		if c == '\n' {
			nl++
			if nl == 2 {
				return true
			}
			continue
		}
		if !(isLetter(c) || isDigit(c) || c == '_' || c == '.') {
			return false
		}
	}
	return false
}

// pickle walks pickle opcodes (bounded by the prefix) and reports a
// global looked up and called: GLOBAL or STACK_GLOBAL, then REDUCE,
// INST, OBJ, NEWOBJ or BUILD.
func pickle[T ~string | ~[]byte](s *scan, b T, start int, what string) {
	globals, calls, ops := 0, 0, 0
	k := 0
	if len(b) >= 2 && b[0] == 0x80 {
		k = 2
	}
	valid, stopped := true, false
walk:
	for k < len(b) {
		s.steps++
		op := b[k]
		k++
		ops++
		switch op {
		case '.': // STOP
			stopped = true
			break walk
		case 'c', 'i': // GLOBAL, INST: module\nname\n
			nl := 0
			a := k
			for k < len(b) && nl < 2 {
				if b[k] == '\n' {
					nl++
				} else if !(isLetter(b[k]) || isDigit(b[k]) || b[k] == '_' || b[k] == '.') {
					valid = false
					break walk
				}
				k++
			}
			if nl < 2 || k-a < 4 {
				valid = nl == 2 || k >= len(b)
				break walk
			}
			globals++
			if op == 'i' {
				calls++
			}
		case 0x93: // STACK_GLOBAL
			globals++
		case 'R', 'o', 0x81, 0x92, 'b': // REDUCE, OBJ, NEWOBJ, NEWOBJ_EX, BUILD
			calls++
		case '(', ')', ']', '}', 't', 'l', 'd', 'e', 'u', 's', 'a', '0', '1', '2', 'N', 0x88, 0x89, 0x85, 0x86, 0x87, 0x94, 0x90, 0x8f:
			// MARK, tuples, lists, dicts, appends, POP, DUP, NONE, bools, MEMOIZE, …
		case 'S', 'V', 'I', 'L', 'F', 'p', 'g', 'P': // newline-terminated arguments
			for k < len(b) && b[k] != '\n' {
				k++
			}
			k++
		case 'q', 'h', 'K', 'C', 'U', 0x8c: // 1-byte argument or 1-byte length
			if k >= len(b) {
				break walk
			}
			switch op {
			case 'C', 'U', 0x8c:
				k += 1 + int(b[k])
			default:
				k++
			}
		case 'M': // BININT2
			k += 2
		case 'j', 'r', 'J': // LONG_BINGET, LONG_BINPUT, BININT
			k += 4
		case 'G': // BINFLOAT
			k += 8
		case 'T', 'X', 'B': // 4-byte length
			if k+4 > len(b) {
				break walk
			}
			k += 4 + (int(b[k]) | int(b[k+1])<<8 | int(b[k+2])<<16 | int(b[k+3])<<24)
		case 0x95: // FRAME: 8-byte length
			k += 8
		case 0x8a: // LONG1
			if k >= len(b) {
				break walk
			}
			k += 1 + int(b[k])
		default:
			valid = false
			break walk
		}
	}
	// A pickle ends with STOP, unless the prefix examined ended first.
	valid = valid && (stopped || len(b) >= prefixBytes)
	switch {
	case globals > 0 && calls > 0 && valid:
		s.report(96, "Python pickle that imports and calls a global", start, end(s.v, start))
	case globals > 0 && valid:
		s.report(80, "Python pickle that imports a global", start, end(s.v, start))
	case valid && ops >= 3 && b[0] == 0x80:
		s.report(60, what, start, end(s.v, start))
	}
}

// --- Ruby --------------------------------------------------------------

// marshal walks the start of Ruby Marshal data for records that name a
// class: object, user-marshal, user-dump, struct, extended, class and
// module records whose symbol is a constant name.
func marshal[T ~string | ~[]byte](s *scan, b T, start int, what string) {
	if len(b) < 3 || b[0] != 4 || b[1] != 8 {
		return
	}
	classes := 0
	for k := 2; k+2 < len(b); k++ {
		s.steps++
		switch b[k] {
		case 'o', 'U', 'u', 'S', 'e', 'C', 'c', 'm':
			// A symbol record ':' len name follows the type byte.
			if b[k+1] != ':' {
				continue
			}
			n := int(b[k+2]) - 5 // Marshal small ints are stored +5
			if n <= 0 || k+3+n > len(b) {
				continue
			}
			if rubyConstant(b[k+3 : k+3+n]) {
				classes++
			}
			k += 2 + n
		}
	}
	if classes == 0 {
		if s.signedCookie() {
			return
		}
		s.report(30, what, start, end(s.v, start))
		return
	}
	conf := 88
	if s.signedCookie() {
		conf = 30 // a Rails signed cookie: the server checks the signature
	}
	s.report(conf, "Ruby Marshal data with objects of named classes", start, end(s.v, start))
}

func rubyConstant[T ~string | ~[]byte](n T) bool {
	if len(n) == 0 || n[0] < 'A' || n[0] > 'Z' {
		return false
	}
	for k := 0; k < len(n); k++ {
		c := n[k]
		if !(isLetter(c) || isDigit(c) || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

// signedCookie reports a Rails-style "data--hexsignature" value.
func (s *scan) signedCookie() bool {
	v := s.v
	for k := len(v) - 1; k > 1; k-- {
		if !isHex(v[k]) {
			return v[k] == '-' && v[k-1] == '-' && len(v)-k-1 >= 40
		}
	}
	return false
}

// --- YAML --------------------------------------------------------------

// yamlTag judges a tag at v[i] in node position: one that constructs a
// language object (python/object, ruby/object, php/object, a Java class)
// rather than naming a standard or application type.
func (s *scan) yamlTag(i int) {
	v := s.v
	if i > 0 {
		switch v[i-1] {
		case ' ', '\t', '\n', '\r', '[', '{', ',', '-', ':', '"', '\'':
		default:
			return
		}
	}
	a := i + 1
	secondary := false // "!!": the tag:yaml.org,2002: namespace
	if a < len(v) && v[a] == '!' {
		a++
		secondary = true
	}
	verbatim := false
	if a < len(v) && v[a] == '<' {
		a++
		verbatim = true
		if hasPrefix(v[a:], "tag:yaml.org,2002:") {
			a += len("tag:yaml.org,2002:")
		}
	}
	b := a
	for b < len(v) && b-a < 256 && !(v[b] == ' ' || v[b] == '\t' || v[b] == '\n' || v[b] == '\r' || v[b] == '[' || v[b] == ']' || v[b] == '{' || v[b] == '}' || v[b] == ',' || v[b] == '>' || v[b] == '\'' || v[b] == '"') {
		b++
	}
	s.steps += b - a
	tag := v[a:b]
	if tag == "" {
		return
	}
	conf := 0
	switch {
	case hasPrefix(tag, "python/object"), hasPrefix(tag, "python/name:"), hasPrefix(tag, "python/module:"),
		hasPrefix(tag, "ruby/object:"), hasPrefix(tag, "ruby/hash:"), hasPrefix(tag, "ruby/struct:"),
		hasPrefix(tag, "ruby/class"), hasPrefix(tag, "php/object"), hasPrefix(tag, "ruby/marshalable:"):
		conf = 95
	case hasPrefix(tag, "python/") || hasPrefix(tag, "ruby/"):
		conf = 30
	case (secondary || verbatim) && javaTypeName(tag):
		// SnakeYAML's "!!javax.script.ScriptEngineManager"; a single
		// '!' before a dotted name is a negation in code.
		conf = 92
	case verbatim && hasPrefix(tag, "java"):
		conf = 80
	}
	if conf > 0 {
		s.report(conf, "YAML tag constructs a language object", i, b)
	}
}

// javaTypeName reports a fully qualified Java or .NET class name: at
// least two package segments, a class segment starting upper case.
func javaTypeName(t string) bool {
	t = trimFastjson(t)
	dots, seg := 0, 0
	lastStart := 0
	for k := 0; k < len(t); k++ {
		c := t[k]
		switch {
		case c == '.':
			if seg == 0 {
				return false
			}
			dots++
			seg = 0
			lastStart = k + 1
		case isLetter(c) || c == '_' || c == '$' || isDigit(c) && seg > 0:
			seg++
		default:
			return false
		}
	}
	return dots >= 2 && seg > 0 && t[lastStart] >= 'A' && t[lastStart] <= 'Z'
}

// trimFastjson strips the descriptor wrappers fastjson accepts: "L…;" and
// a leading "[".
func trimFastjson(t string) string {
	for len(t) > 0 && t[0] == '[' {
		t = t[1:]
	}
	if len(t) > 2 && t[0] == 'L' && t[len(t)-1] == ';' {
		t = t[1 : len(t)-1]
	}
	return t
}

// --- JSON type markers -------------------------------------------------

// jsonType judges "$type", "@type" and "@class" keys whose value is a
// class name at v[i] (the key's opening quote).
func (s *scan) jsonType(i int) {
	v := s.v
	k := i + 1
	var key string
	switch {
	case hasPrefix(v[k:], "$type\""):
		key = "$type"
	case hasPrefix(v[k:], "@type\""):
		key = "@type"
	case hasPrefix(v[k:], "@class\""):
		key = "@class"
	case hasPrefix(v[k:], "@c\""):
		key = "@c"
	default:
		return
	}
	k += len(key) + 1
	for k < len(v) && (v[k] == ' ' || v[k] == '\t' || v[k] == '\n') {
		k++
	}
	if k >= len(v) || v[k] != ':' {
		return
	}
	k++
	for k < len(v) && (v[k] == ' ' || v[k] == '\t' || v[k] == '\n') {
		k++
	}
	if k >= len(v) || v[k] != '"' {
		return
	}
	a := k + 1
	b := a
	for b < len(v) && v[b] != '"' && b-a < 512 {
		b++
	}
	s.steps += b - i
	if b >= len(v) {
		return
	}
	val := v[a:b]
	typeName := val
	assembly := false
	for c := 0; c < len(val); c++ {
		if val[c] == ',' {
			typeName = val[:c]
			assembly = true
			break
		}
	}
	for len(typeName) > 0 && typeName[len(typeName)-1] == ' ' {
		typeName = typeName[:len(typeName)-1]
	}
	switch {
	case key == "$type" && assembly && dottedName(typeName):
		s.report(85, "Json.NET $type names an assembly-qualified type", i, b+1)
	case key == "$type" && javaTypeName(typeName):
		s.report(75, "Json.NET $type names a type", i, b+1)
	case key != "$type" && javaTypeName(typeName):
		s.report(88, "polymorphic JSON type marker names a class", i, b+1)
	}
}

// dottedName reports a dotted type name (System.Windows.Data.X).
func dottedName(t string) bool {
	dots := 0
	for k := 0; k < len(t); k++ {
		c := t[k]
		switch {
		case c == '.':
			dots++
		case isLetter(c) || isDigit(c) || c == '_' || c == '`' || c == '[' || c == ']' || c == '+':
		default:
			return false
		}
	}
	return dots >= 1
}

// jacksonArray judges Jackson's default typing as an array: a class name
// string followed by an object, ["com.x.Y", {…}].
func (s *scan) jacksonArray(i int) {
	v := s.v
	a := i + 1
	b := a
	for b < len(v) && v[b] != '"' && b-a < 256 {
		b++
	}
	s.steps += b - a
	if b >= len(v) || !javaTypeName(v[a:b]) {
		return
	}
	k := b + 1
	for k < len(v) && (v[k] == ' ' || v[k] == '\t' || v[k] == '\n') {
		k++
	}
	if k+1 < len(v) && v[k] == ',' {
		k++
		for k < len(v) && (v[k] == ' ' || v[k] == '\t' || v[k] == '\n') {
			k++
		}
		if k < len(v) && (v[k] == '{' || v[k] == '[' || v[k] == '"') {
			s.report(78, "JSON array typed by a class name (default typing)", i, k+1)
		}
	}
}

// nodeRequire judges require( 'module' ) at v[i:]: Node.js code that
// loads a core module able to run processes or touch files, the body of
// a node-serialize or funcster function and of server-side JavaScript
// injection. A call with a literal argument, not the word "require".
func (s *scan) nodeRequire(i int) {
	v := s.v
	j := i + len("require")
	for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
		j++
	}
	if j >= len(v) || v[j] != '(' {
		return
	}
	j++
	for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
		j++
	}
	if j >= len(v) || (v[j] != '\'' && v[j] != '"' && v[j] != '`') {
		return
	}
	q := v[j]
	k := j + 1
	for k < len(v) && k-j < 32 && v[k] != q {
		k++
	}
	if k >= len(v) || v[k] != q {
		return
	}
	mod := v[j+1 : k]
	if len(mod) > 5 && mod[:5] == "node:" {
		mod = mod[5:]
	}
	switch mod {
	case "child_process", "vm", "fs", "net", "dgram", "worker_threads", "cluster", "module":
	default:
		return
	}
	s.steps += k - i
	conf := 75
	if mod == "child_process" || mod == "vm" {
		conf = 88
	}
	if len(v) > 1024 || proseBefore(v[:i]) >= 3 {
		// Documentation and forum posts show require('node:fs') in
		// code samples among sentences; an injected payload is code.
		conf = 30
	}
	s.report(conf, "Node.js code loads the "+mod+" module (code run on deserialization or eval)", i, min(len(v), k+1))
}

// proseBefore counts the words of letters followed by a blank in s, up
// to 3: sentences, not code.
func proseBefore(s string) int {
	n, run := 0, 0
	for k := 0; k < len(s) && n < 3; k++ {
		c := s[k]
		switch {
		case isLetter(c):
			run++
		case (c == ' ' || c == '\n') && run >= 2:
			n++
			run = 0
		default:
			run = 0
		}
	}
	return n
}

// serverPage judges a file name sent with an upload (a multipart file
// name, or the X-Filename header of raw uploads) that names a Java server
// page: a servlet container compiles and runs a .jsp or .jspx file it
// serves, so storing one is code execution, the Java sibling of a PHP
// archive. Trailing dots and spaces are trimmed, as Windows does when it
// stores the file, and so are spaces after the dot ("shell. jsp").
func (s *scan) serverPage() {
	if s.in.Where != detect.WhereFileName && !(s.in.Where == detect.WhereHeader && fileNameHeader(s.in.Name)) {
		return
	}
	v := strings.TrimRight(s.v, ". \t")
	dot := strings.LastIndexByte(v, '.')
	if dot < 0 || strings.ContainsAny(v[dot:], "/\\") {
		return
	}
	switch strings.ToLower(strings.TrimSpace(v[dot+1:])) {
	case "jsp", "jspx", "jspf":
		s.report(80, "upload of a Java server page (code the servlet container runs)", dot, len(v))
	}
}

// fileNameHeader reports a request header that carries an upload's file
// name (X-Filename, X_Filename, X-File-Name).
func fileNameHeader(name string) bool {
	_, h, ok := strings.Cut(name, ":")
	if !ok {
		return false
	}
	h = strings.ToLower(h)
	h = dashes.Replace(h)
	return h == "xfilename"
}

// dashes drops the separators header names are written with.
var dashes = strings.NewReplacer("-", "", "_", "")
