package gateway

import (
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/portcullis-waf/portcullis/cache"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/proxy"
	"github.com/portcullis-waf/portcullis/respond"
)

// route is a configured route with its prebuilt stage chain.
type route struct {
	site    string
	path    string
	match   routeMatch // set by router.add from the site's configuration
	handler http.Handler
	noWAF   http.Handler          // the chain without the rule engine (allow_skips_waf)
	tls     *config.SiteTLSConfig // the site's; nil without TLS
	filters *siteFilters
	limits  []*routeLimit
	cache   *cache.Cache   // nil: the route has no response cache
	pages   *respond.Pages // the site's block_pages; nil: the built-in page
	// challenge: requests need a proof-of-work pass (package challenge)
	// after the cheap filters, before the rule engine.
	challenge bool
}

// forwarding builds the innermost part of a route's chain: the proxy stage
// and, when the route has a cache, the cache in front of it (after the WAF
// and the protocol guard, so every request is inspected before a stored
// response is served). It returns the proxy stage, the handler to put
// after the guard, and the cache.
func forwarding(pool *proxy.Pool, rc *config.RouteConfig) (*proxy.Route, http.Handler, *cache.Cache) {
	fwd := proxy.NewRoute(pool, rc.Proxy)
	if rc.Cache == nil {
		return fwd, fwd, nil
	}
	store := cache.New(*rc.Cache, fwd)
	return fwd, store, store
}

// PurgeCache removes stored responses from every route's cache: those
// under key (cache.Key's form, "https://host/path?query"), or with prefix
// true every key that starts with it. It reports how many were removed.
// The admin API calls it.
func (p *Pipeline) PurgeCache(key string, prefix bool) int {
	n := 0
	for _, s := range p.router.sites() {
		for _, r := range s.routes {
			switch {
			case r.cache == nil:
			case prefix:
				n += r.cache.PurgePrefix(key)
			default:
				n += r.cache.Purge(key)
			}
		}
	}
	return n
}

