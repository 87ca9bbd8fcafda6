package instance

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/config"
)

// The admin console's side of the instance (admin.Console): the running
// state read through the pipeline's small accessors, the checked reload,
// and the WAF mode switches.
//
// A switch is kept in the state directory (overridesFile), not written into
// the configuration file: the file stays the operator's, comments and
// placeholders untouched. Every configuration the instance switches to (at
// start, on every reload, on POST /api/config) is the file's with the
// switches applied on top, so a switch survives reloads and restarts until
// it is switched back; the console shows each route's mode in force beside
// the file's. A switch naming a route the file no longer has is kept,
// applies to nothing, and is shown as stale.

// overridesFile is the switches' file in the state directory.
const overridesFile = "console-overrides.json"

var _ admin.Console = (*Instance)(nil)

type overridesDoc struct {
	Routes []admin.ModeOverride `json:"routes"`
}

func (i *Instance) overridesPath() string {
	return filepath.Join(i.cfg.TLS.StateDir, overridesFile)
}

// loadOverrides reads the console's mode switches and applies them to the
// configuration to start with. It runs before the pipeline is built. An
// unreadable file stops the start: serving a route in a mode the operator
// switched away from, without saying so, is what must not happen.
func (i *Instance) loadOverrides() error {
	data, err := os.ReadFile(i.overridesPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("console mode switches: %w", err)
	default:
		var doc overridesDoc
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("console mode switches: %s: %w (fix or remove the file)", i.overridesPath(), err)
		}
		for _, o := range doc.Routes {
			if o.Mode != config.ModeDetect && o.Mode != config.ModeBlock {
				return fmt.Errorf("console mode switches: %s: route %s: mode %q is not detect or block", i.overridesPath(), o.Route, o.Mode)
			}
		}
		i.overrides = doc.Routes
	}
	i.fileCfg = i.cfg
	i.cfg = i.applyOverrides(i.cfg, i.overrides)
	if i.cfgPath != "" {
		if data, err := os.ReadFile(i.cfgPath); err == nil {
			i.loadedSum = sha256.Sum256(data)
		}
	}
	return nil
}

// applyOverrides returns cfg with every switch that names one of its routes
// applied; cfg itself is not changed (the sites and routes changed are
// copies). Stale switches are logged.
func (i *Instance) applyOverrides(cfg *config.Config, ovs []admin.ModeOverride) *config.Config {
	if len(ovs) == 0 || cfg == nil {
		return cfg
	}
	out := *cfg
	out.Sites = slices.Clone(cfg.Sites)
	copied := map[int]bool{}
	for _, o := range ovs {
		si, ri := findRoute(&out, o.Route)
		if si < 0 {
			i.log.Warn("console mode switch names no route of the configuration: it applies to nothing", "route", o.Route.String(), "mode", o.Mode, "by", o.By)
			continue
		}
		if !copied[si] {
			site := *out.Sites[si]
			site.Routes = slices.Clone(site.Routes)
			out.Sites[si] = &site
			copied[si] = true
		}
		rc := *out.Sites[si].Routes[ri]
		rc.WAF.Mode = o.Mode
		out.Sites[si].Routes[ri] = &rc
	}
	return &out
}

// findRoute finds the site and route ref names, or -1, -1.
func findRoute(cfg *config.Config, ref admin.RouteRef) (int, int) {
	for si, sc := range cfg.Sites {
		if sc.Name != ref.Site {
			continue
		}
		nth := 0
		for ri, rc := range sc.Routes {
			if rc.Path != ref.Path {
				continue
			}
			if nth == ref.Nth {
				return si, ri
			}
			nth++
		}
	}
	return -1, -1
}

// routeRef names route ri of site sc.
func routeRef(sc *config.SiteConfig, ri int) admin.RouteRef {
	ref := admin.RouteRef{Site: sc.Name, Path: sc.Routes[ri].Path}
	for _, rc := range sc.Routes[:ri] {
		if rc.Path == ref.Path {
			ref.Nth++
		}
	}
	return ref
}

