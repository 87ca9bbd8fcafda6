package review

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/portcullis-waf/portcullis"

// listed is what `go list -json` says of one package.
type listed struct {
	ImportPath   string
	Deps         []string // every package it imports, directly or not
	TestImports  []string
	XTestImports []string
}

// listModule runs `go list` over the module: imports as the build sees
// them (build tags, vendoring), without compiling anything.
func listModule(t *testing.T) map[string]*listed {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Fatalf("the go command is needed to list imports: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-json=ImportPath,Deps,TestImports,XTestImports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]*listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = &p
	}
	return pkgs
}

// under reports whether path is dir or a package inside it (dir given
// relative to the module).
func under(path, dir string) bool {
	full := module + "/" + dir
	return path == full || strings.HasPrefix(path, full+"/")
}

// reaches returns the packages of p's build, and of its tests' imports,
// that are under one of dirs.
func reaches(pkgs map[string]*listed, p *listed, dirs []string) []string {
	var hits []string
	check := func(path, via string) {
		for _, d := range dirs {
			if under(path, d) {
				hit := strings.TrimPrefix(path, module+"/") + via
				if !slices.Contains(hits, hit) {
					hits = append(hits, hit)
				}
			}
		}
	}
	for _, d := range p.Deps {
		check(d, "")
	}
	for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
		via := " (through the tests' import of " + strings.TrimPrefix(imp, module+"/") + ")"
		check(imp, via)
		if q, ok := pkgs[imp]; ok && q != p {
			for _, d := range q.Deps {
				check(d, via)
			}
		}
	}
	return hits
}

// TestLayers: no package below the pipeline imports it or the review
// tools, and the score breakdown and the dashboard stay free of the
// pipeline (issue 14: audit/explain and audit/replay sat under audit/ and
// imported gateway and waf).
func TestLayers(t *testing.T) {
	pkgs := listModule(t)
	pipeline := []string{"gateway", "waf", "proxy", "cache"}
	rules := []struct {
		dirs      []string // the packages checked, and everything inside them
		forbidden []string
		why       string
	}{
		{[]string{"audit", "config", "respond", "clientip", "ratelimit", "reputation", "bans", "connlimit", "wire", "metrics", "alerts"},
			append(slices.Clone(pipeline), "review", "instance"), "it sits below the pipeline and the review tools"},
		// The stages are composed by gateway and never reach back into it
		// or into the process around it (issue 14).
		{[]string{"waf", "proxy", "cache"}, []string{"gateway", "instance", "review"},
			"it is a stage that gateway composes"},
		{[]string{"review/score", "admin"}, append(slices.Clone(pipeline), "review/explain", "review/replay"),
			"it reads records without the pipeline (admin gets explanations through Options.Explain)"},
	}
	for _, rule := range rules {
		for _, dir := range rule.dirs {
			found := false
			for path, p := range pkgs {
				if !under(path, dir) {
					continue
				}
				found = true
				if hits := reaches(pkgs, p, rule.forbidden); len(hits) > 0 {
					slices.Sort(hits)
					t.Errorf("%s imports %s: %s", strings.TrimPrefix(path, module+"/"), strings.Join(hits, ", "), rule.why)
				}
			}
			if !found {
				t.Errorf("no package %s in the module: update the layers", dir)
			}
		}
	}
	// The check sees what it looks for: the review tools above the
	// pipeline do import it.
	for _, above := range []string{"review/explain", "review/replay"} {
		p, ok := pkgs[module+"/"+above]
		if !ok {
			t.Fatalf("no package %s", above)
		}
		if hits := reaches(pkgs, p, []string{"gateway"}); !slices.Contains(hits, "gateway") {
			t.Errorf("%s does not import gateway: the check cannot tell", above)
		}
	}
}
