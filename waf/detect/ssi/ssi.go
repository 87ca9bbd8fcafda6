// Package ssi detects server-side include injection: a value that, placed
// in a page a web server parses for SSI directives (Apache mod_include,
// nginx's ssi module, IIS), becomes a directive the server executes:
// <!--#exec cmd="id" -->, <!--#include virtual="/etc/passwd" -->,
// <!--#echo var="DOCUMENT_ROOT" -->, <!--#printenv -->.
//
// Place in the request path: a detector of the waf stage, run on values
// that waf/decode has already decoded (URL, entities, base64 …).
//
// The value is read with the directive grammar those servers share:
// "<!--#", an element name, then attribute=value pairs (double, single or
// back-quoted, or bare), then "-->". A finding needs a known element whose
// attributes parse; an HTML comment, a "#" anchor, a C preprocessor line
// ("#include <stdio.h>") or prose mentioning "exec" does not parse that way.
// A directive cut at the end of the value still counts when its attribute
// is complete: the page's own later "-->" closes it.
//
// Work is linear: the value is scanned once for "<!--#", and each
// candidate's parse reads at most maxDirective bytes, so a value of n bytes
// costs at most n + (n/5)*maxDirective steps, and nothing is allocated.
package ssi

import "github.com/portcullis-waf/portcullis/waf/detect"

// Detector finds server-side include directives.
type Detector struct{}

// New returns the SSI detector.
func New() *Detector { return &Detector{} }

// Class reports detect.SSI.
func (*Detector) Class() detect.Class { return detect.SSI }

// MaxLen bounds the bytes of a value examined (head and tail windows).
const MaxLen = 64 << 10

// maxDirective bounds one directive's parse: real directives are short.
const maxDirective = 512

// Detect reports the strongest directive in in.Value.
func (d *Detector) Detect(in detect.Input) (detect.Finding, bool) {
	return detect.HeadTail(in.Value, MaxLen, func(v string) (detect.Finding, bool) {
		var s scan
		return s.run(v)
	})
}

// element is what one SSI element does and the attributes it takes.
type element struct {
	name  string
	attrs []string
	// complete and cut are the confidences of a well-formed directive
	// and of one cut at the end of the value.
	complete, cut int
	reason        string
	// bare elements take no attribute (printenv, else, endif).
	bare bool
}

var elements = []element{
	{name: "exec", attrs: []string{"cmd", "cgi"}, complete: 95, cut: 85, reason: "SSI exec directive runs a command"},
	{name: "include", attrs: []string{"file", "virtual", "onerror", "set", "stub", "wait"}, complete: 90, cut: 78, reason: "SSI include directive reads a file"},
	{name: "fsize", attrs: []string{"file", "virtual"}, complete: 85, cut: 72, reason: "SSI fsize directive probes a file"},
	{name: "flastmod", attrs: []string{"file", "virtual"}, complete: 85, cut: 72, reason: "SSI flastmod directive probes a file"},
	{name: "echo", attrs: []string{"var", "encoding", "decoding", "default"}, complete: 85, cut: 72, reason: "SSI echo directive prints a server variable"},
	{name: "printenv", complete: 88, cut: 75, reason: "SSI printenv directive dumps the environment", bare: true},
	{name: "set", attrs: []string{"var", "value", "encoding", "decoding"}, complete: 80, cut: 65, reason: "SSI set directive"},
	{name: "config", attrs: []string{"errmsg", "sizefmt", "timefmt", "echomsg", "encoding"}, complete: 80, cut: 65, reason: "SSI config directive"},
	{name: "if", attrs: []string{"expr"}, complete: 80, cut: 65, reason: "SSI conditional directive"},
	{name: "elif", attrs: []string{"expr"}, complete: 80, cut: 65, reason: "SSI conditional directive"},
	{name: "block", attrs: []string{"name"}, complete: 75, cut: 60, reason: "SSI block directive"},
	{name: "else", complete: 55, cut: 40, reason: "SSI else directive", bare: true},
	{name: "endif", complete: 55, cut: 40, reason: "SSI endif directive", bare: true},
}

type scan struct {
	v     string
	steps int
}