// SetRouteMode switches one route's WAF mode (admin.Console): the
// configuration last read (the file's, without re-reading it: a switch
// must not also apply unreviewed edits) with the switches and this one
// applied is built and swapped in as a reload, or nothing changes. The
// switches file is written before the swap and takes effect with it; a
// switch back to the file's mode removes the route's entry.
func (i *Instance) SetRouteMode(ref admin.RouteRef, mode, by string) admin.ConsoleResult {
	if mode != config.ModeDetect && mode != config.ModeBlock {
		return admin.ConsoleResult{Message: "mode must be detect or block"}
	}
	// A first look, outside the reload lock, for a quick answer.
	i.consoleMu.Lock()
	fileCfg := i.fileCfg
	i.consoleMu.Unlock()
	if si, _ := findRoute(fileCfg, ref); si < 0 {
		return admin.ConsoleResult{Message: "no route " + ref.String() + " in the configuration file"}
	}
	var tmp string
	var next []admin.ModeOverride
	res, err := i.reloadOverriding("admin console ("+by+")", func() (*config.Config, error) {
		// Under the reload lock: the configuration and switches in force
		// now, so a switch never undoes a reload or another switch that
		// ran since the first look.
		i.consoleMu.Lock()
		fileCfg, current := i.fileCfg, slices.Clone(i.overrides)
		i.consoleMu.Unlock()
		si, ri := findRoute(fileCfg, ref)
		if si < 0 {
			return nil, errors.New("no route " + ref.String() + " in the configuration file")
		}
		next = slices.DeleteFunc(current, func(o admin.ModeOverride) bool { return o.Route == ref })
		if fileCfg.Sites[si].Routes[ri].WAF.Mode != mode {
			next = append(next, admin.ModeOverride{Route: ref, Mode: mode, By: by, At: time.Now().UTC()})
		}
		data, err := json.MarshalIndent(overridesDoc{Routes: next}, "", "  ")
		if err != nil {
			return nil, err
		}
		if tmp, err = writeBeside(i.overridesPath(), append(data, '\n')); err != nil {
			return nil, fmt.Errorf("the switch cannot be saved, so it was not applied: %w", err)
		}
		return fileCfg, nil
	}, &next, func() error {
		if err := os.Rename(tmp, i.overridesPath()); err != nil {
			return fmt.Errorf("applied, but not saved to %s (kept across reloads, lost at the next restart): %w", i.overridesPath(), err)
		}
		tmp = ""
		return nil
	})
	if tmp != "" {
		_ = os.Remove(tmp)
	}
	out := consoleResult(res, err)
	if res.OK {
		out.Message = fmt.Sprintf("%s is now in %s mode (applied in %s, kept in %s)", ref, mode, res.Duration, i.overridesPath())
	}
	return out
}

// CheckAndReload checks the configuration file as `portcullis check` does
// (config.Load, then every stage built: rule sets compiled, limits, lists)
// and switches to it when it has no problem (admin.Console).
func (i *Instance) CheckAndReload(by string) admin.ConsoleResult {
	res, err := i.reloadOverriding(by, func() (*config.Config, error) { return config.Load(i.cfgPath) }, nil, i.noteFileLoaded)
	out := consoleResult(res, err)
	if res.OK {
		out.Message = "the file has no problem; applied in " + res.Duration
	}
	return out
}

func consoleResult(res admin.ReloadResult, err error) admin.ConsoleResult {
	out := admin.ConsoleResult{OK: res.OK, Duration: res.Duration, Message: res.Error}
	for _, p := range config.ErrorList(err) {
		out.Problems = append(out.Problems, p.Error())
	}
	if len(out.Problems) > 0 {
		out.Message = fmt.Sprintf("refused: %d problem(s); the configuration in force keeps serving", len(out.Problems))
	}
	return out
}

// noteFileLoaded remembers the file's content as the one in force, so the
// console can tell when the file on disk differs.
func (i *Instance) noteFileLoaded() error {
	if data, err := os.ReadFile(i.cfgPath); err == nil {
		i.consoleMu.Lock()
		i.loadedSum = sha256.Sum256(data)
		i.consoleMu.Unlock()
	}
	return nil
}

