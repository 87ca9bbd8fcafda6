package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds the configuration file; a larger file is certainly a mistake.
const MaxFileSize = 4 << 20

// FieldError is one problem in a configuration file.
type FieldError struct {
	File string // path of the configuration file
	Line int    // 1-based; 0 when unknown
	Path string // field path, e.g. sites[0].waf.paranoia
	Msg  string

	order int // where it is listed, when File is not the config file: the line naming it
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration, in file order.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads, checks and resolves the configuration file at path. On any
// problem it returns nil and an Errors value listing all of them.
func Load(path string) (*Config, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %w", err)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("file is %d bytes, larger than the %d byte limit", st.Size(), MaxFileSize)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("cannot read file: %w", err)
	}
	return data, nil
}

// Parse checks and resolves configuration text; name is used in messages and
// to resolve relative rule file paths.
func Parse(name string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, Errors{{File: name, Msg: fmt.Sprintf("configuration is %d bytes, larger than the %d byte limit", len(data), MaxFileSize)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{yamlSyntaxError(name, err)}
	}
	c := &checker{file: name, lines: map[string]int{}, bad: map[string]bool{}, literal: map[string]bool{}, secretPaths: map[string]bool{}, plugins: map[string]*CRSPlugin{}}
	var file File
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		// The walk reports structural problems and blanks the offending
		// nodes, so decoding and the semantic checks still run and every
		// problem of the file is reported in one go.
		c.walk(root, reflect.TypeOf(file), "")
		if err := root.Decode(&file); err != nil {
			// The walk accepts only what decodes; reaching here is a bug, but
			// still reported as a config error rather than a crash.
			return nil, Errors{{File: name, Msg: err.Error()}}
		}
	}
	cfg := c.resolve(&file)
	if len(c.errs) > 0 {
		c.scrubSecrets()
		return nil, c.sorted()
	}
	cfg.document, cfg.secretPaths = &file, c.secretPaths
	return cfg, nil
}

// yamlSyntaxError turns yaml.v3's "yaml: line N: msg" into a FieldError.
func yamlSyntaxError(name string, err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ":"); i > 0 {
			if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &FieldError{File: name, Line: line, Msg: "invalid YAML: " + msg}
}

// checker collects problems and remembers the line of every field path so
// that semantic checks after decoding can still point at the right line.
type checker struct {
	file  string
	lines map[string]int
	errs  Errors
	// bad holds paths already reported and blanked by the structure check;
	// semantic checks stay quiet about them (no "is required" after "must be
	// a string" for the same field).
	bad map[string]bool
	// literal holds the paths of literal block scalars (|), whose lines are
	// the file's lines, so an error in line k of an inline rule block can
	// name its line in the file.
	literal map[string]bool
	// ruleChecks are the custom SecLang pieces, checked after resolving.
	ruleChecks []ruleCheck
	// secretPaths are the fields whose value came from {env.NAME} or
	// {file.PATH}; secrets are those values, kept out of messages.
	secretPaths map[string]bool
	secrets     []secretValue
	// plugins are the CRS plugin directories read so far, by path (nil:
	// unreadable), so that one named at several levels is read once.
	plugins map[string]*CRSPlugin
}

