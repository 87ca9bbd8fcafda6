package config

import (
	"embed"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"sync"
)

// The JSON Schema (draft 2020-12) of the YAML file is generated from the
// types in this package, so it cannot drift from what Load accepts: every
// yaml-tagged field is a property, unknown fields are refused as Load
// refuses them, and each property's description is its doc comment here.
// It checks shapes and types; the semantic checks (an upstream that
// exists, a rule that compiles) remain `portcullis check`'s.

//go:embed *.go
var sources embed.FS

// SchemaID is the schema's $id.
const SchemaID = "https://portcullis.dev/schema/portcullis.schema.json"

var (
	durationPattern = `^\s*(?:[0-9]+d|0|(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|ms|s|m|h))+)\s*$`
	sizePattern     = `^\s*[0-9]+\s*(?:KiB|MiB|GiB|KB|MB|GB|B)?\s*$`
	placeholderRef  = map[string]any{"$ref": "#/$defs/placeholder"}
)

// JSONSchema returns the schema as JSON-ready data.
func JSONSchema() map[string]any {
	g := &schemaGen{docs: fieldDocs(), defs: map[string]any{}}
	root := g.schema(reflect.TypeOf(File{}))
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "Portcullis configuration"
	g.defs["placeholder"] = map[string]any{
		"type":        "string",
		"pattern":     `\{(?:env|file)\.[^{}\s]*\}`,
		"description": "{env.NAME} or {file.PATH}: the value is read from the environment or a file at load",
	}
	root["$defs"] = g.defs
	return root
}

type schemaGen struct {
	docs map[string]string // "Type.Field" -> doc comment
	defs map[string]any
}

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case durationType:
		return map[string]any{"anyOf": []any{
			map[string]any{"type": "string", "pattern": durationPattern},
			map[string]any{"type": "integer", "const": 0},
			placeholderRef,
		}, "description": "a duration such as 5s, 1m30s or 30d"}
	case byteSizeType:
		return map[string]any{"anyOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "string", "pattern": sizePattern},
			placeholderRef,
		}, "description": "a size such as 65536, 512KiB or 10MiB"}
	case adminAuthTyp:
		return map[string]any{"oneOf": []any{
			map[string]any{"const": "none"},
			g.object(t),
		}}
	case reflect.TypeOf(Target{}):
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "string", "description": "the target's base URL"},
			g.object(t),
		}}
	}
	switch t.Kind() {
	case reflect.Struct:
		return g.object(t)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"anyOf": []any{map[string]any{"type": "integer"}, placeholderRef}}
	case reflect.Float64:
		return map[string]any{"anyOf": []any{map[string]any{"type": "number"}, placeholderRef}}
	case reflect.Bool:
		return map[string]any{"anyOf": []any{map[string]any{"type": "boolean"}, placeholderRef}}
	}
	return map[string]any{}
}

// object is the schema of a struct, kept once in $defs under its type
// name (WAF appears at three levels, RateLimit at two).
func (g *schemaGen) object(t reflect.Type) map[string]any {
	name := t.Name()
	ref := map[string]any{"$ref": "#/$defs/" + name}
	if name == "File" {
		return g.properties(t)
	}
	if _, done := g.defs[name]; !done {
		g.defs[name] = map[string]any{} // a cycle finds the reference
		g.defs[name] = g.properties(t)
	}
	return ref
}

func (g *schemaGen) properties(t reflect.Type) map[string]any {
	props := map[string]any{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		s := g.schema(f.Type)
		if doc := g.docs[t.Name()+"."+f.Name]; doc != "" {
			if _, isRef := s["$ref"]; isRef {
				s = map[string]any{"allOf": []any{s}}
			}
			s["description"] = doc
		}
		props[name] = s
	}
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if doc := g.docs[t.Name()]; doc != "" {
		out["description"] = doc
	}
	return out
}

var (
	docsOnce sync.Once
	docs     map[string]string
)

// fieldDocs reads the doc comments of this package's types and fields from
// its embedded source.
func fieldDocs() map[string]string {
	docsOnce.Do(func() {
		docs = map[string]string{}
		entries, _ := sources.ReadDir(".")
		fset := token.NewFileSet()
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			src, err := sources.ReadFile(e.Name())
			if err != nil {
				continue
			}
			f, err := parser.ParseFile(fset, e.Name(), src, parser.ParseComments)
			if err != nil {
				continue
			}
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.TYPE {
					continue
				}
				for _, sp := range gd.Specs {
					ts := sp.(*ast.TypeSpec)
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					doc := ts.Doc
					if doc == nil && len(gd.Specs) == 1 {
						doc = gd.Doc
					}
					if doc != nil {
						docs[ts.Name.Name] = clean(doc.Text())
					}
					for _, fl := range st.Fields.List {
						if fl.Doc == nil {
							continue
						}
						for _, n := range fl.Names {
							docs[ts.Name.Name+"."+n.Name] = clean(fl.Doc.Text())
						}
					}
				}
			}
		}
	})
	return docs
}

func clean(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
