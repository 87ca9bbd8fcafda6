package xss

import (
	"strings"

	"github.com/portcullis-waf/portcullis/waf/detect"
	"golang.org/x/net/html"
)

// maxTokens bounds the HTML tokens examined per value.
const maxTokens = 2048

// htmlFinding tokenises v (offset maps token offsets back into the
// original value when v was wrapped; skipAttr names an attribute of the
// wrapper tag to ignore; skipTags is the number of leading wrapper tags).
func htmlFinding(st *state, v string, offset, origLen int, skipAttr string, skipTags int) (detect.Finding, bool) {
	return htmlFindingDepth(st, v, offset, origLen, skipAttr, skipTags, 0)
}

func htmlFindingDepth(st *state, v string, offset, origLen int, skipAttr string, skipTags, depth int) (detect.Finding, bool) {
	if st.depth >= maxDocDepth {
		return detect.Finding{}, false
	}
	st.depth++
	defer func() { st.depth-- }()
	z := html.NewTokenizer(strings.NewReader(v))
	z.SetMaxBuf(len(v) + 1)
	var best detect.Finding
	pos := 0
	inScript := false
	scriptStart := 0
	tags := 0
	rawText := ""
	for n := 0; n < maxTokens; n++ {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		raw := z.Raw()
		st.steps++
		start, end := pos-offset, pos+len(raw)-offset
		pos += len(raw)
		if start < 0 {
			start = 0
		}
		if end > origLen {
			end = origLen
		}
		if start > origLen {
			start = origLen
		}
		if end < start {
			end = start
		}
		add := func(conf int, reason string) {
			if conf > best.Confidence {
				best = detect.Finding{Detector: "xss/html", Confidence: conf, Reason: reason, Start: start, End: end}
			}
		}
		switch tt {
		case html.TextToken:
			if rawText != "" && !inScript && depth < 1 && strings.IndexByte(string(raw), '<') >= 0 {
				// Inside style, textarea, title, noscript, xmp… the
				// tokenizer reads text; under <math>/<svg> a browser may
				// read the same bytes as markup (mutation XSS), and a
				// filter that closes the element lets it out.
				if f, ok := htmlFindingDepth(st, string(raw), 0, len(raw), "", 0, depth+1); ok {
					add(f.Confidence-5, "markup inside <"+rawText+">: "+f.Reason)
				}
			}
			if rawText == "style" && cssScript(string(raw)) {
				add(80, "style element with script")
			}
			rawText = ""
			if inScript {
				// <script>…</script>: the content is script.
				// Script that does not parse never runs: "`<script>` tags
				// together within …" in a document is prose.
				r := scanJS(st, string(raw))
				switch {
				case r.ev >= evCall && r.repairOK && validJS(r.repaired(string(raw))):
					if r.ev.score() >= 60 {
						add(95, "script element: "+r.ev.reason())
					} else {
						add(80, "script element calls a function")
					}
				case r.ev.score() >= 60 && closesScript(v[min(pos, len(v)):]):
					// A closed element whose script reaches a sink, even if
					// this copy does not parse.
					add(85, "script element: "+r.ev.reason())
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if string(name) == "script" && inScript {
				inScript = false
				_ = scriptStart
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			tags++
			name, hasAttr := z.TagName()
			tag := string(name)
			if i := strings.LastIndexByte(tag, ':'); i >= 0 {
				// <x:script xmlns:x="http://www.w3.org/1999/xhtml">: in
				// XML the prefix is whatever the document binds.
				tag = tag[i+1:]
			}
			wrapper := tags <= skipTags
			if !wrapper {
				switch tag {
				case "script":
					// A bare <script> is also how prose names the tag; the
					// element is judged by its src and its content.
					add(50, "script element")
					inScript = tt == html.StartTagToken
					scriptStart = start
					if hasAttr && tagHasAttr(string(raw), "src", "href", "xlink:href") {
						add(90, "script element with a source")
					}
				case "iframe", "frame", "frameset", "object", "embed", "applet", "portal":
					// Embedding needs a source: "options <Object>" in API
					// documentation has none.
					if hasAttr && tagHasAttr(string(raw), "src", "data", "code", "srcdoc", "codebase", "classid") {
						switch tag {
						case "applet", "embed", "object":
							// Plugin content (Java, Flash) runs code
							// with the page's origin; editors embed
							// video with iframes, not these.
							add(75, tag+" element loads plugin code")
						default:
							add(65, tag+" element with a source")
						}
					} else {
						add(40, tag+" element")
					}
				case "base":
					add(70, "base element")
				case "style", "textarea", "title", "noscript", "xmp", "noembed", "noframes", "plaintext":
					rawText = tag
				case "link":
					if hasAttr && tagAttrIs(string(raw), "rel", "import") {
						add(75, "link rel=import")
					}
				}
			}
			var (
				httpEquivRefresh bool
				animHref         bool
			)
			cuts := 0
			for hasAttr {
				var key, val []byte
				key, val, hasAttr = z.TagAttr()
				k := string(key)
				if wrapper && k == skipAttr {
					continue
				}
				a := attrJudge(st, tag, k, string(val))
				if a.conf > 0 {
					add(a.conf, a.reason)
				}
				if a.conf > 0 && a.conf < 75 && isHandler(k) && cuts < maxCuts {
					cuts++ // each look re-reads the tag: bounded per tag
					if c, why := cutHandler(st, string(raw), k); c > 0 {
						add(c, why)
					}
				}
				switch {
				case k == "http-equiv" && strings.EqualFold(strings.TrimSpace(string(val)), "refresh"):
					httpEquivRefresh = true
				case k == "attributename" && (strings.EqualFold(string(val), "href") || strings.EqualFold(string(val), "xlink:href") || hasPrefixFold(string(val), "on")):
					animHref = true
				}
			}
			if httpEquivRefresh || animHref {
				// second pass over the attributes is not possible with the
				// streaming tokenizer: re-tokenise this tag alone.
				if f, ok := tagSecondLook(st, string(raw), tag, httpEquivRefresh, animHref); ok {
					f.Start, f.End = start, end
					if f.Confidence > best.Confidence {
						best = f
					}
				}
			}
		}
	}
	return best, best.Confidence > 0
}

type attrVerdict struct {
	conf   int
	reason string
}

// urlAttrs are attributes whose value a browser loads or navigates to.
var urlAttrs = map[string]bool{
	"href": true, "src": true, "action": true, "formaction": true, "data": true, "xlink:href": true,
	"background": true, "poster": true, "dynsrc": true, "lowsrc": true, "codebase": true, "code": true,
	"archive": true, "cite": true, "longdesc": true, "usemap": true, "ping": true, "manifest": true,
	"icon": true, "profile": true, "classid": true, "srcset": true, "from": true, "to": true, "values": true,
	"by": true, "folder": true, "itemtype": true,
}

// attrJudge scores one attribute of a tag.
func attrJudge(st *state, tag, k, val string) attrVerdict {
	switch {
	case len(k) > 2 && k[0] == 'o' && k[1] == 'n' && isLetters(k[2:]):
		// event handler: its value is a script body
		r := scanJS(st, val)
		switch {
		case r.ev.score() >= 85 && validJS(val):
			return attrVerdict{95, "event handler " + k + ": " + r.ev.reason()}
		case r.ev >= evCall:
			return attrVerdict{75, "event handler " + k + " calls a function"}
		case jsAssigns(val) && validJS(val):
			// (new Image).src='//host/?'+x: a handler that writes a
			// property or variable does something; sanitised rich text
			// never carries a handler at all.
			return attrVerdict{75, "event handler " + k + " assigns"}
		case strings.TrimSpace(val) != "":
			// A handler on a real element of user input: sanitised rich
			// text never carries one, and a broken one still shows intent.
			return attrVerdict{65, "event handler " + k}
		}
		return attrVerdict{45, "event handler " + k}
	case urlAttrs[k]:
		scheme, rest, ok := scriptScheme(val)
		if !ok {
			return attrVerdict{}
		}
		if scheme == "javascript" {
			if r := scanJS(st, rest); r.ev.score() >= 60 {
				return attrVerdict{95, k + " attribute: javascript: URL: " + r.ev.reason()}
			}
			return attrVerdict{80, k + " attribute: javascript: URL"}
		}
		return attrVerdict{85, k + " attribute: " + scheme + ": URL"}
	case k == "srcdoc":
		if strings.ContainsAny(val, "<") {
			if f, ok := htmlFinding(st, val, 0, len(val), "", 0); ok {
				return attrVerdict{f.Confidence, "srcdoc document: " + f.Reason}
			}
			return attrVerdict{60, "srcdoc document"}
		}
	case k == "style":
		if cssScript(val) {
			return attrVerdict{80, "style attribute with script"}
		}
	}
	return attrVerdict{}
}

// tagSecondLook judges attributes that depend on each other: meta
// http-equiv=refresh content=…url=javascript:, SVG animate/set that
// rewrites href or an event handler.
func tagSecondLook(st *state, raw, tag string, refresh, anim bool) (detect.Finding, bool) {
	z := html.NewTokenizer(strings.NewReader(raw))
	if tt := z.Next(); tt != html.StartTagToken && tt != html.SelfClosingTagToken {
		return detect.Finding{}, false
	}
	_, more := z.TagName()
	for more {
		var key, val []byte
		key, val, more = z.TagAttr()
		k, v := string(key), string(val)
		switch {
		case refresh && k == "content":
			if i := strings.Index(strings.ToLower(v), "url="); i >= 0 {
				if s, _, ok := scriptScheme(strings.Trim(v[i+4:], `'" `)); ok {
					return detect.Finding{Detector: "xss/html", Confidence: 90, Reason: "meta refresh to a " + s + ": URL"}, true
				}
			}
		case anim && (k == "to" || k == "values" || k == "from"):
			if _, _, ok := scriptScheme(strings.TrimLeft(v, ";")); ok || mayCall(v) {
				return detect.Finding{Detector: "xss/html", Confidence: 90, Reason: tag + " animates a link or handler into script"}, true
			}
		}
	}
	return detect.Finding{}, false
}

// closesScript: a </script> end tag follows.
func closesScript(rest string) bool {
	return strings.Contains(strings.ToLower(rest), "</script")
}

// cssScript reports CSS that runs script in some browser: expression(),
// javascript: URLs (in url() or @import), -moz-binding, behavior:, after
// CSS escapes and comments are removed (@im\port'\ja\vasc\ript:…').
func cssScript(css string) bool {
	var b strings.Builder
	for i := 0; i < len(css) && b.Len() < 4096; i++ {
		c := css[i]
		switch {
		case c == '\\' && i+1 < len(css):
			// \XX hex escape or an escaped character
			j := i + 1
			v, n := 0, 0
			for j < len(css) && n < 6 && isHexByte(css[j]) {
				v = v*16 + hexNibble(css[j])
				j++
				n++
			}
			if n > 0 {
				if v < 0x80 {
					b.WriteByte(byte(v))
				}
				i = j - 1
				if i+1 < len(css) && css[i+1] == ' ' {
					i++
				}
				continue
			}
			if css[i+1] != '\n' {
				b.WriteByte(css[i+1])
			}
			i++
		case c == '/' && i+1 < len(css) && css[i+1] == '*':
			if end := strings.Index(css[i+2:], "*/"); end >= 0 {
				i += end + 3
			} else {
				i = len(css)
			}
		case c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
		default:
			b.WriteByte(c)
		}
	}
	l := strings.ToLower(b.String())
	return strings.Contains(l, "expression(") || strings.Contains(l, "javascript:") || strings.Contains(l, "vbscript:") ||
		strings.Contains(l, "-moz-binding") || strings.Contains(l, "behavior:") || strings.Contains(l, "behaviour:")
}

func isHexByte(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c|0x20 && c|0x20 <= 'f')
}

func hexNibble(c byte) int {
	if c <= '9' {
		return int(c - '0')
	}
	return int(c|0x20-'a') + 10
}

// unnest removes <script> and </script> (any case) once, as a filter that
// strips them does, turning <scr<script>ipt> into <script>.
func unnest(v string) (string, bool) {
	l := strings.ToLower(v)
	if !strings.Contains(l, "<scr<script>ipt") && !strings.Contains(l, "</scr</script>ipt") {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		switch {
		case strings.HasPrefix(l[i:], "<script>"):
			i += len("<script>")
		case strings.HasPrefix(l[i:], "</script>"):
			i += len("</script>")
		default:
			b.WriteByte(v[i])
			i++
		}
	}
	return b.String(), true
}

// tagHasAttr reports whether the raw start tag has one of the attributes.
func tagHasAttr(raw string, names ...string) bool {
	z := html.NewTokenizer(strings.NewReader(raw))
	z.Next()
	_, more := z.TagName()
	for more {
		var key []byte
		key, _, more = z.TagAttr()
		for _, n := range names {
			if string(key) == n {
				return true
			}
		}
	}
	return false
}

// tagAttrIs reports whether the raw start tag's attribute name has the
// value want (case-insensitive).
func tagAttrIs(raw, name, want string) bool {
	z := html.NewTokenizer(strings.NewReader(raw))
	z.Next()
	_, more := z.TagName()
	for more {
		var key, val []byte
		key, val, more = z.TagAttr()
		if string(key) == name && strings.EqualFold(strings.TrimSpace(string(val)), want) {
			return true
		}
	}
	return false
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, p string) bool {
	return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p)
}

// mayBreakAttr is the allocation-free pre-check for attribute breakouts:
// a quote or space followed later by an attribute that can run script.
func mayBreakAttr(v string) bool {
	q := strings.IndexAny(v, `"' /`)
	if q < 0 {
		return false
	}
	rest := v[q:]
	for i := 0; i+3 < len(rest); i++ {
		c := rest[i] | 0x20
		if (c == 'o' && rest[i+1]|0x20 == 'n') || c == 's' || c == 'h' || c == 'f' {
			// on…=, style=, src=/srcdoc=, href=, formaction=
			j := i
			for j < len(rest) && isAttrNameByte(rest[j]) {
				j++
			}
			k := j
			for k < len(rest) && (rest[k] == ' ' || rest[k] == '\t' || rest[k] == '\n') {
				k++
			}
			if k < len(rest) && rest[k] == '=' && j-i >= 3 {
				name := rest[i:j]
				val := strings.TrimLeft(rest[k+1:], " \t\n\"'`")
				scripty := len(val) > 0 && strings.IndexByte("jJvVdD&", val[0]) >= 0
				if (c == 'o' && isLettersFold(name[2:])) || strings.EqualFold(name, "style") || strings.EqualFold(name, "srcdoc") ||
					(scripty && (strings.EqualFold(name, "src") || strings.EqualFold(name, "href") || strings.EqualFold(name, "formaction"))) {
					if i == 0 || !isAttrNameByte(rest[i-1]) {
						return true
					}
				}
			}
			i = j
		}
	}
	return false
}

func isAttrNameByte(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '_' || c == ':'
}

func isLettersFold(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; !('a' <= c && c <= 'z') {
			return false
		}
	}
	return len(s) > 0
}

