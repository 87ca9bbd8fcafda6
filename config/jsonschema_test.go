package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/kaptinlin/jsonschema"
	"go.yaml.in/yaml/v3"
)

// compileSchema compiles JSONSchema(), or the definition named def inside
// it, with an independent validator (kaptinlin/jsonschema).
func compileSchema(t *testing.T, def string) *jsonschema.Schema {
	t.Helper()
	s := JSONSchema()
	if def != "" {
		s = map[string]any{"$schema": s["$schema"], "$defs": s["$defs"], "$ref": "#/$defs/" + def}
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := jsonschema.NewCompiler().Compile(b)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return compiled
}

func yamlToJSON(t *testing.T, text []byte) []byte {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(text, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func schemaErrors(r *jsonschema.EvaluationResult) string {
	b, _ := json.MarshalIndent(r.ToList(), "", " ")
	return string(b)
}

// TestSchemaHasEveryField walks the configuration types and requires each
// yaml field at its place in the schema, with the type's doc comment.
func TestSchemaHasEveryField(t *testing.T) {
	s := JSONSchema()
	defs := s["$defs"].(map[string]any)
	var props func(node map[string]any) map[string]any
	props = func(node map[string]any) map[string]any {
		if ref, ok := node["$ref"].(string); ok {
			return props(defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any))
		}
		for _, k := range []string{"allOf", "oneOf", "anyOf"} {
			if alts, ok := node[k].([]any); ok {
				for _, a := range alts {
					if p := props(a.(map[string]any)); p != nil {
						return p
					}
				}
			}
		}
		if items, ok := node["items"].(map[string]any); ok {
			return props(items)
		}
		if ap, ok := node["additionalProperties"].(map[string]any); ok {
			return props(ap)
		}
		p, _ := node["properties"].(map[string]any)
		return p
	}
	count := 0
	seen := map[reflect.Type]bool{}
	var walk func(rt reflect.Type, node map[string]any, path string)
	walk = func(rt reflect.Type, node map[string]any, path string) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || rt == durationType || rt == byteSizeType || seen[rt] {
			return
		}
		seen[rt] = true
		p := props(node)
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			count++
			child, ok := p[name].(map[string]any)
			if !ok {
				t.Errorf("%s.%s is not in the schema", path, name)
				continue
			}
			walk(f.Type, child, path+"."+name)
		}
	}
	walk(reflect.TypeOf(File{}), s, "")
	if count < 100 {
		t.Errorf("only %d fields walked", count)
	}
	waf := defs["WAF"].(map[string]any)["properties"].(map[string]any)["paranoia"].(map[string]any)
	if !strings.Contains(waf["description"].(string), "paranoia level 1..4") {
		t.Errorf("waf.paranoia has no description from its doc comment: %v", waf)
	}
}

// TestExamplesValidateAgainstSchema: every valid example configuration in
// testdata/config and every configuration block of the README is valid
// under the schema; fragments of a deeper level (an exclusions list) are
// checked against that level's definition.
func TestExamplesValidateAgainstSchema(t *testing.T) {
	root := compileSchema(t, "")
	files, _ := filepath.Glob("../testdata/config/*.yaml")
	n := 0
	for _, f := range files {
		golden, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".golden")
		if err != nil || string(golden) != "ok\n" {
			continue // an example of a mistake
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if r := root.ValidateJSON(yamlToJSON(t, data)); !r.IsValid() {
			t.Errorf("%s does not validate:\n%s", f, schemaErrors(r))
		}
	}
	if n < 5 {
		t.Errorf("only %d valid examples found", n)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rootProps := JSONSchema()["properties"].(map[string]any)
	defs := JSONSchema()["$defs"].(map[string]any)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	checked := 0
	for i, b := range blocks {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(b[1]), &doc); err != nil || doc == nil {
			continue // a list or other fragment
		}
		def := ""
		for k := range doc {
			if _, ok := rootProps[k]; !ok {
				def = "?"
			}
		}
		if def == "?" {
			def = ""
			for name, d := range defs {
				dp, _ := d.(map[string]any)["properties"].(map[string]any)
				all := dp != nil
				for k := range doc {
					if _, ok := dp[k]; !ok {
						all = false
					}
				}
				if all && (def == "" || name < def) {
					def = name
				}
			}
			if def == "" {
				t.Errorf("README yaml block %d fits no level of the schema:\n%s", i, b[1])
				continue
			}
		}
		checked++
		if r := compileSchema(t, def).ValidateJSON(yamlToJSON(t, []byte(b[1]))); !r.IsValid() {
			t.Errorf("README yaml block %d (as %q) does not validate:\n%s\n%s", i, def, b[1], schemaErrors(r))
		}
	}
	if checked < 5 {
		t.Errorf("only %d README blocks checked", checked)
	}
}

func TestSchemaRefusesMistakes(t *testing.T) {
	root := compileSchema(t, "")
	for _, tt := range []struct {
		yaml  string
		valid bool
	}{
		{"sites: [{hosts: [a], routes: [{path: /, upstream: app}]}]", true},
		{"server: {inspections: \"{env.SLOTS}\", read_timeout: 1m30s, max_header_bytes: 64KiB}", true},
		{"admin: {auth: none}", true},
		{"upstreams: [{name: a, targets: [\"http://x\", {url: \"http://y\", weight: 2}]}]", true},
		{"waf: {paranoya: 2}", false},              // a typo
		{"waf: {paranoia: two}", false},            // not a number
		{"server: {read_timeout: soon}", false},    // not a duration
		{"server: {max_header_bytes: 1TB}", false}, // not a size unit
		{"admin: {auth: everyone}", false},
		{"sites: [{hosts: a}]", false}, // not a list
	} {
		r := root.ValidateJSON(yamlToJSON(t, []byte(tt.yaml)))
		if r.IsValid() != tt.valid {
			t.Errorf("%s: valid = %v, want %v\n%s", tt.yaml, r.IsValid(), tt.valid, schemaErrors(r))
		}
	}
}
