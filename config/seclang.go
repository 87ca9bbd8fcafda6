package config

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
)

// Custom SecLang (rules_before, rules_after, inline or in files) is checked
// here, piece by piece, so that `portcullis check` and a reload report every
// broken rule with the file and line it is written on, like every other
// configuration problem. Coraza stops at the first error of a document and
// names no line, so each piece is compiled on its own (a few milliseconds:
// the CRS is not loaded), the failing directive is found by compiling ever
// longer prefixes, and it is replaced by a harmless stand-in to look for the
// next one. What only the whole rule set can show (an id the CRS already
// uses) is still found when the rule sets are compiled.

// maxRuleErrors bounds the errors reported for one piece of SecLang.
const maxRuleErrors = 50

// ruleCheck is one piece of custom SecLang to check, with where it is.
type ruleCheck struct {
	origin string // RuleText.Origin of the piece
	field  string // sites[0].waf.rules_before[1].inline
	file   string // the file named in errors: the config file or the rule file
	line   int    // line in file of the text's first line
	exact  bool   // text line k is file line line+k-1 (false: every error at line)
	text   string
}

// seclangError is one broken directive: line is 1-based within the piece.
type seclangError struct {
	line int
	msg  string
}

var (
	ruleIDPattern   = regexp.MustCompile(`(?i)\bid\s*:\s*'?(\d+)`)
	notFoundPattern = regexp.MustCompile(`rule "(\d+)" not found`)
	removeByID      = regexp.MustCompile(`(?im)^\s*SecRuleRemoveById\s+([0-9 ,\t-]+)$`)
	chainAction     = regexp.MustCompile(`(?i)(^|[",'\s])chain\s*($|[",'])`)

	crsIDsOnce sync.Once
	crsIDs     map[int]bool
)

// knownRuleIDs are the ids of the embedded CRS and of Portcullis's own
// engine rules: a custom piece may update or remove them
// (SecRuleUpdateTargetById), which compiled alone reads as "not found".
func knownRuleIDs() map[int]bool {
	crsIDsOnce.Do(func() {
		crsIDs = map[int]bool{}
		for id := 200000; id <= 200011; id++ {
			crsIDs[id] = true
		}
		crsIDs[200013] = true // rules.ParsedTypeLimitID
		files, _ := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
		for _, f := range files {
			data, err := fs.ReadFile(coreruleset.FS, f)
			if err != nil {
				continue
			}
			for _, id := range ruleIDs(string(data)) {
				crsIDs[id] = true
			}
		}
	})
	return crsIDs
}