// sites lists every site once (a site with several hosts is registered
// under each).
func (rt *router) sites() []*site {
	var out []*site
	seen := map[*site]bool{}
	add := func(s *site) {
		if s != nil && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range rt.exact {
		add(s)
	}
	for _, s := range rt.wildcard {
		add(s)
	}
	add(rt.fallback)
	return out
}

// routeMatch is what a request must have, beyond the path prefix, for a
// route to answer it.
type routeMatch struct {
	exact   bool
	re      *regexp.Regexp
	methods []string
	headers []config.MatchConfig
	query   []config.MatchConfig
	conds   int // number of conditions beyond the path, for precedence
}

// site holds a site's routes, most specific first.
type site struct {
	name   string
	routes []*route
}

// router maps a request to a route by host, then path, method, headers and
// query. It is immutable once built.
type router struct {
	exact    map[string]*site // "example.com"
	wildcard map[string]*site // "example.com" for "*.example.com"
	fallback *site            // "*"
}

func newRouter() *router {
	return &router{exact: map[string]*site{}, wildcard: map[string]*site{}}
}

// add registers a site. s.routes[i] must have been built from sc.Routes[i]
// (both Build and NewInspector append them in order): add takes each route's
// conditions from there and sorts the routes by precedence (see
// config.Route): exact paths first, then longer paths, then more
// conditions, then file order.
func (rt *router) add(sc *config.SiteConfig, s *site) {
	for i, r := range s.routes {
		if i < len(sc.Routes) && sc.Routes[i].Path == r.path {
			m := sc.Routes[i].Match
			r.match = routeMatch{exact: m.Exact, re: m.PathRegex, methods: m.Methods, headers: m.Headers, query: m.Query, conds: m.Conditions()}
		}
	}
	sort.SliceStable(s.routes, func(i, j int) bool {
		a, b := s.routes[i], s.routes[j]
		switch {
		case a.match.exact != b.match.exact:
			return a.match.exact
		case len(a.path) != len(b.path):
			return len(a.path) > len(b.path)
		}
		return a.match.conds > b.match.conds
	})
	for _, h := range sc.Hosts {
		switch {
		case h == "*":
			rt.fallback = s
		case strings.HasPrefix(h, "*."):
			rt.wildcard[h[2:]] = s
		default:
			rt.exact[h] = s
		}
	}
}

// lookup finds the route for a request. An exact host beats a wildcard,
// which beats "*"; within the site the first route in precedence order whose
// path and conditions all match wins.
func (rt *router) lookup(r *http.Request) *route {
	s := rt.siteFor(r.Host)
	if s == nil {
		return nil
	}
	p := cleanPath(stripParams(r.URL.Path))
	var query url.Values // parsed once, and only if a route asks
	for _, rr := range s.routes {
		if rr.matches(r, p, &query) {
			return rr
		}
	}
	return nil
}

// matches reports whether the route answers r, whose cleaned path is p.
func (rr *route) matches(r *http.Request, p string, query *url.Values) bool {
	m := &rr.match
	if m.exact {
		if p != rr.path {
			return false
		}
	} else if !pathMatches(rr.path, p) {
		return false
	}
	if len(m.methods) > 0 && !slices.Contains(m.methods, r.Method) {
		return false
	}
	for _, h := range m.headers {
		if !valueMatches(r.Header[h.Name], h) {
			return false
		}
	}
	if len(m.query) > 0 {
		if *query == nil {
			// A malformed pair is skipped, not fatal: the request is judged
			// on the parameters it does have, as the upstream would.
			*query, _ = url.ParseQuery(r.URL.RawQuery)
		}
		for _, q := range m.query {
			if !valueMatches((*query)[q.Name], q) {
				return false
			}
		}
	}
	return m.re == nil || m.re.MatchString(p)
}

// valueMatches: present, and equal to the configured value when there is one.
func valueMatches(vs []string, c config.MatchConfig) bool {
	if len(vs) == 0 {
		return false
	}
	return !c.HasValue || slices.Contains(vs, c.Value)
}

func (rt *router) siteFor(host string) *site {
	h := strings.ToLower(host)
	// Without a colon there is no port, and SplitHostPort would only
	// allocate its error.
	if strings.IndexByte(h, ':') >= 0 {
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
	}
	h = strings.TrimSuffix(h, ".")
	if s, ok := rt.exact[h]; ok {
		return s
	}
	if _, parent, ok := strings.Cut(h, "."); ok {
		if s, ok := rt.wildcard[parent]; ok {
			return s
		}
	}
	return rt.fallback
}

// cleanPath normalises the decoded path before routing so that "/api/../admin"
// is routed as "/admin": the upstream will resolve it that way, and routing
// on the raw form would let a client pick another route's WAF settings.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// stripParams removes path parameters (";" up to the end of the segment)
// from every segment: "/admin;jsessionid=x/page" is "/admin/page" to
// servlet containers and many frameworks, so it must take the /admin
// route, not escape its WAF settings through a route such as "/".
func stripParams(p string) string {
	i := strings.IndexByte(p, ';')
	if i < 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i >= 0 {
		b.WriteString(p[:i])
		p = p[i:]
		if j := strings.IndexByte(p, '/'); j >= 0 {
			p = p[j:]
		} else {
			p = ""
		}
		i = strings.IndexByte(p, ';')
	}
	b.WriteString(p)
	return b.String()
}

// pathMatches reports whether route path rp covers request path p. A route
// "/api" covers "/api" and "/api/..." but not "/apix"; "/api/" covers "/api/...".
func pathMatches(rp, p string) bool {
	if !strings.HasPrefix(p, rp) {
		return false
	}
	return len(p) == len(rp) || strings.HasSuffix(rp, "/") || p[len(rp)] == '/'
}