// attrBreakout places v inside an attribute value (double-quoted,
// single-quoted, unquoted) of a wrapper tag and judges the attributes the
// value adds.
func attrBreakout(st *state, v string) (detect.Finding, bool) {
	var best detect.Finding
	for _, w := range [...]struct{ open, close string }{
		{`<x a="`, `">`},
		{`<x a='`, `'>`},
		{`<x a=`, `>`},
	} {
		if w.open[len(w.open)-1] == '"' && strings.IndexByte(v, '"') < 0 {
			continue
		}
		if w.open[len(w.open)-1] == '\'' && strings.IndexByte(v, '\'') < 0 {
			continue
		}
		if w.open[len(w.open)-1] == '=' && !strings.ContainsAny(v, " \t\n/") {
			continue
		}
		doc := w.open + v + w.close
		f, ok := htmlFinding(st, doc, len(w.open), len(v), "a", 1)
		if ok && f.Confidence > best.Confidence {
			best = f
		}
	}
	if best.Confidence < 75 {
		// A breakout must add script that does something; an attribute
		// name alone ("OnSuccess=" in a systemd unit) is prose.
		return detect.Finding{}, false
	}
	if best.Detector == "xss/html" {
		best.Reason = "attribute breakout: " + best.Reason
	}
	return best, best.Confidence > 0
}

