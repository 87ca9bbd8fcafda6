package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Secrets stay out of the file: any value may name an environment variable
// ({env.NAME}) or a file ({file.PATH}, relative to the configuration file's
// directory like every path) whose content takes the placeholder's place,
// whole or inside a longer value ("redis://:{env.REDIS_PASSWORD}@db:6379").
// Expansion happens before any other check, so the value is validated as if
// it had been written in the file; a variable that is not set or a file
// that cannot be read is an error at the line and field that names it.
// Expanded values are never shown: error messages name the placeholder
// instead, and GET /api/config masks every field that held one.

// maxPlaceholderFile bounds a {file.PATH} value: a secret is a few hundred bytes.
const maxPlaceholderFile = 64 << 10

var placeholderPattern = regexp.MustCompile(`\{(env|file)\.([^{}\s]*)\}`)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// secretValue is one expanded value and the placeholder it came from.
type secretValue struct {
	value, placeholder string
}

// hasPlaceholder is the cheap test before the regular expression.
func hasPlaceholder(s string) bool {
	return strings.Contains(s, "{env.") || strings.Contains(s, "{file.")
}

// expand replaces the placeholders of scalar n (at path, decoding into t).
// It reports false when one could not be expanded; n is then blanked.
func (c *checker) expand(n *yaml.Node, path string, t reflect.Type) bool {
	orig := n.Value
	var problems []string
	var pieces []secretValue
	out := placeholderPattern.ReplaceAllStringFunc(orig, func(m string) string {
		sub := placeholderPattern.FindStringSubmatch(m)
		kind, name := sub[1], sub[2]
		switch kind {
		case "env":
			if !envName.MatchString(name) {
				problems = append(problems, fmt.Sprintf("%s: %q is not an environment variable name", m, name))
				return ""
			}
			v, ok := os.LookupEnv(name)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: environment variable %s is not set", m, name))
				return ""
			}
			pieces = append(pieces, secretValue{v, m})
			return v
		default:
			if name == "" {
				problems = append(problems, m+": names no file")
				return ""
			}
			p := name
			if !filepath.IsAbs(p) && c.file != "" {
				p = filepath.Join(filepath.Dir(c.file), p)
			}
			data, err := readSecretFile(p)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", m, err))
				return ""
			}
			// One trailing line break is the file's, not the secret's
			// (echo secret > file; Docker and Kubernetes secrets).
			v := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
			pieces = append(pieces, secretValue{v, m})
			return v
		}
	})
	if len(problems) > 0 {
		c.invalid(n, path, "%s", strings.Join(problems, "; "))
		return false
	}
	c.secretPaths[path] = true
	c.secrets = append(c.secrets, pieces...)
	if out != orig {
		c.secrets = append(c.secrets, secretValue{out, orig})
	}
	n.Value = out
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// The expanded text is read as the field's type: a string stays a
	// string whatever it looks like ("null", "0755"); a number or boolean
	// field gets the value's own YAML type, as if written unquoted.
	if t.Kind() == reflect.String {
		n.Tag, n.Style = "!!str", yaml.DoubleQuotedStyle
	} else {
		n.Tag, n.Style = "", 0
	}
	return true
}

func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > maxPlaceholderFile {
		return nil, fmt.Errorf("%s is %d bytes, larger than the %d byte limit for a secret", path, st.Size(), maxPlaceholderFile)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("cannot read file: %w", err)
	}
	return data, nil
}

// scrubSecrets replaces every expanded value in the problems' messages by
// the placeholder it came from: a message quoting a bad value ("must be a
// URL, got ...") must not print a password. Values shorter than 3 bytes
// are left alone, as replacing them would garble unrelated text.
func (c *checker) scrubSecrets() {
	if len(c.secrets) == 0 {
		return
	}
	ss := append([]secretValue(nil), c.secrets...)
	sort.SliceStable(ss, func(i, j int) bool { return len(ss[i].value) > len(ss[j].value) })
	var pairs []string
	for _, s := range ss {
		if len(s.value) >= 3 {
			pairs = append(pairs, s.value, s.placeholder)
		}
	}
	r := strings.NewReplacer(pairs...)
	for _, e := range c.errs {
		e.Msg = r.Replace(e.Msg)
	}
}
