// Package traversal detects path traversal and file access: a value that,
// opened as a file path by the application, climbs out of the directory it
// is joined to, names a sensitive file by absolute path, or reaches a file
// through a stream wrapper (file://, php://filter, phar://, zip://…).
//
// Place in the request path: a detector of the waf stage, run on values
// that waf/decode has already decoded (URL, overlong UTF-8, entities…).
// What is specific to file paths stays here: the separators a file system
// or a normalising framework accepts ('/', '\', Unicode solidus forms,
// overlong '.' and '/' a lenient decoder leaves behind), the dot-segment
// forms that survive naive filters ("....//", "..;/", ".. "), Windows
// drive letters, alternate data streams and NUL truncation.
//
// The value is cut into path-like tokens; each token's segments are
// resolved like a file system would resolve them (a stack, bounded), and
// the resolved path is compared with the places attackers read (/etc,
// /proc/self, C:\Windows, .git, WEB-INF, .env, private keys…). A climb
// above the starting directory is structural evidence on its own; a
// sensitive name is weighed by whether the path is absolute or climbed,
// whether the value is the path itself or prose that mentions it, and
// where the value came from (the request path is routed by the
// application, so only climbs and exposure probes count there).
package traversal

import (
	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector finds path traversal and sensitive file access.
type Detector struct{}

// New returns the traversal detector.
func New() *Detector { return &Detector{} }

// Class reports detect.Traversal.
func (*Detector) Class() detect.Class { return detect.Traversal }

// Detect reports the strongest file-access finding in in.Value.
func (d *Detector) Detect(in detect.Input) (detect.Finding, bool) {
	var s scan
	return s.run(in)
}

// maxStack bounds the resolved path kept per token; deeper paths keep
// their last segments and lose the root anchor.
const maxStack = 24

type span struct{ start, end int }

// scan is the per-call state; it lives on the caller's stack.
type scan struct {
	v     string
	steps int // work counter, checked by the fuzz test

	best    detect.Finding
	found   bool
	prose   bool // the value has inner whitespace: words, not a path
	where   detect.Where
	wholeLo int // trimmed value bounds
	wholeHi int
	tailAt  int // start of the path after an empty segment, when judged
}

func (s *scan) report(conf int, reason string, start, end int) {
	if conf > 100 {
		conf = 100
	}
	if conf < 1 {
		return
	}
	if s.found && conf <= s.best.Confidence {
		return
	}
	s.found = true
	s.best = detect.Finding{
		Class:      detect.Traversal,
		Detector:   "traversal",
		Confidence: conf,
		Reason:     reason,
		Start:      start,
		End:        end,
	}
}

// delim ends a path token.
var delim = func() (t [256]bool) {
	for _, c := range []byte(" \t\r\n\f\v'\"`<>()[]{}|&=,*") {
		t[c] = true
	}
	return t
}()

// pathByte marks the bytes the segment walk must look at: separators,
// dots, NUL and the lead bytes of Unicode and overlong forms.
var pathByte = func() (t [256]bool) {
	for _, c := range []byte("/\\.\x00") {
		t[c] = true
	}
	for c := 0xc0; c < 0x100; c++ {
		t[c] = true
	}
	return t
}()

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func (s *scan) run(in detect.Input) (detect.Finding, bool) {
	v := in.Value
	s.v = v
	s.where = in.Where
	lo, hi := 0, len(v)
	for lo < hi && isSpace(v[lo]) {
		lo++
	}
	for hi > lo && isSpace(v[hi-1]) {
		hi--
	}
	s.wholeLo, s.wholeHi = lo, hi
	// Pre-filter, one pass: a climb (".."), NUL, non-ASCII (Unicode or
	// overlong forms), a colon (wrappers, drive letters), a token or
	// segment starting with a separator, '~' or '.' (absolute paths,
	// dot-files). Prose without any of them is done; a single token
	// without them can still name a sensitive file ("wp-config.php").
	evidence := false
	tokenStart := true
	for i := lo; i < hi; i++ {
		c := v[i]
		switch {
		case c == '.':
			if tokenStart || (i > lo && (v[i-1] == '.' || v[i-1] == '/' || v[i-1] == '\\')) {
				evidence = true
			}
		case c == 0 || c >= 0x80:
			evidence = true
		case c == ':':
			// "php://", "file:/", "C:\": a scheme or drive letter
			// before a separator; plain http(s) URLs are not evidence.
			if i+1 < hi && (v[i+1] == '/' || v[i+1] == '\\') && !httpScheme(v, lo, i) {
				evidence = true
			}
		case c == '/' || c == '\\' || c == '~':
			if tokenStart {
				evidence = true
			}
		case isSpace(c):
			if ok, runEnd := glued(v, i, hi); ok {
				i = runEnd - 1
			} else {
				s.prose = true
			}
		}
		tokenStart = delim[c]
	}
	s.steps += len(v)
	if !evidence && (s.prose || hi == lo) {
		return detect.Finding{}, false
	}
	for i := lo; i < hi; {
		s.steps++
		if delim[v[i]] {
			i++
			continue
		}
		j := i
		semi := false
		for j < hi {
			c := v[j]
			if !delim[c] {
				// A servlet path parameter ("..;jsessionid=1/")
				// carries '=' inside its segment.
				if c == ';' {
					semi = true
				} else if c == '/' || c == '\\' {
					semi = false
				}
				j++
				continue
			}
			if c == '=' && semi {
				j++
				continue
			}
			if c != ' ' {
				break
			}
			ok, runEnd := glued(v, j, hi)
			if !ok {
				break
			}
			j = runEnd
		}
		s.steps += j - i
		s.token(i, j)
		i = j
	}
	if s.where == detect.WherePath && !s.prose {
		// "/files//etc/shadow", "/page/%2Fetc%2Fpasswd" decoded: an
		// empty segment, then an absolute path. A route that takes the
		// rest of the path as a file name ("/files/*name") hands the
		// application "/etc/shadow", and joining an absolute path to a
		// base directory yields the absolute path.
		// The empty segment follows a segment: a leading "//" is the
		// request path itself, weighed as the path above.
		for k := lo + 2; k+1 < hi; k++ {
			s.steps++
			if v[k] == '/' && v[k-1] == '/' {
				s.tailAt = k
				s.token(k, hi)
				break
			}
		}
	}
	if !s.found {
		return detect.Finding{}, false
	}
	return s.best, true
}

// sepLen reports whether v[i:] starts with a path separator, and its
// length: '/' and '\', the Unicode solidus forms a normalising framework
// folds to them, and the overlong encodings a lenient UTF-8 decoder turns
// into them. evasive is true for anything but a plain '/'.
func sepLen(v string, i int) (n int, evasive bool) {
	c := v[i]
	switch {
	case c == '/':
		return 1, false
	case c == '\\':
		return 1, true
	case c < 0x80:
		return 0, false
	}
	if i+1 < len(v) {
		switch v[i : i+2] {
		case "\xc0\xaf", "\xc1\x9c": // overlong '/', '\'
			return 2, true
		case "\xc0/", "\xc0\\", "\xc1/", "\xc1\\":
			// A lead byte that never starts valid UTF-8, before an ASCII
			// separator: decoders that drop invalid bytes, or that mask
			// the continuation byte's bits, leave the separator.
			return 2, true
		}
	}
	if i+2 < len(v) {
		switch v[i : i+3] {
		case "\xef\xbc\x8f", // U+FF0F fullwidth solidus
			"\xe2\x88\x95", // U+2215 division slash
			"\xe2\x81\x84", // U+2044 fraction slash
			"\xef\xbc\xbc", // U+FF3C fullwidth reverse solidus
			"\xef\xb9\xa8", // U+FE68 small reverse solidus
			"\xe2\x88\x96", // U+2216 set minus (Windows best-fit maps it to '\')
			"\xe0\x80\xaf": // overlong '/'
			return 3, true
		}
	}
	return 0, false
}

// dotLen reports whether v[i:] starts with a full stop form and how many
// dots it stands for: '.', U+FF0E, U+2024, U+FE52, U+2025 (two dots) and
// overlong '.'.
func dotLen(v string, i int) (n, dots int, evasive bool) {
	c := v[i]
	if c == '.' {
		return 1, 1, false
	}
	if c < 0x80 {
		return 0, 0, false
	}
	if i+1 < len(v) && (v[i:i+2] == "\xc0\xae" || (v[i] == 0xc0 || v[i] == 0xc1) && v[i+1] == '.') {
		// Overlong '.', or an invalid lead byte before '.' ("%c0%2e"):
		// a decoder that masks the continuation bits reads '.', one
		// that drops invalid bytes keeps the '.'.
		return 2, 1, true
	}
	if i+2 < len(v) {
		switch v[i : i+3] {
		case "\xef\xbc\x8e", "\xe2\x80\xa4", "\xef\xb9\x92", "\xe0\x80\xae":
			return 3, 1, true
		case "\xe2\x80\xa5":
			return 3, 2, true
		}
	}
	return 0, 0, false
}

// tokenState is what walking one token's segments found.
type tokenState struct {
	stack    [maxStack]span
	depth    int
	lost     bool // stack overflowed: the root anchor is unknown
	climbs   int  // dot-dot segments
	escaped  int  // deepest climb above the starting directory
	evasive  bool // a climb in a form only filters see differently
	firstDot int  // start of the first climb
	absolute bool
	nul      int  // position of a NUL in the token, or -1
	tail     int  // stack depth right after the last climb
	dots     int  // "." segments
	drive    bool // the value starts with a drive letter ("C:\…")
	// rootedTail: the token is the absolute path after an empty
	// segment of a request path ("/files//etc/shadow").
	rootedTail bool
}

func (s *scan) token(start, end int) {
	v := s.v
	// Stream wrappers and file: URLs, at the start of the token or of
	// any of its segments ("/download/php://filter/…").
	for k := start; k < end; k++ {
		if k > start && v[k-1] != '/' && v[k-1] != '\\' {
			continue
		}
		if !isLetter(v[k]) {
			continue
		}
		w, conf, ok := wrapper(v[k:end])
		if !ok {
			continue
		}
		s.steps += len(w)
		var ts tokenState
		s.walk(&ts, k+len(w), end)
		if sev, _ := s.sensitive(&ts, true, 0); sev > 0 {
			conf += 10 * sev
		}
		if s.prose {
			conf -= 35
		}
		s.report(conf, "stream wrapper or file URL names a file", k, end)
		break
	}
	tok := v[start:end]
	var ts tokenState
	ts.nul = -1
	i := start
	// Absolute forms: "/x", "\x", "C:\x", "C:/x", "\\host\share", "~/x".
	switch {
	case tok[0] == '/' || tok[0] == '\\':
		ts.absolute = true
		ts.rootedTail = s.tailAt > 0 && start == s.tailAt
	case len(tok) >= 3 && isLetter(tok[0]) && tok[1] == ':' && (tok[2] == '/' || tok[2] == '\\'):
		ts.absolute = true
		ts.drive = start == s.wholeLo
		i += 2
	case len(tok) >= 2 && tok[0] == '~' && (tok[1] == '/' || tok[1] == '\\'):
		ts.absolute = true
		i++
	}
	unc := len(tok) > 3 && tok[0] == '\\' && tok[1] == '\\' && tok[2] != '\\' && tok[2] != '?' && tok[2] != '.'
	s.walk(&ts, i, end)
	whole := start == s.wholeLo && end == s.wholeHi

	if ts.climbs == 0 && !ts.absolute && ts.nul < 0 {
		// A relative path that stays where it is: a sensitive name
		// worth opening on its own ("wp-config.php", ".env",
		// ".git/config"), or a system path behind dot segments and
		// mixed separators ("./\\/././etc/passwd").
		sev, app := s.sensitive(&ts, false, 0)
		if sev > 0 && app {
			conf := 35 + 20*sev // 55 medium, 75 high
			if !whole {
				conf -= 15
			}
			if s.prose {
				conf -= 30
			}
			s.report(conf, "names a sensitive file", start, end)
		}
		if ts.dots > 0 || ts.evasive {
			if sys, _ := s.sensitive(&ts, true, 0); sys > 0 && !s.prose {
				s.report(50+10*sys, "dot segments and mixed separators around a system path", start, end)
			}
		}
		return
	}

	// The target is judged from the root: the whole path when it is
	// absolute or climbs above its start, and in any case what follows
	// the last dot-dot segment ("/var/www/html/../../proc/self/environ":
	// the attacker counted levels; the path after them is the aim).
	sev, app := s.sensitive(&ts, ts.absolute || ts.escaped > 0, 0)
	if ts.climbs > 0 && ts.tail < ts.depth {
		if t, tapp := s.sensitive(&ts, true, ts.tail); t > sev {
			sev, app = t, tapp
		}
	}
	conf := 0
	reason := ""
	evStart := start
	switch {
	case ts.climbs > 0:
		evStart = ts.firstDot
		switch {
		case ts.climbs == 1:
			conf = 30
		case ts.climbs == 2:
			conf = 55
		default:
			conf = 70
		}
		if ts.escaped > 0 {
			conf += 15
		}
		r := 0
		if ts.evasive {
			conf += 25
			r |= 1
		}
		if sev > 0 {
			conf += 15 + 15*sev
			r |= 2
		}
		if ts.nul >= 0 {
			conf += 15
			r |= 4
		}
		reason = climbReasons[r]
		switch s.where {
		case detect.WherePath, detect.WhereFileName:
			// Browsers resolve dot segments before sending a path
			// and send only a base name as an upload's file name.
			conf = max(conf, 80)
		}
		if !whole {
			conf -= 5
		}
		if s.prose {
			conf -= 30
		}
	case ts.absolute && sev > 0:
		reason = "absolute path to a sensitive file"
		conf = 50 + 15*sev // 65 medium, 80 high
		if ts.nul >= 0 {
			conf += 10
			reason = "absolute path to a sensitive file, NUL truncation"
		}
		if s.where == detect.WhereFileName {
			// Browsers send an upload's base name only: an absolute
			// path there names where the file is to be written.
			conf = max(conf, 80)
		}
		if s.where == detect.WherePath {
			// The router serves the request path: a system file there
			// is a probe the application answers with a 404, an
			// exposed application secret (".env", ".git/") is not.
			// A path segment that is a drive-letter path is not: no
			// route is named "C:\…", and a file API handed the
			// segment opens the absolute path it names.
			switch {
			case ts.drive || ts.rootedTail:
			case app:
				conf = min(conf, 75)
			default:
				conf = min(conf, 35)
			}
		}
		if s.prose {
			conf = min(conf, 85) - 50
		}
	case unc:
		reason = "UNC path to a network share"
		conf = 45
		if s.prose {
			conf -= 30
		}
	}
	if ts.nul >= 0 && conf < 70 {
		// "page.php\x00.jpg": a NUL cuts the extension an application
		// appended or checked. Binary data has NULs too: the part
		// before it must be a short printable path.
		pre := v[start:ts.nul]
		if hasPathShape(pre) && printable(pre) && len(pre) <= 256 {
			nc := 75
			if s.prose {
				nc = 40
			}
			if nc > conf {
				conf = nc
				reason = "NUL byte truncates a file name"
			}
		}
	}
	if conf > 0 {
		s.report(conf, reason, evStart, end)
	}
}

// glued reports whether the run of spaces starting at v[i] belongs to a
// dot-dot segment padded with spaces, which Windows strips (".. /.. /"):
// ".." before it and a separator after it. It returns the end of the run;
// callers skip the run, so each space is looked at once.
func glued(v string, i, hi int) (bool, int) {
	b := i
	for b < hi && v[b] == ' ' {
		b++
	}
	if i < 2 || v[i-1] != '.' || v[i-2] != '.' {
		return false, b
	}
	return b < hi && (v[b] == '/' || v[b] == '\\'), b
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

var climbReasons = [8]string{
	"dot-dot segments climb above the starting directory",
	"dot-dot segments in a filter-evading form climb above the starting directory",
	"dot-dot segments climb above the starting directory to a sensitive file",
	"dot-dot segments in a filter-evading form climb above the starting directory to a sensitive file",
	"dot-dot segments climb above the starting directory, NUL truncation",
	"dot-dot segments in a filter-evading form climb above the starting directory, NUL truncation",
	"dot-dot segments climb above the starting directory to a sensitive file, NUL truncation",
	"dot-dot segments in a filter-evading form climb above the starting directory to a sensitive file, NUL truncation",
}

// httpScheme reports whether v[lo:colon] ends with a token "http" or
// "https".
func httpScheme(v string, lo, colon int) bool {
	a := colon
	for a > lo && colon-a < 6 && isLetter(v[a-1]) {
		a--
	}
	if a > lo && !delim[v[a-1]] {
		return false
	}
	switch colon - a {
	case 4:
		return v[a]|0x20 == 'h' && v[a+1]|0x20 == 't' && v[a+2]|0x20 == 't' && v[a+3]|0x20 == 'p'
	case 5:
		return v[a]|0x20 == 'h' && v[a+1]|0x20 == 't' && v[a+2]|0x20 == 't' && v[a+3]|0x20 == 'p' && v[a+4]|0x20 == 's'
	}
	return false
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func hasPathShape(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == '\\' || s[i] == '.' {
			return true
		}
	}
	return false
}

// walk resolves the segments of v[i:end] into ts.
func (s *scan) walk(ts *tokenState, i, end int) {
	v := s.v
	segStart := i
	sepBefore := false
	for i <= end {
		s.steps++
		n := 0
		evasiveSep := false
		if i < end {
			if !pathByte[v[i]] {
				i++
				continue
			}
			if v[i] == 0 && ts.nul < 0 {
				ts.nul = i
			}
			n, evasiveSep = sepLen(v, i)
			if n == 0 {
				// Skip a whole rune of a multi-byte dot form.
				if _, _, ev := dotLen(v, i); ev {
					i += dotStep(v, i)
					continue
				}
				i++
				continue
			}
		}
		s.segment(ts, segStart, i, sepBefore || n > 0, evasiveSep)
		if i == end {
			break
		}
		sepBefore = true
		i += n
		segStart = i
	}
}

func dotStep(v string, i int) int {
	n, _, _ := dotLen(v, i)
	if n == 0 {
		return 1
	}
	return n
}

// segment classifies v[a:b] and updates the resolved stack.
func (s *scan) segment(ts *tokenState, a, b int, bySep, evasiveSep bool) {
	v := s.v
	if a == b {
		return
	}
	// Dots-only segment, possibly followed by what a file system or a
	// servlet container ignores: ";params", NUL, trailing spaces.
	dots := 0
	evasive := evasiveSep
	i := a
	for i < b && v[i] == 0 {
		i++ // "\x00../": a C string ends there, a filter sees junk
		evasive = true
	}
	for i < b {
		n, d, ev := dotLen(v, i)
		if n == 0 {
			break
		}
		dots += d
		evasive = evasive || ev
		i += n
		s.steps++
	}
	if dots >= 2 && bySep {
		rest := i
		trailingOK := true
		for j := rest; j < b; j++ {
			c := v[j]
			if c == ';' || c == 0 || c == '?' || c == '#' {
				if c == ';' {
					evasive = true
				}
				break
			}
			if c != ' ' {
				trailingOK = false
				break
			}
			evasive = true
		}
		if trailingOK {
			if dots > 2 {
				evasive = true // "....//" and "..././" survive a strip of "../"
			}
			if ts.climbs == 0 {
				ts.firstDot = a
			}
			ts.climbs++
			ts.evasive = ts.evasive || evasive
			if ts.depth > 0 {
				ts.depth--
			} else {
				ts.escaped++
			}
			ts.tail = ts.depth
			return
		}
	}
	if dots == 1 && i == b {
		ts.dots++
		return // "."
	}
	if ts.depth == maxStack {
		copy(ts.stack[:], ts.stack[1:])
		ts.depth--
		ts.lost = true
	}
	ts.stack[ts.depth] = span{a, b}
	ts.depth++
}

// name returns segment sp lower-cased into buf, cut at what a file system
// or framework ignores (";params", "?", "#", NUL, "::$DATA", trailing
// dots and spaces); ok is false for names too long to be interesting.
func (s *scan) name(sp span, buf *[40]byte) ([]byte, bool) {
	v := s.v
	n := 0
	for i := sp.start; i < sp.end; i++ {
		c := v[i]
		if c == ';' || c == '?' || c == '#' || c == 0 || (c == ':' && i > sp.start+1) {
			break
		}
		if n == len(buf) {
			return nil, false
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	for n > 0 && (buf[n-1] == ' ' || buf[n-1] == '.') {
		allDots := true
		for _, c := range buf[:n] {
			if c != '.' {
				allDots = false
				break
			}
		}
		if allDots {
			break
		}
		n--
	}
	s.steps += sp.end - sp.start
	return buf[:n], true
}

// sensitive rates the resolved path of ts: 2 for files attackers read
// for secrets or code, 1 for system locations, 0 otherwise. anchored says
// the path starts at the root (absolute, or climbed above the start). app
// is true when the rating comes from an application secret found
// anywhere in the path (".git/", "WEB-INF/", ".env"), not from a system
// location under the root.
func (s *scan) sensitive(ts *tokenState, anchored bool, from int) (sev int, app bool) {
	if ts.depth <= from {
		return 0, false
	}
	var b0, b1, b2 [40]byte
	if anchored && (!ts.lost || from > 0) {
		n0, ok0 := s.name(ts.stack[from], &b0)
		var n1, n2 []byte
		ok1, ok2 := false, false
		if ts.depth > from+1 {
			n1, ok1 = s.name(ts.stack[from+1], &b1)
		}
		if ts.depth > from+2 {
			n2, ok2 = s.name(ts.stack[from+2], &b2)
		}
		if ok0 {
			sev = anchoredRoot(string(n0), n1, ok1, n2, ok2, ts.depth-from)
		}
	}
	// Unanchored: sensitive directories anywhere, sensitive names last.
	for k := from; k < ts.depth; k++ {
		last := k == ts.depth-1
		if !last {
			// Sensitive directory names start with '.', 'w' (web-inf)
			// or 'm' (meta-inf); skip the rest without a copy.
			switch s.v[ts.stack[k].start] | 0x20 {
			case '.', 'w', 'm':
			default:
				continue
			}
		}
		nm, ok := s.name(ts.stack[k], &b0)
		if !ok {
			continue
		}
		if d := dirSeverity(string(nm)); d > 0 {
			if last {
				d = 1 // the directory itself: a listing probe
			}
			if d > sev || (d == sev && !app) {
				sev, app = d, true
			}
		}
		if last {
			f := fileSeverity(string(nm))
			if f > sev || (f > 0 && f == sev && !app) {
				sev, app = f, true
			}
			if f == 0 && anchored && s.where != detect.WherePath {
				// Plain words ("passwd", "shadow", "sam") are file
				// names only in a path from the root.
				if p := plainFileSeverity(string(nm)); p > sev {
					sev, app = p, false
				}
			}
		}
	}
	return sev, app
}

// anchoredRoot rates a root-anchored path from its first segments.
func anchoredRoot(n0 string, n1 []byte, ok1 bool, n2 []byte, ok2 bool, depth int) int {
	switch n0 {
	case "etc":
		if !ok1 {
			return 0
		}
		switch string(n1) {
		case "passwd", "shadow", "gshadow", "master.passwd", "sudoers", "group",
			"security", "ssh", "ssl", "kubernetes", "pki", "mysql", "postgresql",
			// What file-inclusion probes read to prove the bug.
			"hosts", "hostname", "issue", "os-release", "lsb-release", "motd", "crontab",
			"fstab", "environment", "profile", "bashrc", "resolv.conf", "netplan", "nginx", "apache2", "httpd":
			return 2
		}
		return 1
	case "proc":
		if !ok1 {
			return 1
		}
		if ok2 {
			switch string(n2) {
			case "environ", "cmdline", "maps", "mem", "fd", "cwd", "root", "exe", "mountinfo", "status", "auxv", "stack":
				return 2
			}
		}
		return 1
	case "var":
		if !ok1 || depth < 3 {
			return 0 // "/var/log": a directory, not a file
		}
		switch string(n1) {
		case "log":
			return 2 // log files: poisoned, then included
		case "mail", "spool", "lib", "backups":
			return 1
		case "run":
			if ok2 && string(n2) == "secrets" {
				return 2
			}
			return 1
		case "www":
			return 1
		}
		return 0
	case "root":
		if depth > 1 {
			return 2
		}
		return 1
	case "sys", "boot":
		if depth > 1 {
			return 1
		}
		return 0
	case "dev":
		if ok1 {
			switch string(n1) {
			case "tcp", "udp", "fd", "mem", "kmem", "stdin":
				return 1
			}
		}
		return 0
	case "windows", "winnt":
		if !ok1 {
			return 0
		}
		switch string(n1) {
		case "win.ini", "system.ini", "repair", "panther", "debug":
			return 2
		case "system32", "syswow64":
			if depth > 3 {
				return 2 // drivers\etc\hosts, config\SAM
			}
		}
		return 1
	case "boot.ini", "inetpub":
		return 2
	case "usr":
		if ok1 && string(n1) == "local" && ok2 && string(n2) == "etc" {
			return 1
		}
		return 0
	case "home", "users":
		return 0 // only sensitive directories under a home count (unanchored)
	}
	return 0
}

// dirSeverity rates a directory name wherever it appears in a path.
func dirSeverity(n string) int {
	switch n {
	case ".git", ".svn", ".hg", ".bzr", "web-inf", "meta-inf", ".ssh", ".aws", ".gnupg", ".docker", ".kube", ".azure", ".gcloud":
		return 2
	}
	return 0
}

// fileSeverity rates the last name of a path.
func fileSeverity(n string) int {
	switch n {
	case ".env", ".htaccess", ".htpasswd", ".htdigest", ".bash_history", ".zsh_history",
		".mysql_history", ".psql_history", ".npmrc", ".pypirc", ".pgpass", ".netrc",
		".git-credentials", ".gitconfig", "wp-config.php", "web.config", "win.ini", "boot.ini",
		"tomcat-users.xml", "ntds.dit", "master.key", "credentials.xml", "localsettings.php",
		"configuration.php", "config.inc.php", "secrets.yml", ".ds_store", "php.ini",
		"httpd.conf", "nginx.conf", "my.cnf":
		return 2
	case "web.xml", "server.xml", "appsettings.json", "settings.php", "database.yml":
		return 1
	}
	// ".env.local", ".env.production", "wp-config.php.bak", "wp-config.php~".
	if len(n) > 5 && n[:5] == ".env." {
		return 2
	}
	if len(n) > 13 && n[:13] == "wp-config.php" {
		return 2
	}
	return 0
}

// plainFileSeverity rates last names that are ordinary words or have no
// extension, which count only under a directory.
func plainFileSeverity(n string) int {
	switch n {
	case "passwd", "shadow", "sam", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "authorized_keys", "credentials":
		return 2
	}
	return 0
}

// wrapper reports a stream wrapper or file URL at the start of tok: the
// wrapper text and its base confidence.
func wrapper(tok string) (string, int, bool) {
	colon := -1
	for i := 0; i < len(tok) && i < 20; i++ {
		if tok[i] == ':' {
			colon = i
			break
		}
	}
	if colon < 3 {
		return "", 0, false
	}
	var buf [20]byte
	for i := 0; i < colon; i++ {
		c := tok[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	scheme := string(buf[:colon])
	rest := tok[colon+1:]
	slashes := len(rest) >= 2 && rest[0] == '/' && rest[1] == '/'
	switch scheme {
	case "file":
		if len(rest) > 0 && (rest[0] == '/' || rest[0] == '\\' || (len(rest) > 1 && rest[1] == ':')) {
			return tok[:colon+1], 75, true
		}
	case "php":
		if slashes {
			return tok[:colon+3], 90, true
		}
	case "phar", "zip", "rar", "ogg", "glob", "expect", "compress.zlib", "compress.bzip2", "ssh2.exec", "ssh2.shell", "ssh2.sftp":
		if slashes {
			return tok[:colon+3], 85, true
		}
	case "data":
		// PHP's data:// wrapper (with slashes) runs code when included;
		// plain data: URIs are images in ordinary forms.
		if slashes {
			return tok[:colon+3], 75, true
		}
	case "jar", "netdoc":
		if len(rest) > 4 {
			return tok[:colon+1], 75, true
		}
	}
	return "", 0, false
}
