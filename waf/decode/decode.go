// Package decode turns one raw request value into the decodings an
// application might apply before using it, so that detectors judge what the
// application sees and not only what crossed the wire.
//
// Place in the request path: inside the waf stage, after the request's
// values have been extracted (arguments, names, path segments, cookies,
// headers, JSON/XML/multipart fields) and before the detectors of
// waf/detect run. Each value is examined in every plausible decoding (URL,
// %u, base64/base64url, HTML entities, JS/JSON escapes, UTF-7, JWT
// segments, JSON embedded in a parameter), recursively, bounded in depth,
// output bytes and number of variants. Every variant carries its chain
// ("base64 → url") so the audit record can say how the attack was hidden.
//
// The common case, a plain word, costs one byte scan and no allocation:
// a decoder runs only when its trigger bytes are present, and base64 is
// tried only on long, plausibly encoded tokens whose decoding is text.
package decode

import "strings"

// Step is one decoding applied to a value. Its string appears in audit
// records, so it never changes once released.
type Step uint8

// The decodings.
const (
	StepNone   Step = iota
	StepURL         // %XX (and '+' as space), applied once per step; double encoding is two steps
	StepURLU        // %uXXXX (IIS-style)
	StepBase64      // standard or URL alphabet, padded or not
	StepHTML        // HTML character references: named, decimal, hex, missing semicolons
	StepJS          // JS/JSON escapes: \uXXXX, \u{…}, \xNN, \NNN, \n…
	StepUTF7        // +ADw- style UTF-7
	StepJWT         // the header or payload segment of a JSON Web Token
	StepJSON        // a string (or key) inside JSON embedded in the value
)

var stepNames = [...]string{
	StepNone:   "none",
	StepURL:    "url",
	StepURLU:   "url_u",
	StepBase64: "base64",
	StepHTML:   "html",
	StepJS:     "js_escape",
	StepUTF7:   "utf7",
	StepJWT:    "jwt",
	StepJSON:   "json",
}

func (s Step) String() string {
	if int(s) < len(stepNames) {
		return stepNames[s]
	}
	return "unknown"
}

// MaxDepth is the deepest chain a variant can have. Four layers covers the
// real cases (base64 of a URL-encoded JSON of an escaped string); deeper
// nesting is rare enough that its cost is not worth paying on every value.
const MaxDepth = 4

// Chain is the sequence of decodings that produced a variant, first
// applied first. It is a value type so that building one never allocates.
type Chain struct {
	steps [MaxDepth]Step
	n     uint8
}

// Len is the number of steps.
func (c Chain) Len() int { return int(c.n) }

// At returns step i (0 is the first decoding applied).
func (c Chain) At(i int) Step { return c.steps[i] }

// Steps returns the steps as a new slice.
func (c Chain) Steps() []Step { return append([]Step(nil), c.steps[:c.n]...) }

// Then returns c followed by s; ok is false when the chain is full.
func (c Chain) Then(s Step) (Chain, bool) {
	if int(c.n) >= MaxDepth {
		return c, false
	}
	c.steps[c.n] = s
	c.n++
	return c, true
}

// Has reports whether s occurs in the chain.
func (c Chain) Has(s Step) bool {
	for i := 0; i < int(c.n); i++ {
		if c.steps[i] == s {
			return true
		}
	}
	return false
}

// String names the chain for audit records: "base64 → url"; "" for the
// raw value.
func (c Chain) String() string {
	if c.n == 0 {
		return ""
	}
	var b strings.Builder
	for i := 0; i < int(c.n); i++ {
		if i > 0 {
			b.WriteString(" → ")
		}
		b.WriteString(c.steps[i].String())
	}
	return b.String()
}

// Variant is one decoding of a raw value.
type Variant struct {
	Value string
	Chain Chain
	// Key is set for a variant that is the key (not the value) of an
	// embedded JSON object: detectors judge names differently.
	Key bool
}

