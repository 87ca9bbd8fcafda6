package gateway

import (
	"net"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/portcullis-waf/portcullis/config"
)

// route is a configured route with its prebuilt stage chain.
type route struct {
	site    string
	path    string
	handler http.Handler
	noWAF   http.Handler          // the chain without the rule engine (allow_skips_waf)
	tls     *config.SiteTLSConfig // the site's; nil without TLS
	filters *siteFilters
	limits  []*routeLimit
}

// site holds a site's routes, longest path first.
type site struct {
	name   string
	routes []*route
}

// router maps (host, path) to a route. It is immutable once built.
type router struct {
	exact    map[string]*site // "example.com"
	wildcard map[string]*site // "example.com" for "*.example.com"
	fallback *site            // "*"
}

func newRouter() *router {
	return &router{exact: map[string]*site{}, wildcard: map[string]*site{}}
}

func (rt *router) add(sc *config.SiteConfig, s *site) {
	sort.SliceStable(s.routes, func(i, j int) bool { return len(s.routes[i].path) > len(s.routes[j].path) })
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

// lookup finds the route for a request's Host and path. An exact host beats a
// wildcard, which beats "*"; within a site the longest matching path wins.
func (rt *router) lookup(host, reqPath string) *route {
	s := rt.siteFor(host)
	if s == nil {
		return nil
	}
	p := cleanPath(reqPath)
	for _, r := range s.routes {
		if pathMatches(r.path, p) {
			return r
		}
	}
	return nil
}

func (rt *router) siteFor(host string) *site {
	h := strings.ToLower(host)
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
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

// pathMatches reports whether route path rp covers request path p. A route
// "/api" covers "/api" and "/api/..." but not "/apix"; "/api/" covers "/api/...".
func pathMatches(rp, p string) bool {
	if !strings.HasPrefix(p, rp) {
		return false
	}
	return len(p) == len(rp) || strings.HasSuffix(rp, "/") || p[len(rp)] == '/'
}
