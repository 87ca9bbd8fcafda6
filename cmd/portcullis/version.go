package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/portcullis-waf/portcullis/metrics"
	"github.com/portcullis-waf/portcullis/waf/fastop"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the VCS revision recorded by the Go toolchain is shown.
var version = ""

const (
	corazaModule = "github.com/corazawaf/coraza/v3"
	crsModule    = "github.com/corazawaf/coraza-coreruleset/v4"
)

// versions returns Portcullis's own version and the versions of the rule
// engine and rule set compiled into this binary.
func versions() (portcullis, coraza, crs string) {
	portcullis, coraza, crs = version, "unknown", "unknown"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if portcullis == "" {
		portcullis = info.Main.Version
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				portcullis = "devel-" + s.Value[:12]
			}
		}
		if portcullis == "" || portcullis == "(devel)" {
			portcullis = "devel"
		}
	}
	for _, d := range info.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		switch d.Path {
		case corazaModule:
			coraza = d.Version
		case crsModule:
			crs = d.Version
		}
	}
	return
}

// buildInfo is what /metrics reports in portcullis_build_info.
func buildInfo() metrics.BuildInfo {
	v, coraza, crs := versions()
	return metrics.BuildInfo{Version: v, Coraza: coraza, CRS: crs}
}

func printVersion(w io.Writer) {
	p, c, r := versions()
	fmt.Fprintf(w, "portcullis %s\n", p)
	fmt.Fprintf(w, "coraza %s (%s)\n", c, corazaModule)
	// coraza-coreruleset's version follows the CRS release it embeds.
	fmt.Fprintf(w, "owasp-crs %s (embedded from %s)\n", r, crsModule)
	fmt.Fprintf(w, "operators: %s\n", fastop.Name)
	fmt.Fprintf(w, "go %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
