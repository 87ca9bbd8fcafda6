package admin

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/audit/store"
)

// The operator's console (/console): every site and route with its WAF
// mode, the upstream pools and each target's health, rate limits, bans,
// IP lists, certificates; a reload button that checks the file as
// `portcullis check` does before applying it; and a switch per route
// between detect and block, behind a confirmation page. Every action is
// recorded in the action log (actions.go). The state comes from the
// composition through Console; admin never reads a stage itself.

// Console is what the composition (package instance) gives the console
// (Options.Console). Nil: no console.
type Console interface {
	// ConsoleState is a snapshot of the running state. It must be cheap:
	// it is read on every view of the page.
	ConsoleState() ConsoleState
	// CheckAndReload checks the configuration file as `portcullis check`
	// does and, when it has no problem, switches to it as a reload does.
	// A refused file changes nothing; its problems are listed.
	CheckAndReload(by string) ConsoleResult
	// SetRouteMode switches one route's WAF mode (detect or block) by
	// applying the configuration in force with that change, as POST
	// /api/config would, and keeps the change across reloads and restarts
	// (see the README). by names who asked.
	SetRouteMode(route RouteRef, mode, by string) ConsoleResult
}

// RouteRef names one route of the configuration file: its site, its path,
// and which of the site's routes with that path it is (0 for the first;
// routes may share a path and differ by method or header).
type RouteRef struct {
	Site string `json:"site"`
	Path string `json:"path"`
	Nth  int    `json:"nth,omitempty"`
}

func (r RouteRef) String() string {
	s := r.Site + " " + r.Path
	if r.Nth > 0 {
		s += " (#" + strconv.Itoa(r.Nth+1) + ")"
	}
	return s
}

// ConsoleResult is the outcome of a console action.
type ConsoleResult struct {
	OK bool `json:"ok"`
	// Message says what happened, for people.
	Message  string `json:"message"`
	Duration string `json:"duration,omitempty"`
	// Problems are every problem of a refused configuration, one line of
	// `portcullis check` each (file:line: field: reason).
	Problems []string `json:"problems,omitempty"`
}

// ConsoleState is the console's view of the running instance.
type ConsoleState struct {
	ConfigFile string `json:"config_file"`
	// FileDiffers is set when the configuration file on disk is not the
	// one in force (edited since, or a configuration was posted without
	// persisting it): Reload would apply the file.
	FileDiffers bool           `json:"file_differs"`
	Sites       []ConsoleSite  `json:"sites"`
	Pools       []ConsolePool  `json:"pools"`
	Lists       []ConsoleList  `json:"lists"`
	Certs       []ConsoleCert  `json:"certificates"`
	LastReload  *ReloadResult  `json:"last_reload,omitempty"`
	Overrides   []ModeOverride `json:"overrides,omitempty"`
	// OverridesFile is where the mode switches are kept.
	OverridesFile string `json:"overrides_file,omitempty"`
}

// ConsoleSite is one site with its routes.
type ConsoleSite struct {
	Name   string         `json:"name"`
	Hosts  []string       `json:"hosts"`
	Limits []ConsoleLimit `json:"rate_limits,omitempty"` // one budget for every route
	Routes []ConsoleRoute `json:"routes"`
}

// ConsoleRoute is one route.
type ConsoleRoute struct {
	Ref      RouteRef `json:"route"`
	Upstream string   `json:"upstream"`
	// Mode is the WAF mode in force; FileMode the configuration file's.
	// They differ while a switch made in the console is in force.
	Mode      string         `json:"mode"`
	FileMode  string         `json:"file_mode"`
	Profile   string         `json:"profile"`
	Paranoia  int            `json:"paranoia,omitempty"`
	Challenge bool           `json:"challenge,omitempty"`
	Override  *ModeOverride  `json:"override,omitempty"`
	Limits    []ConsoleLimit `json:"rate_limits,omitempty"`
}

// ModeOverride is a WAF mode switched in the console, kept across reloads.
type ModeOverride struct {
	Route RouteRef  `json:"route"`
	Mode  string    `json:"mode"`
	By    string    `json:"by"`
	At    time.Time `json:"at"`
	// Stale is set when no route of the configuration file matches: the
	// override is kept but applies to nothing.
	Stale bool `json:"stale,omitempty"`
}

// ConsoleLimit is one rate limit.
type ConsoleLimit struct {
	Name  string  `json:"name"`
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
	Key   string  `json:"key"`
	// Tracked is how many keys the limit tracks now; TrackedKnown is
	// false when that is not cheap to know (a limit shared by Redis).
	Tracked      int  `json:"tracked"`
	TrackedKnown bool `json:"tracked_known"`
}

