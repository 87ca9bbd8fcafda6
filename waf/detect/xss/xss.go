// Package xss detects cross-site scripting: a value that, placed in an
// HTML page (as text, inside an attribute value, as a URL attribute, or
// inside a script), adds markup or script that executes.
//
// Place in the request path: one of the waf stage's detectors, run on each
// decoded variant (waf/decode) of each request value.
//
// Three paths, each a real grammar:
//   - xss/html: golang.org/x/net/html's Tokenizer (the HTML5 tokenizer
//     browsers follow, streaming, no tree) finds executable tags (script,
//     iframe srcdoc, object/embed, base, meta refresh, form actions, SVG
//     animation of href), event-handler attributes whose JavaScript does
//     something, and dangerous URLs (javascript:, vbscript:, data:text/html)
//     in URL attributes. The same tokenizer, run with the value placed
//     inside a quoted or unquoted attribute value, finds attribute
//     breakouts (" onmouseover=alert(1) x=").
//   - xss/js: tdewolff/parse/v2's JavaScript lexer and parser judge values
//     that land in script (as code or inside a '…', "…" or `…` string):
//     a call that reaches an execution or exfiltration sink, resolved
//     through the forms filters miss (confirm.call(null,1), (alert)(1),
//     alert?.(…), alert`1`, window['al'+'ert'](1)), confirmed by parsing
//     the result as valid JavaScript.
//   - xss/url: a value that is itself a javascript:/vbscript:/data: URL
//     whose script does something ("JavaScript: The Good Parts" is a title,
//     not a script).
//
// Benign rich text (p, b, a href=https, img src=https alt, tables, lists,
// code blocks with escaped content) produces no finding.
package xss

