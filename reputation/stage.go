package reputation

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/challenge"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/respond"
)

// Sources are the named IP lists and the GeoIP databases of one
// configuration, which the allow, deny and GeoIP stages of every site look
// up. They own the lists' feed refreshes and the databases' file watching
// (Start, Close), and on a reload a list or database built from unchanged
// settings is taken over rather than built again, so feeds are not fetched
// again (TakeOver).
type Sources struct {
	lists   map[string]*List
	listCfg map[string]config.ListConfig
	geo     *GeoIP // nil without databases
	geoCfg  config.GeoIPConfig
	// challenger answers deny lists and GeoIP rules with action: challenge
	// (nil: they block); observe counts those answers.
	challenger *challenge.Challenger
	observe    func(stage, result string)
	// inherited are resources taken over from the previous configuration
	// that these Sources do not own yet (until the reload commits);
	// released are resources a successor took over. Close leaves both.
	inherited, released map[any]bool
}

// SourcesOptions say how Sources are built.
type SourcesOptions struct {
	Log *slog.Logger
	// From are the previous configuration's sources on a reload (nil at
	// start): unchanged lists and databases are taken over.
	From *Sources
	// Check builds for `portcullis check`: no feed is fetched and nothing
	// is cached (a list that is only a feed is skipped), no goroutine runs.
	Check bool
}

// NewSources opens the lists and GeoIP databases of cfg. Lists load side
// by side: each may wait for a feed (up to its fetch timeout), and a start
// must not take the sum of those waits. Every problem is returned, as
// config.Errors naming the list or the geoip section.
func NewSources(cfg *config.Config, opts SourcesOptions) (*Sources, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	from := opts.From
	s := &Sources{lists: map[string]*List{}, listCfg: map[string]config.ListConfig{}, geoCfg: cfg.GeoIP, inherited: map[any]bool{}}
	lists := make([]*List, len(cfg.Lists))
	errs := make([]error, len(cfg.Lists))
	var wg sync.WaitGroup
	for i, lc := range cfg.Lists {
		s.listCfg[lc.Name] = lc
		if from != nil && from.lists[lc.Name] != nil && reflect.DeepEqual(from.listCfg[lc.Name], lc) {
			lists[i] = from.lists[lc.Name]
			s.inherited[lists[i]] = true
			continue
		}
		lcfg := Config{Name: lc.Name, Inline: lc.Inline, File: lc.File, URL: lc.URL,
			Refresh: lc.Refresh, MaxShrink: lc.MaxShrink, Log: log}
		if opts.Check {
			if len(lc.Inline) == 0 && lc.File == "" {
				continue // a feed only: fetched at run time, not by check
			}
			lcfg.URL, lcfg.Log = "", nil
		} else if lc.URL != "" {
			lcfg.CacheFile = filepath.Join(cfg.TLS.StateDir, "feeds", url.PathEscape(lc.Name)+".netset")
		}
		wg.Go(func() { lists[i], errs[i] = NewList(lcfg) })
	}
	wg.Wait()
	var problems config.Errors
	for i, lc := range cfg.Lists {
		if lists[i] != nil {
			s.lists[lc.Name] = lists[i]
		}
		if errs[i] != nil {
			problems = append(problems, &config.FieldError{File: cfg.Source, Path: fmt.Sprintf("reputation.lists[%d]", i), Msg: errs[i].Error()})
		}
	}
	if from != nil && from.geo != nil && from.geoCfg == cfg.GeoIP {
		s.geo = from.geo
		s.inherited[s.geo] = true
	} else if cfg.GeoIP.CountryDB != "" || cfg.GeoIP.ASNDB != "" {
		var glog *slog.Logger
		if !opts.Check {
			glog = log
		}
		g, err := OpenGeoIP(cfg.GeoIP.CountryDB, cfg.GeoIP.ASNDB, glog)
		if err != nil {
			problems = append(problems, &config.FieldError{File: cfg.Source, Path: "reputation.geoip", Msg: err.Error()})
		} else {
			s.geo = g
		}
	}
	if len(problems) > 0 {
		s.Close()
		return nil, problems
	}
	return s, nil
}