func ruleIDs(text string) []int {
	var out []int
	for _, m := range ruleIDPattern.FindAllStringSubmatch(text, -1) {
		if n, err := strconv.Atoi(m[1]); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// checkRules reports every broken directive of every custom piece, and
// every custom rule id that a route loading the CRS would load twice.
func (c *checker) checkRules(cfg *Config) {
	if len(c.ruleChecks) == 0 {
		return
	}
	known := map[int]bool{}
	for id := range knownRuleIDs() {
		known[id] = true
	}
	for _, rc := range c.ruleChecks {
		for _, id := range ruleIDs(rc.text) {
			known[id] = true
		}
	}
	withCRS := map[string]bool{} // fields of pieces some route loads with the CRS
	for _, sc := range cfg.Sites {
		for _, r := range sc.Routes {
			if !r.WAF.CRS {
				continue
			}
			for _, rt := range append(slices.Clone(r.WAF.RulesBefore), r.WAF.RulesAfter...) {
				withCRS[rt.Origin] = true
			}
		}
	}
	// A rule after the CRS may take the id of a CRS rule removed before it
	// (SecRuleRemoveById, or an exclusion without conditions): a replacement.
	removed := map[int]bool{}
	for _, rc := range c.ruleChecks {
		for _, m := range removeByID.FindAllStringSubmatch(rc.text, -1) {
			for _, f := range strings.Fields(m[1]) {
				for _, part := range strings.Split(f, ",") {
					if r, err := parseIDRange(part); err == nil && r.To-r.From < 1_000_000 {
						for id := r.From; id <= r.To; id++ {
							removed[id] = true
						}
					}
				}
			}
		}
	}
	for _, sc := range cfg.Sites {
		for _, r := range sc.Routes {
			for _, ex := range r.WAF.Exclusions {
				if ex.Target == "" && ex.PathPrefix == "" && len(ex.Methods) == 0 {
					for _, ir := range ex.RuleIDs {
						for id := ir.From; id <= ir.To && id-ir.From < 1_000_000; id++ {
							removed[id] = true
						}
					}
				}
			}
		}
	}
	crs := knownRuleIDs()
	// Two pieces one route loads together must not define the same id
	// (a site's rule and a route's, say): reported at the later piece.
	fields := map[string]string{}
	for _, rc := range c.ruleChecks {
		fields[rc.origin] = rc.field
	}
	texts := map[string]string{}
	for _, rc := range c.ruleChecks {
		texts[rc.origin] = rc.text
	}
	dupes := map[string][]seclangError{}
	reported := map[string]bool{}
	for _, sc := range cfg.Sites {
		for _, r := range sc.Routes {
			owner := map[int]string{}
			for _, rt := range append(slices.Clone(r.WAF.RulesBefore), r.WAF.RulesAfter...) {
				text, ok := texts[rt.Origin]
				if !ok {
					continue
				}
				for i, line := range strings.Split(text, "\n") {
					if strings.HasPrefix(strings.TrimSpace(line), "#") {
						continue
					}
					for _, id := range ruleIDs(line) {
						first, seen := owner[id]
						if !seen {
							owner[id] = rt.Origin
							continue
						}
						key := fmt.Sprintf("%s\x00%d", rt.Origin, id)
						if first == rt.Origin || reported[key] {
							continue // within one piece the piece's own check reports it
						}
						reported[key] = true
						dupes[rt.Origin] = append(dupes[rt.Origin], seclangError{i + 1, fmt.Sprintf("rule id %d is also defined in %s, which the same route loads", id, fields[first])})
					}
				}
			}
		}
	}
	for _, rc := range c.ruleChecks {
		errs := seclangErrors(rc.text, known)
		if withCRS[rc.origin] {
			after := strings.Contains(rc.field, ".rules_after[") || strings.HasPrefix(rc.field, "rules_after[")
			errs = append(errs, crsIDClashes(rc.text, crs, removed, after)...)
		}
		errs = append(errs, dupes[rc.origin]...)
		slices.SortStableFunc(errs, func(a, b seclangError) int { return a.line - b.line })
		for _, e := range errs {
			line := rc.line
			if rc.exact {
				line += e.line - 1
			}
			fe := &FieldError{File: rc.file, Line: line, Path: rc.field, Msg: e.msg}
			if rc.file != c.file {
				fe.order = c.lineOf(rc.field) // listed where the file is named
			}
			c.errs = append(c.errs, fe)
		}
	}
}

// crsIDClashes reports rules whose id the CRS already uses (the whole rule
// set would not compile).
func crsIDClashes(text string, crs, removed map[int]bool, afterCRS bool) []seclangError {
	var out []seclangError
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, id := range ruleIDs(line) {
			if afterCRS && removed[id] {
				continue
			}
			if crs[id] && (id < 200000 || id > 200013) {
				out = append(out, seclangError{i + 1, fmt.Sprintf("rule id %d is already used by the CRS (which owns 900000-999999); pick another id", id)})
			} else if crs[id] {
				out = append(out, seclangError{i + 1, fmt.Sprintf("rule id %d is used by Portcullis's engine rules (200000-200011, 200013); pick another id", id)})
			}
		}
	}
	return out
}

// directive is one logical SecLang line: its first and last text lines.
type directive struct {
	start, end int // 1-based, inclusive
	text       string
}

// splitDirectives splits text into directives the way Coraza's parser reads
// it: blank lines and # comments skipped, a trailing backslash continues a
// line, a line ending in a backtick opens a block closed by a line starting
// with one. open is the start line of a block never closed, or 0.
func splitDirectives(text string) (ds []directive, open int) {
	var buf strings.Builder
	start, inBackticks := 0, false
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		if start == 0 {
			start = n
		}
		if !inBackticks && line[len(line)-1] == '`' {
			inBackticks = true
		} else if inBackticks && line[0] == '`' {
			inBackticks = false
		}
		if inBackticks {
			buf.WriteString(line + "\n")
			continue
		}
		if line[len(line)-1] == '\\' {
			buf.WriteString(strings.TrimSuffix(line, "\\"))
			continue
		}
		buf.WriteString(line)
		ds = append(ds, directive{start: start, end: n, text: buf.String()})
		buf.Reset()
		start = 0
	}
	if inBackticks {
		open = start
	}
	return ds, open
}