import (
	"strings"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector is the XSS detector. The zero value is ready to use.
type Detector struct{}

var _ detect.Detector = Detector{}

// New returns the detector.
func New() Detector { return Detector{} }

// Class implements detect.Detector.
func (Detector) Class() detect.Class { return detect.XSS }

// MaxLen bounds the bytes of a value examined.
const MaxLen = 16384

// minScore is the lowest confidence reported.
const minScore = 40

// Prefilter reports whether v could be XSS at all: it needs a '<' (markup),
// a ':' (a URL scheme), a quote and '=' (an attribute breakout), or a call
// or assignment shape (script). It does not allocate.
func Prefilter(v string) bool {
	return strings.IndexByte(v, '<') >= 0 || hasScheme(v) || mayBreakAttr(v) || mayCall(v)
}

// state is one Detect call's bookkeeping: the work done (tokens looked
// at, for the linear-time test) and the nesting of documents inside
// documents (srcdoc, raw text).
type state struct {
	steps int
	depth int
}

// maxDocDepth bounds documents judged inside documents.
const maxDocDepth = 3

// Detect implements detect.Detector.
func (d Detector) Detect(in detect.Input) (detect.Finding, bool) {
	return detect.HeadTail(in.Value, MaxLen, func(v string) (detect.Finding, bool) {
		w := in
		w.Value = v
		f, ok, _ := d.run(w)
		return f, ok
	})
}

// run is Detect that also reports the work done.
func (d Detector) run(in detect.Input) (detect.Finding, bool, int) {
	var st0 state
	st := &st0
	v := in.Value
	if len(v) > MaxLen {
		v = v[:MaxLen]
	}
	var best detect.Finding
	consider := func(f detect.Finding, ok bool) {
		if ok && f.Confidence > best.Confidence {
			best = f
		}
	}
	if strings.IndexByte(v, '<') >= 0 {
		consider(htmlFinding(st, v, 0, len(v), "", 0))
		if u, ok := unnest(v); ok && best.Confidence < 90 {
			// <scr<script>ipt>: markup rebuilt by a filter that strips
			// script tags once.
			if f, ok := htmlFinding(st, u, 0, len(u), "", 0); ok {
				f.Confidence -= 5
				f.Reason = "script tag rebuilt by stripping nested tags: " + f.Reason
				f.Start, f.End = 0, len(v)
				consider(f, true)
			}
		}
	}
	if best.Confidence < 90 && mayBreakAttr(v) {
		consider(attrBreakout(st, v))
	}
	if best.Confidence < 90 && hasScheme(v) {
		consider(urlFinding(st, v))
	}
	if best.Confidence < 90 && mayCall(v) {
		consider(jsFinding(st, v))
	}
	if best.Detector == "xss/html" && best.Confidence >= minScore && best.Confidence < 75 && closesTag(v) {
		// "><script>: the value first closes the attribute and the tag
		// it was placed in, then opens markup of its own.
		best.Confidence = 75
		best.Reason = "tag closed, then " + best.Reason
	}
	if best.Confidence < minScore {
		return detect.Finding{}, false, st.steps
	}
	best.Class = detect.XSS
	return best, true, st.steps
}

// jsFinding judges v as script: as code, and inside each string literal
// kind it could close, also where the application escapes quotes with a
// backslash but not the backslash itself (\";alert(1)//).
func jsFinding(st *state, v string) (detect.Finding, bool) {
	var best detect.Finding
	type jctx struct {
		quote   byte
		escaped bool
		name    string
	}
	ctxs := [...]jctx{
		{0, false, "script"},
		{'\'', false, "single-quoted script string"},
		{'"', false, "double-quoted script string"},
		{'`', false, "template literal"},
		{'\'', true, "single-quoted script string with escaped quotes"},
		{'"', true, "double-quoted script string with escaped quotes"},
	}
	for _, c := range ctxs {
		src, shift := v, 0
		if c.quote != 0 {
			if strings.IndexByte(v, c.quote) < 0 && !(c.quote == '`' && strings.Contains(v, "${")) {
				continue
			}
			body := v
			if c.escaped {
				if !strings.Contains(v, "\\"+string(c.quote)) {
					continue
				}
				body = strings.ReplaceAll(v, string(c.quote), "\\"+string(c.quote))
			}
			src, shift = string(c.quote)+body+string(c.quote), 1
		}
		r := scanJS(st, src)
		sc := r.ev.score()
		if sc < 60 || sc <= best.Confidence || !r.repairOK {
			continue
		}
		if !validJS(r.repaired(src)) {
			// Not valid script, so not executable as it stands; but a
			// string closed and followed by an operator and a sink or
			// document.cookie is still an attempt.
			if c.quote == 0 || c.quote == '`' || r.ev < evCookieRead || !operatorAfterQuote(v, c.quote) {
				continue
			}
			sc = 65
			if sc <= best.Confidence {
				continue
			}
		}
		start, end := r.start-shift, r.end-shift
		if c.escaped {
			start, end = 0, len(v) // offsets moved with the inserted escapes
		}
		if start < 0 {
			start = 0
		}
		if end > len(v) {
			end = len(v)
		}
		if end < start {
			end = start
		}
		best = detect.Finding{Detector: "xss/js", Confidence: sc, Reason: c.name + " context: " + r.ev.reason(), Start: start, End: end}
	}
	return best, best.Confidence > 0
}

// closesTag: v starts with an optional quote and '>' (a value that ends
// the attribute and tag it sits in).
func closesTag(v string) bool {
	t := strings.TrimLeft(v, " \t")
	if strings.HasPrefix(t, `"`) || strings.HasPrefix(t, "'") {
		t = strings.TrimLeft(t[1:], " \t")
	}
	t = strings.TrimPrefix(t, "/")
	return strings.HasPrefix(t, ">")
}

// operatorAfterQuote: the first quote q in v is followed (after blanks)
// by an operator or separator, the shape of "-alert(1)-" breakouts.
func operatorAfterQuote(v string, q byte) bool {
	i := strings.IndexByte(v, q)
	if i < 0 {
		return false
	}
	for i++; i < len(v) && (v[i] == ' ' || v[i] == '\t'); i++ {
	}
	return i < len(v) && strings.IndexByte("+-*/%;,|&^?:)}]=<>", v[i]) >= 0
}

// urlFinding judges a value that is itself a URL with a script scheme.
func urlFinding(st *state, v string) (detect.Finding, bool) {
	scheme, rest, ok := scriptScheme(v)
	if !ok {
		return detect.Finding{}, false
	}
	switch scheme {
	case "javascript", "vbscript":
		if scheme == "vbscript" {
			if mayCall(rest) || strings.ContainsAny(rest, " (") {
				return detect.Finding{Detector: "xss/url", Confidence: 75, Reason: "vbscript: URL", Start: 0, End: len(v)}, true
			}
			return detect.Finding{}, false
		}
		// The URL parser removes tab and newline from the attribute
		// value, but a %0a decoded later is a real newline: judge both.
		for _, src := range [...]string{rest, stripURLControls(rest)} {
			r := scanJS(st, src)
			if r.ev.score() >= 60 && r.repairOK && validJS(r.repaired(src)) {
				return detect.Finding{Detector: "xss/url", Confidence: r.ev.score(), Reason: "javascript: URL: " + r.ev.reason(), Start: 0, End: len(v)}, true
			}
		}
	case "data":
		// data:text/html,<script>… or ;base64: a document of its own.
		return detect.Finding{Detector: "xss/url", Confidence: 80, Reason: "data: URL with an HTML or SVG document", Start: 0, End: len(v)}, true
	}
	return detect.Finding{}, false
}

// hasScheme: a ':' that could end a javascript/vbscript/data scheme.
func hasScheme(v string) bool {
	i := strings.IndexByte(v, ':')
	return i >= 4
}

// scriptScheme reports whether v, as a browser reads a URL attribute
// (leading spaces and controls skipped, tab/newline removed anywhere),
// starts with javascript:, vbscript: or data:text/html (or svg/xml).
func scriptScheme(v string) (scheme, rest string, ok bool) {
	i := 0
	for i < len(v) && v[i] <= ' ' {
		i++
	}
	var buf [16]byte
	n := 0
	j := i
	for ; j < len(v) && n < len(buf); j++ {
		c := v[j]
		if c == '\t' || c == '\n' || c == '\r' {
			continue
		}
		if c == ':' {
			break
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	if j >= len(v) || v[j] != ':' {
		return "", "", false
	}
	rest = v[j+1:]
	switch string(buf[:n]) {
	case "javascript":
		return "javascript", rest, true
	case "vbscript":
		return "vbscript", rest, true
	case "data":
		r := strings.ToLower(strings.TrimLeft(rest, " \t\r\n"))
		for _, t := range []string{"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml", "text/javascript", "application/javascript"} {
			if strings.HasPrefix(r, t) {
				return "data", rest, true
			}
		}
	}
	return "", "", false
}

// stripURLControls removes tab and newline as the URL parser does; it
// allocates only when there are some.
func stripURLControls(s string) string {
	if !strings.ContainsAny(s, "\t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
}