// Start begins feed refreshes and file watching.
func (s *Sources) Start() {
	if s == nil {
		return
	}
	for _, l := range s.lists {
		l.Start()
	}
	if s.geo != nil {
		s.geo.Start(time.Minute)
	}
}

// Close stops what these sources own (not what they inherited and not yet
// took over, nor what a successor took over).
func (s *Sources) Close() {
	if s == nil {
		return
	}
	for _, l := range s.lists {
		if s.owns(l) {
			l.Stop()
		}
	}
	if s.geo != nil && s.owns(s.geo) {
		s.geo.Stop()
	}
}

func (s *Sources) owns(r any) bool { return !s.inherited[r] && !s.released[r] }

// TakeOver commits a reload: s becomes the owner of what it inherited from
// prev, which keeps serving its in-flight requests.
func (s *Sources) TakeOver(prev *Sources) {
	if s == nil || prev == nil {
		return
	}
	prev.released = s.inherited
	s.inherited = map[any]bool{}
}

// ListStat is one list's health, for metrics and alerts.
type ListStat struct {
	Stats
	Feed bool // the list is fetched from a URL
}

// ListStats returns the health of every list, by name.
func (s *Sources) ListStats() map[string]ListStat {
	if s == nil {
		return nil
	}
	out := make(map[string]ListStat, len(s.lists))
	for name, l := range s.lists {
		out[name] = ListStat{Stats: l.Stats(), Feed: s.listCfg[name].URL != ""}
	}
	return out
}

// Locate adds country and ASN to the record when databases are configured.
// The gateway calls it for every request, before routing: the record of a
// request for an unknown host has them too.
func (s *Sources) Locate(e *audit.Entry) {
	if s == nil || s.geo == nil || !e.Addr.IsValid() {
		return
	}
	loc := s.geo.Lookup(e.Addr)
	e.Country, e.ASN, e.ASOrg = loc.Country, loc.ASN, loc.ASOrg
}

func (s *Sources) named(names []string) []*List {
	out := make([]*List, 0, len(names))
	for _, n := range names {
		if l := s.lists[n]; l != nil {
			out = append(out, l)
		}
	}
	return out
}

// allowStage passes a client on one of the site's allow lists to listed,
// every other client to next.
type allowStage struct {
	lists        []*List
	next, listed http.Handler
}

// NewAllow returns the allow-list stage of a site (filters.allow_lists):
// a listed client is named in the record (allow_listed) and skips the other
// cheap stages, going to listed instead of next; the chain decides what
// listed is (the rule engine, or past it with filters.allow_skips_waf).
// It returns next itself when the site has no allow list.
func (s *Sources) NewAllow(fc config.FiltersConfig, next, listed http.Handler) http.Handler {
	if s == nil || len(fc.AllowLists) == 0 {
		return next
	}
	return &allowStage{lists: s.named(fc.AllowLists), next: next, listed: listed}
}

func (a *allowStage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := audit.FromContext(r.Context())
	if e.Addr.IsValid() {
		for _, l := range a.lists {
			if entry, hit := l.Lookup(e.Addr); hit {
				e.AllowListed = l.Name() + ": " + entry.String()
				a.listed.ServeHTTP(w, r)
				return
			}
		}
	}
	a.next.ServeHTTP(w, r)
}

// ChallengeWith makes deny lists and GeoIP rules with action: challenge
// answer with c (stages built after this call); observe, when not nil,
// counts the answers by stage and result (metrics). Without it they block.
func (s *Sources) ChallengeWith(c *challenge.Challenger, observe func(stage, result string)) {
	if s != nil {
		s.challenger, s.observe = c, observe
	}
}

// answer returns the challenge answer of a filter with action, or nil to
// block.
func (s *Sources) answer(action, stage string) *challenge.Answer {
	if s == nil || s.challenger == nil || action != config.ActionChallenge {
		return nil
	}
	return challenge.NewAnswer(s.challenger, stage, http.StatusForbidden, s.observe)
}