// Limits bound the work done on one raw value. The zero value means the
// defaults.
type Limits struct {
	// MaxDepth caps the chain length (default and maximum MaxDepth).
	MaxDepth int
	// MaxVariants caps the number of variants returned, the raw value
	// included (default 16).
	MaxVariants int
	// MaxOutputFactor and MaxOutputSlack cap the total bytes of decoded
	// variants at factor*len(raw)+slack (defaults 4 and 256), so a value
	// costs at most a small multiple of its size whatever it contains.
	MaxOutputFactor int
	MaxOutputSlack  int
	// MinBase64 is the shortest token tried as base64, padding included
	// (default 8: "1 OR 1=1" encodes to 12 bytes, "admin' #" to 12; a
	// shorter token is an ordinary word far more often than an encoding,
	// and longer words fail the mixed-case and decodes-to-text checks).
	MinBase64 int
}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 || l.MaxDepth > MaxDepth {
		l.MaxDepth = MaxDepth
	}
	if l.MaxVariants <= 0 {
		l.MaxVariants = 16
	}
	if l.MaxOutputFactor <= 0 {
		l.MaxOutputFactor = 4
	}
	if l.MaxOutputSlack <= 0 {
		l.MaxOutputSlack = 256
	}
	if l.MinBase64 <= 0 {
		l.MinBase64 = 8
	}
	return l
}

// Decoder expands raw values into their variants. It is immutable and safe
// for concurrent use.
type Decoder struct {
	lim Limits
}

// New returns a Decoder with the given limits (zero fields take defaults).
func New(lim Limits) *Decoder {
	return &Decoder{lim: lim.withDefaults()}
}

// Limits returns the limits in force.
func (d *Decoder) Limits() Limits { return d.lim }

// emitter is the per-call state. It lives on the caller's stack.
type emitter struct {
	d      *Decoder
	dst    []Variant
	budget int // decoded bytes still allowed
	start  int // index in dst of this call's raw variant
}

func (e *emitter) full() bool { return len(e.dst)-e.start >= e.d.lim.MaxVariants }

// add records a decoded variant unless it is a duplicate or over budget.
// It reports whether the variant was added.
func (e *emitter) add(v string, c Chain, key bool) bool {
	if e.full() || len(v) > e.budget || v == "" {
		return false
	}
	for i := e.start; i < len(e.dst); i++ {
		if e.dst[i].Value == v {
			return false
		}
	}
	e.budget -= len(v)
	e.dst = append(e.dst, Variant{Value: v, Chain: c, Key: key})
	return true
}

// Append appends to dst the raw value (empty chain, always first) and each
// distinct decoded variant, breadth first, and returns the extended slice.
// Passing a reused dst[:0] makes the common case (nothing decodes)
// allocation-free.
func (d *Decoder) Append(dst []Variant, raw string) []Variant {
	if !d.mayDecode(raw) {
		return append(dst, Variant{Value: raw})
	}
	e := emitter{d: d, dst: dst, start: len(dst)}
	e.budget = d.lim.MaxOutputFactor*len(raw) + d.lim.MaxOutputSlack
	e.dst = append(e.dst, Variant{Value: raw})
	// Breadth first: variant i is expanded after all shallower ones, so a
	// full budget keeps the most direct decodings.
	for i := e.start; i < len(e.dst) && !e.full(); i++ {
		v := e.dst[i]
		if int(v.Chain.n) >= d.lim.MaxDepth {
			continue
		}
		d.expand(&e, v)
	}
	return e.dst
}

// mayDecode is the allocation-free pre-check: does any decoder's trigger
// appear in s? Most values are plain words or prose and stop here.
func (d *Decoder) mayDecode(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			if i+2 < len(s) && (isHex(s[i+1]) && isHex(s[i+2]) || s[i+1] == 'u' || s[i+1] == 'U') {
				return true
			}
		case '&':
			if i+1 < len(s) {
				if c := s[i+1]; c == '#' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
					return true
				}
			}
		case '\\':
			if i+1 < len(s) && strings.IndexByte(jsEscapeBytes, s[i+1]) >= 0 {
				return true
			}
		case '+':
			if i+3 < len(s) && b64val[s[i+1]] != 0xff && s[i+1] != '-' && strings.IndexByte(s[i+1:], '-') >= 0 {
				return true
			}
			if plusSpaced(s) {
				return true
			}
		case '{', '[':
			if strings.TrimLeft(s[:i], " \t\r\n") == "" {
				return true
			}
		case 'e':
			if i+2 < len(s) && s[i+1] == 'y' && s[i+2] == 'J' && strings.IndexByte(s[i:], '.') > 0 {
				return true
			}
		}
	}
	if len(s) >= d.lim.MinBase64 {
		return base64Candidate(s, d.lim.MinBase64)
	}
	return false
}

