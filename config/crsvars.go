package config

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"sync"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
)

// The names crs_variables accepts are the CRS's own settings, read from the
// rule set embedded in this binary, so the list follows the CRS version
// rather than a copy that drifts: every tx.* variable that
// REQUEST-901-INITIALIZATION gives a default (`SecRule &TX:name "@eq 0"`)
// and every tx.* variable crs-setup.conf.example documents (`setvar:tx.name=`),
// such as max_num_args, which the rules read but 901 leaves unset.
var (
	crsDefaulted = regexp.MustCompile(`&TX:([A-Za-z0-9_]+) "@eq 0"`)
	crsSetupVar  = regexp.MustCompile(`setvar:'?tx\.([A-Za-z0-9_]+)=`)

	crsVarsOnce  sync.Once
	crsVarsKnown map[string]bool
	crsVarsErr   error
)

// CRSVariables returns the names crs_variables accepts, sorted.
func CRSVariables() ([]string, error) {
	known, err := crsVariables()
	if err != nil {
		return nil, err
	}
	var out []string
	for name := range known {
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

func crsVariables() (map[string]bool, error) {
	crsVarsOnce.Do(func() {
		crsVarsKnown = map[string]bool{}
		setup, err := fs.ReadFile(coreruleset.FS, "@crs-setup.conf.example")
		if err != nil {
			crsVarsErr = fmt.Errorf("read the embedded crs-setup.conf.example: %w", err)
			return
		}
		for _, m := range crsSetupVar.FindAllStringSubmatch(string(setup), -1) {
			crsVarsKnown[strings.ToLower(m[1])] = true
		}
		files, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
		if err != nil || len(files) == 0 {
			crsVarsErr = fmt.Errorf("list the embedded CRS rules: %v", err)
			return
		}
		for _, f := range files {
			data, err := fs.ReadFile(coreruleset.FS, f)
			if err != nil {
				crsVarsErr = fmt.Errorf("read the embedded %s: %w", f, err)
				return
			}
			for _, m := range crsDefaulted.FindAllStringSubmatch(string(data), -1) {
				crsVarsKnown[strings.ToLower(m[1])] = true
			}
		}
		// Bookkeeping, not settings: the version marker of crs-setup.
		delete(crsVarsKnown, "crs_setup_version")
	})
	return crsVarsKnown, crsVarsErr
}

// checkCRSVariable reports a name that is not one of the CRS's settings,
// with the nearest one when it looks like a typo.
func checkCRSVariable(name string) error {
	known, err := crsVariables()
	if err != nil {
		return err
	}
	if known[name] {
		return nil
	}
	best, bestDist := "", max(3, len(name)/4+1)
	for k := range known {
		if d := editDistance(name, k); d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Errorf("is not a CRS setting (did you mean %q?)", best)
	}
	return fmt.Errorf("is not a CRS setting; see crs-setup.conf.example of the embedded CRS for the names (portcullis version names its release)")
}