// denyStage refuses a client on one of the site's deny lists.
type denyStage struct {
	lists  []*List
	answer *challenge.Answer // nil: block
	next   http.Handler
}

// NewDeny returns the deny-list stage of a site (filters.deny_lists): a
// listed client gets 403 and a record naming the list and the entry. With
// filters.deny_lists_action: challenge it gets the challenge page instead
// (403, the same record saying so), and once it solved it, its pass lets
// it past the deny lists (see challenge.Answer). It returns next itself
// when the site has no deny list.
func (s *Sources) NewDeny(fc config.FiltersConfig, next http.Handler) http.Handler {
	if s == nil || len(fc.DenyLists) == 0 {
		return next
	}
	return &denyStage{lists: s.named(fc.DenyLists), answer: s.answer(fc.DenyListsAction, audit.StageReputation), next: next}
}

func (d *denyStage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := audit.FromContext(r.Context())
	if e.Addr.IsValid() {
		for _, l := range d.lists {
			if entry, hit := l.Lookup(e.Addr); hit {
				if hitAnswered(w, r, e, d.answer, audit.StageReputation, fmt.Sprintf("on deny list %s (entry %s)", l.Name(), entry)) {
					d.next.ServeHTTP(w, r)
				}
				return
			}
		}
	}
	d.next.ServeHTTP(w, r)
}

// hitAnswered answers a client that hit a filter for reason: with a, the
// challenge (true: it has or just earned a pass, let it go on), without,
// 403 (false).
func hitAnswered(w http.ResponseWriter, r *http.Request, e *audit.Entry, a *challenge.Answer, stage, reason string) bool {
	switch {
	case a == nil:
		refuse(w, r, e, stage, reason)
		return false
	case a.Passed(r, e):
		a.Note(challenge.ResultPassed)
		return true
	default:
		return a.Serve(w, r, e, reason, nil)
	}
}

// geoStage applies a site's country and ASN rules to what Locate found.
type geoStage struct {
	countryAllow, countryDeny []string
	denyASNs                  []uint
	answer                    *challenge.Answer // nil: block
	next                      http.Handler
}

// NewGeoIP returns the GeoIP stage of a site (filters.country_allow,
// country_deny, deny_asns): a refused client gets 403 and a record naming
// the country or AS; with filters.geoip_action: challenge, the challenge
// page instead, as NewDeny. It returns next itself when the site has no
// such rule.
func (s *Sources) NewGeoIP(fc config.FiltersConfig, next http.Handler) http.Handler {
	if len(fc.CountryAllow) == 0 && len(fc.CountryDeny) == 0 && len(fc.DenyASNs) == 0 {
		return next
	}
	return &geoStage{countryAllow: fc.CountryAllow, countryDeny: fc.CountryDeny, denyASNs: fc.DenyASNs,
		answer: s.answer(fc.GeoIPAction, audit.StageGeoIP), next: next}
}

func (g *geoStage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := audit.FromContext(r.Context())
	reason := ""
	switch {
	case !e.Addr.IsValid():
	case len(g.countryAllow) > 0 && !slices.Contains(g.countryAllow, e.Country):
		reason = fmt.Sprintf("country %q is not allowed", e.Country)
	case e.Country != "" && slices.Contains(g.countryDeny, e.Country):
		reason = fmt.Sprintf("country %s is denied", e.Country)
	case e.ASN != 0 && slices.Contains(g.denyASNs, e.ASN):
		reason = fmt.Sprintf("AS%d (%s) is denied", e.ASN, e.ASOrg)
	}
	if reason != "" && !hitAnswered(w, r, e, g.answer, audit.StageGeoIP, reason) {
		return
	}
	g.next.ServeHTTP(w, r)
}

func refuse(w http.ResponseWriter, r *http.Request, e *audit.Entry, stage, reason string) {
	e.Block(stage, reason)
	respond.Error(w, r, http.StatusForbidden, e.ID)
}

var (
	_ http.Handler = (*allowStage)(nil)
	_ http.Handler = (*denyStage)(nil)
	_ http.Handler = (*geoStage)(nil)
)