// Variants is Append on a fresh slice.
func (d *Decoder) Variants(raw string) []Variant { return d.Append(nil, raw) }

// expand applies every decoder whose trigger is present to v.
func (d *Decoder) expand(e *emitter, v Variant) {
	s := v.Value
	var hasPct, hasAmp, hasBackslash, hasPlus, hasBrace, hasDot bool
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			hasPct = true
		case '&':
			hasAmp = true
		case '\\':
			hasBackslash = true
		case '+':
			hasPlus = true
		case '{', '[':
			hasBrace = true
		case '.':
			hasDot = true
		}
	}
	next := func(st Step) (Chain, bool) { return v.Chain.Then(st) }
	if hasBrace {
		if c, ok := next(StepJSON); ok {
			embeddedJSON(s, e, c)
		}
	}
	if hasPct {
		if out, ok := urlDecode(s); ok {
			if c, ok := next(StepURL); ok {
				e.add(out, c, v.Key)
			}
		}
		if out, ok := urlUDecode(s); ok {
			if c, ok := next(StepURLU); ok {
				e.add(out, c, v.Key)
			}
		}
	}
	// Entities inside markup are text the browser displays (and the
	// tokenizer decodes attribute values itself): decoding them would
	// turn an escaped code sample into the markup it shows.
	if hasAmp && !hasMarkup(s) {
		if out, ok := htmlDecode(s); ok {
			if c, ok := next(StepHTML); ok {
				e.add(out, c, v.Key)
			}
		}
	}
	if hasBackslash {
		if out, ok := jsDecode(s); ok {
			if c, ok := next(StepJS); ok {
				e.add(out, c, v.Key)
			}
		}
	}
	if hasPlus && !hasPct && plusSpaced(s) {
		// A form-encoded value that reached us without its '+' decoded
		// (a path segment, a header): 1'+OR+'1'='1.
		if c, ok := next(StepURL); ok {
			e.add(strings.ReplaceAll(s, "+", " "), c, v.Key)
		}
	}
	if hasPlus {
		if out, ok := utf7Decode(s); ok {
			if c, ok := next(StepUTF7); ok {
				e.add(out, c, v.Key)
			}
		}
	}
	if hasDot && len(s) >= 2*d.lim.MinBase64 {
		if c, ok := next(StepJWT); ok {
			jwtSegments(s, func(seg string) bool {
				e.add(seg, c, v.Key)
				return !e.full()
			})
		}
	}
	if len(s) >= d.lim.MinBase64 {
		if out, ok := base64Decode(s, d.lim.MinBase64); ok {
			if c, ok := next(StepBase64); ok {
				e.add(out, c, v.Key)
			}
		}
	}
}

// plusSpaced: the value has no space but a '+' between two non-'+'
// bytes, as form encoding writes a space.
func plusSpaced(s string) bool {
	if strings.IndexByte(s, ' ') >= 0 {
		return false
	}
	for i := 1; i+1 < len(s); i++ {
		if s[i] == '+' && s[i-1] != '+' && s[i+1] != '+' && s[i+1] != '=' {
			return true
		}
	}
	return false
}

// hasMarkup reports whether s contains a tag start: '<' followed by a
// letter, '/' or '!'.
func hasMarkup(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '<' {
			c := s[i+1] | 0x20
			if ('a' <= c && c <= 'z') || s[i+1] == '/' || s[i+1] == '!' {
				return true
			}
		}
	}
	return false
}

// embeddedJSON yields the strings, numbers and keys of s when s is a JSON
// object or array (after optional whitespace).
func embeddedJSON(s string, e *emitter, c Chain) {
	t := strings.TrimLeft(s, " \t\r\n")
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return
	}
	w := Walker{MaxDepth: 32, MaxValues: e.d.lim.MaxVariants}
	// A malformed document still yields the values read before the
	// error: an attacker gains nothing by breaking the end.
	_ = w.Walk(t, func(_ []byte, val string, kind ValueKind) bool {
		e.add(val, c, kind == KindKey)
		return !e.full()
	})
}
