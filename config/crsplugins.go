package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// CRS plugins (https://coreruleset.org/docs/concepts/plugins/) are
// directories of SecLang files named by role: *-config.conf (settings,
// loaded after the CRS setup), *-before.conf (loaded before the CRS rules)
// and *-after.conf (after them). The CRS's own application exclusion
// plugins (WordPress, Drupal, Nextcloud, phpMyAdmin...) come this way.
// waf.crs_plugins names such directories; every file is checked here like
// a custom rule file, so `check` reports a broken directive at its file and
// line, and rules places the files around the CRS in the CRS's order.

// CRSPlugin is one loaded plugin directory.
type CRSPlugin struct {
	Dir                   string     // cleaned; relative to the working directory when the config path is
	Config, Before, After []RuleText // each sorted by file name
}

// pluginRoles are the file name suffixes of a plugin, in load order.
var pluginRoles = []string{"-config.conf", "-before.conf", "-after.conf"}

// maxPluginFiles bounds the files read from one plugin directory.
const maxPluginFiles = 256

// crsPlugins reads the plugin directories dirs (field path p) and returns
// them in order; a directory named twice at any level is loaded once.
func (c *checker) crsPlugins(dirs []string, p string) []*CRSPlugin {
	var out []*CRSPlugin
	for i, d := range dirs {
		field := fmt.Sprintf("%s[%d]", p, i)
		if strings.TrimSpace(d) == "" {
			c.errorf(field, "must name a plugin directory")
			continue
		}
		dir := filepath.Clean(c.relative(d))
		if pl, done := c.plugins[dir]; done {
			if pl != nil {
				out = append(out, pl)
			}
			continue
		}
		pl := c.loadPlugin(dir, field)
		c.plugins[dir] = pl
		if pl != nil {
			out = append(out, pl)
		}
	}
	return out
}

func (c *checker) loadPlugin(dir, field string) *CRSPlugin {
	entries, err := os.ReadDir(dir)
	if err != nil {
		c.errorf(field, "cannot read plugin directory: %v", err)
		return nil
	}
	pl := &CRSPlugin{Dir: dir}
	n := 0
	for _, e := range entries { // ReadDir sorts by name, as the CRS's Include globs do
		role := slices.IndexFunc(pluginRoles, func(s string) bool { return strings.HasSuffix(e.Name(), s) })
		if role < 0 || e.IsDir() {
			continue // README, LICENSE, data files: not loaded, as with the CRS
		}
		if n++; n > maxPluginFiles {
			c.errorf(field, "plugin directory %s has more than %d rule files", dir, maxPluginFiles)
			return nil
		}
		path := filepath.Join(dir, e.Name())
		data, err := readLimited(path)
		if err != nil {
			c.errorf(field, "%s: %v", path, err)
			continue
		}
		rt := RuleText{Origin: path, Text: string(data)}
		c.ruleChecks = append(c.ruleChecks, ruleCheck{origin: path, field: field, file: path, line: 1, exact: true, text: rt.Text})
		switch role {
		case 0:
			pl.Config = append(pl.Config, rt)
		case 1:
			pl.Before = append(pl.Before, rt)
		default:
			pl.After = append(pl.After, rt)
		}
	}
	if n == 0 {
		c.errorf(field, "%s holds no plugin files (*-config.conf, *-before.conf, *-after.conf)", dir)
		return nil
	}
	return pl
}