// ConsolePool is one upstream pool.
type ConsolePool struct {
	Name    string          `json:"name"`
	Targets []ConsoleTarget `json:"targets"`
}

// ConsoleTarget is one target's health. ErrorClass is the kind of the last
// failed check ("timeout", "connection refused", "status 503"), never the
// upstream's error text.
type ConsoleTarget struct {
	URL          string    `json:"url"`
	Up           bool      `json:"up"`
	Checked      bool      `json:"checked"`
	Since        time.Time `json:"since,omitzero"`
	LastCheck    time.Time `json:"last_check,omitzero"`
	ErrorClass   string    `json:"error_class,omitempty"`
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	InFlight     int64     `json:"in_flight"`
	Served       uint64    `json:"served"`
}

// ConsoleList is one IP list.
type ConsoleList struct {
	Name        string    `json:"name"`
	Feed        bool      `json:"feed"`
	Entries     int       `json:"entries"`
	LastSuccess time.Time `json:"last_refresh,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Failures    uint64    `json:"failures"`
}

// ConsoleCert is one certificate in use.
type ConsoleCert struct {
	Host       string    `json:"host"`
	Expiry     time.Time `json:"expiry"`
	RenewError string    `json:"renew_error,omitempty"`
}

// certWarn is how close to its expiry a certificate is shown as a warning.
const certWarn = 14 * 24 * time.Hour

// refusalWindow is how far back the console counts rate-limit refusals
// (from the audit records), and refusalScan how many records it reads.
const (
	refusalWindow = time.Hour
	refusalScan   = 2000
)

func (s *Server) consoleRoutes() {
	if s.opts.Console == nil {
		return
	}
	page := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.authenticated(h, true)) }
	api := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.authenticated(h, false)) }
	page("GET /console", s.consolePage)
	page("POST /console/reload", s.consoleReload)
	page("GET /console/mode", s.consoleModeConfirm)
	page("POST /console/mode", s.consoleMode)
	api("GET /api/console", s.apiConsole)
}

// via names where a request came from, for the action log.
func via(r *http.Request) string {
	switch {
	case principalFrom(r.Context()).Kind == "token", strings.HasPrefix(r.URL.Path, "/api/"):
		return "api"
	case strings.HasPrefix(r.URL.Path, "/console"):
		return "console"
	}
	return "dashboard"
}

func who(r *http.Request) string {
	p := principalFrom(r.Context())
	if p.Kind == "none" {
		return "local"
	}
	return p.Name
}

// ---- view ----

type consoleView struct {
	State       ConsoleState
	Sites       []siteView
	Pools       []poolView
	Lists       []listView
	Certs       []certView
	Bans        *banSummary
	Actions     []actionView
	Result      *actionView // the action just done (?done=ID)
	RefusalSpan string
	Differs     int // routes whose mode differs from the file
}

type siteView struct {
	Name   string
	Hosts  string
	Limits []limitView
	Routes []routeView
}

type routeView struct {
	ConsoleRoute
	ID       string // for element ids
	Differs  bool
	SwitchTo string // the other of detect and block
	SwitchURL,
	BackURL string // back to the file's mode, when it differs
	OverrideBy string
	Limits     []limitView
}

type limitView struct {
	ConsoleLimit
	Refused int
}

type poolView struct {
	Name    string
	Up      int
	Targets []targetView
}

type targetView struct {
	ConsoleTarget
	State, Class string
	SinceText    string
	CheckText    string
}

type listView struct {
	ConsoleList
	Refreshed, Failed string
	Stale             bool // the last failure is newer than the last success
}

type certView struct {
	ConsoleCert
	ExpiryText, Left, Class string
}

type banSummary struct {
	Count  int
	Newest []banRow
}

type actionView struct {
	Action
	When string
}

func (s *Server) consolePage(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	st := s.opts.Console.ConsoleState()
	v := consoleView{State: st, RefusalSpan: "1h"}
	refused := s.refusals(r.Context(), now)
	for _, site := range st.Sites {
		sv := siteView{Name: site.Name, Hosts: strings.Join(site.Hosts, ", "), Limits: limitViews(site.Limits, refused, site.Name, "")}
		for _, rt := range site.Routes {
			rv := routeView{ConsoleRoute: rt, ID: elementID(rt.Ref), Differs: rt.Mode != rt.FileMode,
				Limits: limitViews(rt.Limits, refused, site.Name, rt.Ref.Path)}
			switch rt.Mode {
			case "block":
				rv.SwitchTo = "detect"
			case "detect":
				rv.SwitchTo = "block"
			}
			if rv.SwitchTo != "" {
				rv.SwitchURL = modeURL(rt.Ref, rv.SwitchTo)
			}
			if rv.Differs && (rt.FileMode == "block" || rt.FileMode == "detect") && rt.FileMode != rv.SwitchTo {
				rv.BackURL = modeURL(rt.Ref, rt.FileMode)
			}
			if rv.Differs {
				v.Differs++
			}
			sv.Routes = append(sv.Routes, rv)
		}
		v.Sites = append(v.Sites, sv)
	}
	for _, p := range st.Pools {
		pv := poolView{Name: p.Name}
		for _, t := range p.Targets {
			tv := targetView{ConsoleTarget: t, State: "up", Class: "ok"}
			switch {
			case !t.Up:
				tv.State, tv.Class = "down", "bad"
			case !t.EjectedUntil.IsZero():
				tv.State, tv.Class = "ejected until "+clock(t.EjectedUntil), "warn"
			default:
				pv.Up++
			}
			if !t.Checked {
				tv.CheckText = "no active check"
			} else if !t.LastCheck.IsZero() {
				tv.CheckText = ago(now, t.LastCheck)
			}
			if !t.Since.IsZero() {
				tv.SinceText = clock(t.Since) + " (" + ago(now, t.Since) + ")"
			}
			pv.Targets = append(pv.Targets, tv)
		}
		v.Pools = append(v.Pools, pv)
	}
	for _, l := range st.Lists {
		lv := listView{ConsoleList: l}
		if !l.LastSuccess.IsZero() {
			lv.Refreshed = clock(l.LastSuccess) + " (" + ago(now, l.LastSuccess) + ")"
		}
		if !l.LastFailure.IsZero() {
			lv.Failed = clock(l.LastFailure)
			lv.Stale = l.LastFailure.After(l.LastSuccess)
		}
		v.Lists = append(v.Lists, lv)
	}
	for _, c := range st.Certs {
		cv := certView{ConsoleCert: c, ExpiryText: clock(c.Expiry), Class: "ok"}
		left := c.Expiry.Sub(now)
		switch {
		case left <= 0:
			cv.Left, cv.Class = "expired", "bad"
		case left < certWarn:
			cv.Left, cv.Class = days(left)+" left", "warn"
		default:
			cv.Left = days(left) + " left"
		}
		v.Certs = append(v.Certs, cv)
	}
	if s.opts.Bans != nil {
		list := s.opts.Bans.List(now)
		sort.Slice(list, func(i, j int) bool { return list[i].Created.After(list[j].Created) })
		bs := &banSummary{Count: len(list)}
		for _, b := range list[:min(len(list), 5)] {
			bs.Newest = append(bs.Newest, s.banRow(b, now))
		}
		v.Bans = bs
	}
	for _, a := range s.actions.list(20) {
		v.Actions = append(v.Actions, actionView{Action: a, When: clock(a.Time)})
	}
	if id := r.URL.Query().Get("done"); id != "" {
		if a, ok := s.actions.get(id); ok {
			v.Result = &actionView{Action: a, When: clock(a.Time)}
		}
	}
	s.render(w, r, http.StatusOK, "console", "Console", v)
}

func limitViews(ls []ConsoleLimit, refused map[string]int, site, path string) []limitView {
	var out []limitView
	for _, l := range ls {
		out = append(out, limitView{ConsoleLimit: l, Refused: refused[site+"\x00"+path+"\x00"+l.Name]})
	}
	return out
}

// refusals counts the rate-limit refusals of the last refusalWindow from
// the audit records, by site, route and limit name; a site's limits are
// counted under path "" whatever the route. It reads at most refusalScan
// records: the console shows a sign of load, not an exact figure.
func (s *Server) refusals(ctx context.Context, now time.Time) map[string]int {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	res, err := s.opts.Store.Search(ctx, query.Filter{Since: now.Add(-refusalWindow), Stages: []string{audit.StageRateLimit}}, store.Page{Limit: refusalScan})
	if err != nil {
		s.log.Warn("admin: console could not count rate-limit refusals", "err", err)
		return nil
	}
	out := map[string]int{}
	for _, e := range res.Entries {
		name, ok := strings.CutPrefix(e.Reason, "rate limit ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " (")
		out[e.Site+"\x00"+e.Route+"\x00"+name]++
		out[e.Site+"\x00\x00"+name]++
	}
	return out
}

func elementID(r RouteRef) string {
	var b strings.Builder
	b.WriteString("route-")
	for _, c := range r.Site + "-" + r.Path + "-" + strconv.Itoa(r.Nth) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func modeURL(r RouteRef, mode string) string {
	v := url.Values{"site": {r.Site}, "path": {r.Path}, "nth": {strconv.Itoa(r.Nth)}, "mode": {mode}}
	return "/console/mode?" + v.Encode()
}

func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	if n == 1 {
		return "1 day"
	}
	if n == 0 {
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	return strconv.Itoa(n) + " days"
}

// ago says how long before now t was, roughly.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}

// ---- actions ----

func (s *Server) consoleReload(w http.ResponseWriter, r *http.Request) {
	user := who(r)
	res := s.opts.Console.CheckAndReload("admin console (" + user + ")")
	a := s.record(Action{User: user, Via: via(r), What: "reload", Target: s.opts.Console.ConsoleState().ConfigFile,
		OK: res.OK, Result: res.Message, Problems: res.Problems})
	http.Redirect(w, r, "/console?done="+strconv.Itoa(a.ID)+"#result", http.StatusSeeOther)
}

type modeConfirmView struct {
	Route    ConsoleRoute
	Site     string
	To       string
	Nth      string
	Warning  string
	BackHome string
}

// routeFromForm finds the route a form or query names in the state.
func routeFromForm(st ConsoleState, v url.Values) (ConsoleRoute, bool) {
	nth, err := strconv.Atoi(v.Get("nth"))
	if err != nil && v.Get("nth") != "" {
		return ConsoleRoute{}, false
	}
	ref := RouteRef{Site: v.Get("site"), Path: v.Get("path"), Nth: nth}
	for _, site := range st.Sites {
		for _, rt := range site.Routes {
			if rt.Ref == ref {
				return rt, true
			}
		}
	}
	return ConsoleRoute{}, false
}

func validMode(m string) bool { return m == "detect" || m == "block" }

// consoleModeConfirm is the confirmation step: it changes nothing, and
// its form posts the switch.
func (s *Server) consoleModeConfirm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mode := q.Get("mode")
	rt, ok := routeFromForm(s.opts.Console.ConsoleState(), q)
	switch {
	case !validMode(mode):
		s.fail(w, r, http.StatusBadRequest, "mode must be detect or block")
		return
	case !ok:
		s.fail(w, r, http.StatusNotFound, "no such route in the configuration in force")
		return
	}
	v := modeConfirmView{Route: rt, Site: rt.Ref.Site, To: mode, Nth: strconv.Itoa(rt.Ref.Nth)}
	switch {
	case mode == rt.Mode:
		v.Warning = "The route is already in " + mode + " mode."
	case mode == "detect":
		v.Warning = "In detect mode the rule engine only records attacks on this route; it no longer refuses them. Requests it would have blocked reach the upstream."
	default:
		v.Warning = "In block mode the rule engine refuses the requests it judges attacks on this route: legitimate requests it mistakes for attacks will be refused too."
	}
	s.render(w, r, http.StatusOK, "console_mode", "Switch WAF mode", v)
}

// consoleMode applies a confirmed switch.
func (s *Server) consoleMode(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	mode := f.Get("mode")
	rt, ok := routeFromForm(s.opts.Console.ConsoleState(), f)
	switch {
	case !validMode(mode):
		s.fail(w, r, http.StatusBadRequest, "mode must be detect or block")
		return
	case !ok:
		s.fail(w, r, http.StatusNotFound, "no such route in the configuration in force")
		return
	case f.Get("confirm") != "yes":
		s.fail(w, r, http.StatusBadRequest, "the switch was not confirmed")
		return
	}
	user := who(r)
	res := s.opts.Console.SetRouteMode(rt.Ref, mode, user)
	a := s.record(Action{User: user, Via: via(r), What: "waf mode", Target: rt.Ref.String() + ": " + rt.Mode + " → " + mode,
		OK: res.OK, Result: res.Message, Problems: res.Problems})
	http.Redirect(w, r, "/console?done="+strconv.Itoa(a.ID)+"#result", http.StatusSeeOther)
}

// apiConsole answers the console's state as JSON.
func (s *Server) apiConsole(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.opts.Console.ConsoleState())
}

// apiActions answers the action log, newest first (?limit=N, default 100).
func (s *Server) apiActions(w http.ResponseWriter, r *http.Request) {
	n := 100
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l > 0 {
		n = min(l, maxActions)
	}
	writeJSON(w, http.StatusOK, map[string]any{"actions": s.actions.list(n)})
}
