package fastop

import (
	"bufio"
	"io/fs"
	pathpkg "path"
	"strings"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
)

// rxRule is one operator argument of the embedded CRS (an @rx pattern
// unless Op says otherwise): Raw as written between the quotes of the
// SecRule (SecLang-escaped, ready to embed in another rule), Pattern as
// Coraza hands it to the operator.
type rxRule struct {
	ID      string // the rule's id (or its chain starter's), for messages
	Op      string // "" for rx, else "pm" or "pmFromFile"
	File    string
	Raw     string
	Pattern string
}

// op is the operator as written in a rule.
func (r rxRule) op() string {
	if r.Op == "" {
		return "rx"
	}
	return r.Op
}

// crsPatterns reads every @rx operator (explicit or implied) of the embedded
// CRS and Coraza's recommended configuration, the way Coraza's SecLang
// parser reads them: continuation lines joined, the operator taken between
// unescaped quotes, `\"` unescaped. Patterns are deduplicated.
func crsPatterns(t testing.TB) []rxRule {
	t.Helper()
	var rx []rxRule
	for _, r := range crsOperators(t) {
		if r.Op == "" {
			rx = append(rx, r)
		}
	}
	return rx
}

// crsOperators is crsPatterns with the @pm, @pmFromFile and @pmf
// operators too (the data file of the last two named from the root of the
// embedded file system, as the harness loads it).
func crsOperators(t testing.TB) []rxRule {
	t.Helper()
	var out []rxRule
	seen := map[string]bool{}
	err := fs.WalkDir(coreruleset.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".conf") || strings.HasSuffix(path, ".example") || strings.HasSuffix(path, "recommended")) {
			return err
		}
		data, err := fs.ReadFile(coreruleset.FS, path)
		if err != nil {
			return err
		}
		lastID := ""
		for _, line := range logicalLines(string(data)) {
			if !strings.HasPrefix(line, "SecRule ") {
				continue
			}
			raw, actions, ok := ruleOperator(line)
			if !ok {
				t.Errorf("%s: cannot parse %q", path, line)
				continue
			}
			if i := strings.Index(actions, "id:"); i >= 0 {
				id := actions[i+3:]
				if j := strings.IndexAny(id, ",\""); j >= 0 {
					id = id[:j]
				}
				lastID = id
			}
			op := raw
			op = strings.TrimPrefix(op, "!")
			var pattern, kind string
			switch {
			case strings.HasPrefix(op, "@rx "):
				pattern = strings.TrimSpace(op[len("@rx "):])
			case strings.HasPrefix(op, "@pm "):
				kind, pattern = "pm", strings.TrimSpace(op[len("@pm "):])
			case strings.HasPrefix(op, "@pmFromFile "), strings.HasPrefix(op, "@pmf "):
				_, file, _ := strings.Cut(op, " ")
				kind, pattern = "pmFromFile", pathpkg.Join(pathpkg.Dir(path), strings.TrimSpace(file))
			case strings.HasPrefix(op, "@"):
				continue // another operator
			default:
				pattern = strings.TrimSpace(op) // @rx is implied
			}
			rawPattern := pattern
			pattern = strings.ReplaceAll(pattern, `\"`, `"`)
			if seen[kind+" "+pattern] {
				continue
			}
			seen[kind+" "+pattern] = true
			out = append(out, rxRule{ID: lastID, Op: kind, File: path, Raw: rawPattern, Pattern: pattern})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// logicalLines joins SecLang continuation lines and drops comments.
func logicalLines(text string) []string {
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`))
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	return lines
}

// ruleOperator returns the operator of a SecRule line, still escaped, and
// the actions.
func ruleOperator(line string) (op, actions string, ok bool) {
	rest := strings.TrimSpace(strings.TrimPrefix(line, "SecRule "))
	_, rest, ok = strings.Cut(rest, " ")
	rest = strings.TrimLeft(rest, " ")
	if !ok || !strings.HasPrefix(rest, `"`) {
		return "", "", false
	}
	backslashes := 0
	for i := 1; i < len(rest); i++ {
		switch {
		case rest[i] == '\\':
			backslashes++
		case rest[i] == '"' && backslashes%2 == 0:
			return rest[1:i], strings.TrimSpace(rest[i+1:]), true
		default:
			backslashes = 0
		}
	}
	return "", "", false
}

func TestCRSPatternsFound(t *testing.T) {
	pats := crsPatterns(t)
	if len(pats) < 250 {
		t.Fatalf("found %d @rx patterns in the CRS, expected hundreds", len(pats))
	}
	noLiteral := 0
	for _, p := range pats {
		c, err := condOf(flags + p.Pattern)
		if err != nil {
			t.Errorf("rule %s: %v", p.ID, err)
			continue
		}
		if c.op == condAll {
			noLiteral++
		}
	}
	t.Logf("%d distinct @rx patterns, %d without a usable literal", len(pats), noLiteral)
}