// jsAssigns reports an assignment operator in src: an '=' that is not
// part of ==, !=, <=, >= or =>.
func jsAssigns(src string) bool {
	for i := 0; i < len(src); i++ {
		if src[i] != '=' {
			continue
		}
		if i+1 < len(src) && (src[i+1] == '=' || src[i+1] == '>') {
			i++
			continue
		}
		if i > 0 && strings.IndexByte("=!<>", src[i-1]) >= 0 {
			continue
		}
		return i > 0
	}
	return false
}

// maxCuts bounds cutHandler's looks per tag.
const maxCuts = 2

func isHandler(k string) bool { return len(k) > 2 && k[0] == 'o' && k[1] == 'n' && isLetters(k[2:]) }

// cutHandler judges what an unquoted event handler was meant to hold:
// "onfocus=new Image().src='//x/?'+document.cookie" ends, for the
// tokenizer, at the first blank ("new"), and the rest becomes attribute
// names. The text from the handler's value to the end of the tag is read
// as script; when it reaches an execution or exfiltration sink, the
// intent is plain even though this copy would not run.
func cutHandler(st *state, raw, k string) (int, string) {
	i := indexFold(raw, k)
	if i < 0 {
		return 0, ""
	}
	rest := raw[i+len(k):]
	j := 0
	for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t' || rest[j] == '\n') {
		j++
	}
	if j >= len(rest) || rest[j] != '=' {
		return 0, ""
	}
	rest = strings.TrimLeft(rest[j+1:], " \t\n")
	if rest == "" || rest[0] == '"' || rest[0] == '\'' {
		return 0, "" // quoted: the tokenizer read the whole value
	}
	rest = strings.TrimSuffix(strings.TrimSuffix(rest, ">"), "/")
	if r := scanJS(st, rest); r.ev.score() >= 80 {
		return 78, "event handler " + k + " cut by a blank: " + r.ev.reason()
	}
	return 0, ""
}

// indexFold is strings.Index ignoring ASCII case, without allocating.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if hasPrefixFold(s[i:], sub) {
			return i
		}
	}
	return -1
}