// ConsoleState is the running state for the console (admin.Console).
func (i *Instance) ConsoleState() admin.ConsoleState {
	p := i.pipeline()
	cfg := p.Config
	i.consoleMu.Lock()
	fileCfg, ovs, sum, last := i.fileCfg, slices.Clone(i.overrides), i.loadedSum, i.lastReload
	i.consoleMu.Unlock()
	if fileCfg == nil {
		fileCfg = cfg
	}
	st := admin.ConsoleState{ConfigFile: i.cfgPath, OverridesFile: i.overridesPath(), LastReload: last}
	if i.cfgPath != "" {
		data, err := os.ReadFile(i.cfgPath)
		st.FileDiffers = err != nil || sha256.Sum256(data) != sum
	}
	for k, o := range ovs {
		if si, _ := findRoute(fileCfg, o.Route); si < 0 {
			ovs[k].Stale = true
		}
	}
	st.Overrides = ovs
	limits := func(site, path string, ls []config.RateLimitConfig) []admin.ConsoleLimit {
		var out []admin.ConsoleLimit
		for _, l := range ls {
			n, ok := p.LimitTracked(site, path, l)
			out = append(out, admin.ConsoleLimit{Name: l.Name, Rate: l.Rate, Burst: l.Burst, Key: l.Key, Tracked: n, TrackedKnown: ok})
		}
		return out
	}
	for si, sc := range cfg.Sites {
		site := admin.ConsoleSite{Name: sc.Name, Hosts: sc.Hosts, Limits: limits(sc.Name, "", sc.RateLimits)}
		for ri, rc := range sc.Routes {
			ref := routeRef(sc, ri)
			r := admin.ConsoleRoute{Ref: ref, Upstream: rc.Upstream, Mode: rc.WAF.Mode, FileMode: rc.WAF.Mode,
				Profile: rc.WAF.Profile, Challenge: rc.Challenge, Limits: limits(sc.Name, rc.Path, rc.RateLimits)}
			if rc.WAF.CRS {
				r.Paranoia = rc.WAF.Paranoia
			}
			if fsi, fri := findRoute(fileCfg, ref); fsi >= 0 && fsi == si {
				r.FileMode = fileCfg.Sites[fsi].Routes[fri].WAF.Mode
			}
			for k := range ovs {
				if ovs[k].Route == ref {
					r.Override = &ovs[k]
				}
			}
			site.Routes = append(site.Routes, r)
		}
		st.Sites = append(st.Sites, site)
	}
	health := p.PoolHealth()
	for _, u := range cfg.Upstreams {
		pool := admin.ConsolePool{Name: u.Name}
		for _, t := range health[u.Name] {
			pool.Targets = append(pool.Targets, admin.ConsoleTarget{URL: t.URL, Up: t.Up, Checked: t.Checked, Since: t.Since,
				LastCheck: t.LastCheck, ErrorClass: t.ErrorClass, EjectedUntil: t.EjectedUntil, InFlight: t.InFlight, Served: t.Served})
		}
		st.Pools = append(st.Pools, pool)
	}
	for name, ls := range p.ListStats() {
		st.Lists = append(st.Lists, admin.ConsoleList{Name: name, Feed: ls.Feed, Entries: ls.Entries, LastSuccess: ls.LastSuccess,
			LastFailure: ls.LastFailure, LastError: ls.LastError, Failures: ls.Failures})
	}
	sort.Slice(st.Lists, func(a, b int) bool { return st.Lists[a].Name < st.Lists[b].Name })
	if i.certs != nil {
		renew := i.certs.RenewErrors()
		for host, exp := range i.certs.Expiry() {
			st.Certs = append(st.Certs, admin.ConsoleCert{Host: host, Expiry: exp, RenewError: renew[host]})
		}
		sort.Slice(st.Certs, func(a, b int) bool { return st.Certs[a].Host < st.Certs[b].Host })
	}
	return st
}