func (c *checker) errorf(path, format string, args ...any) {
	for p := path; p != ""; p = parentPath(p) {
		if c.bad[p] {
			return
		}
	}
	c.errs = append(c.errs, &FieldError{File: c.file, Line: c.lineOf(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of path, or of its nearest parent that has one.
func (c *checker) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := c.lines[p]; ok {
			return l
		}
	}
	return 0
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// sorted orders the problems by line; a problem in another file (a rule
// file) is listed at the line that names the file, in its own line order.
func (c *checker) sorted() Errors {
	at := func(e *FieldError) int {
		if e.File != c.file {
			return e.order
		}
		return e.Line
	}
	sort.SliceStable(c.errs, func(i, j int) bool {
		a, b := c.errs[i], c.errs[j]
		if at(a) != at(b) {
			return at(a) < at(b)
		}
		if (a.File != c.file) != (b.File != c.file) {
			return a.File == c.file
		}
		return a.File == b.File && a.Line < b.Line
	})
	return c.errs
}

var scalarType = reflect.TypeOf((*scalar)(nil)).Elem()

// invalid reports a structural problem at path and blanks node n so that
// decoding leaves the field at its zero value.
func (c *checker) invalid(n *yaml.Node, path, format string, args ...any) {
	c.errorf(path, format, args...)
	c.bad[path] = true
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// walk checks node against type t: unknown and duplicate fields, kinds of
// values, and the syntax of durations and sizes. It records each path's line.
func (c *checker) walk(n *yaml.Node, t reflect.Type, path string) {
	if path != "" {
		c.lines[path] = n.Line
		if n.Kind == yaml.ScalarNode && n.Style&yaml.LiteralStyle != 0 {
			c.literal[path] = true
		}
	}
	if n.Kind == yaml.AliasNode {
		c.invalid(n, path, "YAML aliases are not supported")
		return
	}
	if n.Kind == yaml.ScalarNode && hasPlaceholder(n.Value) && !c.expand(n, path, t) {
		return
	}
	if isNull(n) {
		return // an empty value leaves the default in place
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// A struct may also accept one word (admin.auth: none); its mapping
	// form is walked field by field below.
	if reflect.PointerTo(t).Implements(scalarType) && (n.Kind == yaml.ScalarNode || t.Kind() != reflect.Struct) {
		if n.Kind != yaml.ScalarNode {
			c.invalid(n, path, "must be a single value, got %s", kindName(n))
			return
		}
		if err := reflect.New(t).Interface().(scalar).parseScalar(n.Value); err != nil {
			c.invalid(n, path, "%s", err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		c.walkStruct(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.invalid(n, path, "must be a list, got %s", kindName(n))
			return
		}
		for i, item := range n.Content {
			c.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.invalid(n, path, "must be a mapping, got %s", kindName(n))
			return
		}
		seen := map[string]bool{}
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := path + "." + k.Value
			c.lines[p] = k.Line
			if seen[k.Value] {
				c.errorf(p, "duplicate key")
				continue // dropped: the decoder refuses duplicate keys
			}
			seen[k.Value] = true
			c.walk(v, t.Elem(), p)
			kept = append(kept, k, v)
		}
		n.Content = kept
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.invalid(n, path, "must be a string, got %s", kindName(n))
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			c.invalid(n, path, "must be an integer, got %s", describe(n))
		}
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") {
			c.invalid(n, path, "must be a number, got %s", describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			c.invalid(n, path, "must be true or false, got %s", describe(n))
		}
	default:
		c.invalid(n, path, "unsupported field type %s", t)
	}
}

func (c *checker) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		c.invalid(n, path, "must be a mapping of fields, got %s", kindName(n))
		return
	}
	fields := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			fields[name] = f
		}
	}
	seen := map[string]bool{}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		c.lines[p] = k.Line
		f, ok := fields[k.Value]
		switch {
		case !ok:
			c.errorf(p, "unknown field%s", suggest(k.Value, fields))
			c.bad[p] = true
			continue // dropped, so decoding ignores it
		case seen[k.Value]:
			c.errorf(p, "duplicate field")
			continue
		}
		seen[k.Value] = true
		c.walk(v, f.Type, p)
		kept = append(kept, k, v)
	}
	n.Content = kept
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return describe(n)
	}
}

func describe(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return kindName(n)
	}
	return strconv.Quote(n.Value)
}

// suggest names a known field close to an unknown one (a typo such as
// "paranoya"), which is what the operator usually meant.
func suggest(name string, fields map[string]reflect.StructField) string {
	best, bestDist := "", 3
	for f := range fields {
		if d := editDistance(name, f); d < bestDist || (d == bestDist && f < best) {
			best, bestDist = f, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ErrorList returns the individual problems of an error returned by Load or
// Parse, or nil if err is not a configuration error.
func ErrorList(err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	return nil
}