func (s *scan) run(v string) (detect.Finding, bool) {
	s.v = v
	var best detect.Finding
	found := false
	for i := 0; i+5 <= len(v); i++ {
		s.steps++
		if v[i] != '<' || v[i+1] != '!' || v[i+2] != '-' || v[i+3] != '-' || v[i+4] != '#' {
			continue
		}
		if f, ok := s.directive(i); ok && f.Confidence > best.Confidence {
			best, found = f, true
		}
	}
	return best, found
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isNameByte(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c == '_' || c == '-' || ('0' <= c && c <= '9')
}

// equalFold compares an ASCII name case-insensitively without allocating.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i]|0x20 != b[i]|0x20 {
			return false
		}
	}
	return true
}

// directive parses the directive starting at v[start:] ("<!--#").
func (s *scan) directive(start int) (detect.Finding, bool) {
	v := s.v
	end := min(len(v), start+maxDirective)
	i := start + 5
	// nginx accepts "<!--# include"; Apache wants the name right away.
	for i < end && isSpace(v[i]) {
		i++
		s.steps++
	}
	n := i
	for i < end && ('a' <= v[i]|0x20 && v[i]|0x20 <= 'z') {
		i++
		s.steps++
	}
	name := v[n:i]
	var el *element
	for k := range elements {
		if equalFold(name, elements[k].name) {
			el = &elements[k]
			break
		}
	}
	if el == nil {
		return detect.Finding{}, false
	}
	if i < end && !isSpace(v[i]) && v[i] != '-' {
		return detect.Finding{}, false // "<!--#includes", "<!--#exec:"
	}
	known := 0 // attributes of the element
	for {
		for i < end && isSpace(v[i]) {
			i++
			s.steps++
		}
		if i+3 <= len(v) && v[i] == '-' && v[i+1] == '-' && v[i+2] == '>' {
			return s.finding(el, known, true, start, i+3)
		}
		if i >= len(v) {
			// Cut at the end of the value: the page's own "-->" will
			// close it.
			return s.finding(el, known, false, start, len(v))
		}
		if i >= end {
			return detect.Finding{}, false
		}
		a := i
		for i < end && isNameByte(v[i]) && !(v[i] == '-' && i+2 < len(v) && v[i+1] == '-' && v[i+2] == '>') {
			i++
			s.steps++
		}
		attr := v[a:i]
		if attr == "" {
			return detect.Finding{}, false
		}
		for i < end && isSpace(v[i]) {
			i++
			s.steps++
		}
		if i >= end || v[i] != '=' {
			return detect.Finding{}, false
		}
		i++
		for i < end && isSpace(v[i]) {
			i++
			s.steps++
		}
		if i >= end {
			return detect.Finding{}, false
		}
		var ok bool
		if i, ok = s.attrValue(i, end); !ok {
			return detect.Finding{}, false
		}
		for _, k := range el.attrs {
			if equalFold(attr, k) {
				known++
				break
			}
		}
	}
}

// attrValue reads a quoted or bare attribute value at v[i:] and returns
// the index after it.
func (s *scan) attrValue(i, end int) (int, bool) {
	v := s.v
	switch q := v[i]; q {
	case '"', '\'', '`':
		for j := i + 1; j < end; j++ {
			s.steps++
			switch v[j] {
			case '\\':
				j++
			case q:
				return j + 1, j > i+1
			}
		}
		if end == len(v) {
			return len(v), false
		}
		return 0, false
	default:
		j := i
		for j < end && !isSpace(v[j]) && !(v[j] == '-' && j+2 < len(v) && v[j+1] == '-' && v[j+2] == '>') {
			j++
			s.steps++
		}
		return j, j > i
	}
}

func (s *scan) finding(el *element, known int, complete bool, start, end int) (detect.Finding, bool) {
	if !el.bare && known == 0 {
		// "<!--#exec -->" or unknown attributes only: the server
		// rejects it; a weak signal.
		return detect.Finding{Class: detect.SSI, Detector: "ssi", Confidence: 35, Reason: el.reason + " without its attributes", Start: start, End: end}, true
	}
	c := el.cut
	if complete {
		c = el.complete
	}
	return detect.Finding{Class: detect.SSI, Detector: "ssi", Confidence: c, Reason: el.reason, Start: start, End: end}, true
}