// compileSecLang compiles text alone, as the rule engine would read it
// (relative data files resolve in the embedded CRS, as in the real rule
// set), and returns Coraza's message without its wrapping.
func compileSecLang(text string) error {
	_, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(text))
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "invalid WAF config from string: "))
}

// seclangErrors returns every broken directive of text. known are rule ids
// defined elsewhere in the rule set; "rule N not found" for one of them is
// not an error of this piece.
func seclangErrors(text string, known map[int]bool) []seclangError {
	if compileSecLang(text) == nil {
		return nil
	}
	ds, open := splitDirectives(text)
	var errs []seclangError
	if open > 0 {
		errs = append(errs, seclangError{open, "a block opened with a backtick is never closed (a line starting with ` closes it)"})
		for len(ds) > 0 && ds[len(ds)-1].end >= open {
			ds = ds[:len(ds)-1]
		}
	}
	lines := strings.Split(text, "\n")
	if open > 0 {
		lines = lines[:open-1]
	}
	placeholderID := 1_900_000_000
	for len(errs) < maxRuleErrors {
		whole := compileSecLang(strings.Join(lines, "\n"))
		if whole == nil {
			break
		}
		// The first directive whose prefix fails is the broken one.
		lo, hi := 0, len(ds)-1
		var failed error
		for lo < hi {
			mid := (lo + hi) / 2
			if err := compileSecLang(strings.Join(lines[:ds[mid].end], "\n")); err != nil {
				hi, failed = mid, err
			} else {
				lo = mid + 1
			}
		}
		if len(ds) == 0 {
			errs = append(errs, seclangError{1, whole.Error()})
			break
		}
		k := lo
		if failed == nil || k != hi {
			failed = compileSecLang(strings.Join(lines[:ds[k].end], "\n"))
		}
		if failed == nil {
			// Only the whole text fails (nothing left to blame line by
			// line): report it once at its last directive.
			errs = append(errs, seclangError{ds[len(ds)-1].start, whole.Error()})
			break
		}
		d := ds[k]
		if m := notFoundPattern.FindStringSubmatch(failed.Error()); m != nil {
			if id, _ := strconv.Atoi(m[1]); known[id] {
				failed = nil // defined in another piece or the CRS
			}
		}
		if failed != nil {
			errs = append(errs, seclangError{d.start, failed.Error()})
		}
		// Stand in for the broken directive so that the rest is read as
		// it would be: a chain it opened or continued stays a chain.
		for placeholderID++; known[placeholderID]; placeholderID++ {
		}
		stand := standIn(d.text, k > 0 && chainAction.MatchString(ds[k-1].text), failed == nil, placeholderID)
		for i := d.start; i <= d.end; i++ {
			lines[i-1] = ""
		}
		lines[d.start-1] = stand
		ds[k].text = stand
	}
	return errs
}

// standIn is what replaces a broken directive: nothing, or (for a rule) an
// always-matching rule that opens or continues a chain as the original did.
func standIn(text string, chainChild, resolved bool, id int) string {
	if resolved {
		return "" // an update of a rule defined elsewhere: nothing to stand in for
	}
	isRule := strings.HasPrefix(strings.ToLower(text), "secrule ")
	opens := isRule && chainAction.MatchString(text)
	switch {
	case chainChild:
		s := `SecRule REQUEST_URI "@unconditionalMatch" "t:none`
		if opens {
			s += ",chain"
		}
		return s + `"`
	case opens:
		return fmt.Sprintf(`SecRule REQUEST_URI "@unconditionalMatch" "id:%d,phase:2,pass,nolog,chain"`, id)
	}
	return ""
}
