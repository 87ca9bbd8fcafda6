package gateway

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/config"
)

func TestRouterLookup(t *testing.T) {
	rt := newRouter()
	mk := func(name string, hosts []string, paths ...string) {
		s := &site{name: name}
		for _, p := range paths {
			s.routes = append(s.routes, &route{site: name, path: p, handler: http.NotFoundHandler()})
		}
		rt.add(&config.SiteConfig{Name: name, Hosts: hosts}, s)
	}
	mk("shop", []string{"shop.example"}, "/", "/api", "/api/admin/")
	mk("wild", []string{"*.example"}, "/")
	mk("any", []string{"*"}, "/static/")
	tests := []struct {
		host, path  string
		site, route string
	}{
		{"shop.example", "/", "shop", "/"},
		{"SHOP.example:8443", "/api", "shop", "/api"},
		{"shop.example", "/api/users", "shop", "/api"},
		{"shop.example", "/apix", "shop", "/"},
		{"shop.example", "/api/admin/x", "shop", "/api/admin/"},
		{"shop.example", "/api/admin", "shop", "/api"},
		{"shop.example", "/api/../api/admin/x", "shop", "/api/admin/"},
		{"shop.example", "/api/admin/../../other", "shop", "/"},
		// A path parameter ends its segment, as in servlet containers.
		{"shop.example", "/api;jsessionid=1", "shop", "/api"},
		{"shop.example", "/api;v=2/admin/x", "shop", "/api/admin/"},
		{"shop.example", "/api/admin;x/y", "shop", "/api/admin/"},
		{"shop.example", "/api/admin;x", "shop", "/api"},
		{"shop.example", "/apix;y", "shop", "/"},
		{"shop.example", "/other;x/../api/admin/x", "shop", "/api/admin/"},
		{"shop.example.", "/", "shop", "/"},
		{"blog.example", "/post", "wild", "/"},
		{"a.b.example", "/post", "any", ""}, // one level only; "*" has no "/" route
		{"other.test", "/static/app.js", "any", "/static/"},
		{"other.test", "/", "", ""},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "http://x"+tt.path, nil)
		req.Host = tt.host
		r := rt.lookup(req)
		switch {
		case tt.route == "" && r != nil:
			t.Errorf("%s%s: got %s %s, want no route", tt.host, tt.path, r.site, r.path)
		case tt.route != "" && (r == nil || r.site != tt.site || r.path != tt.route):
			t.Errorf("%s%s: got %+v, want %s %s", tt.host, tt.path, r, tt.site, tt.route)
		}
	}
}

// TestRouterRequestTypes covers routing on path_match, path_regex, methods,
// headers and query parameters, and the precedence between routes (#7).
func TestRouterRequestTypes(t *testing.T) {
	routes := []*config.RouteConfig{
		{Path: "/"},
		{Path: "/api/"},
		{Path: "/api/", Match: config.RouteMatch{Methods: []string{"POST", "PUT"}}},
		{Path: "/api/", Match: config.RouteMatch{Methods: []string{"POST"}, Headers: []config.MatchConfig{{Name: "X-Api-Version", Value: "2", HasValue: true}}}},
		{Path: "/api/", Match: config.RouteMatch{Headers: []config.MatchConfig{{Name: "X-Beta"}}}},
		{Path: "/api/", Match: config.RouteMatch{Query: []config.MatchConfig{{Name: "format", Value: "csv", HasValue: true}}}},
		{Path: "/api/", Match: config.RouteMatch{PathRegex: regexp.MustCompile(`^/api/v[0-9]+/`)}},
		{Path: "/login", Match: config.RouteMatch{Exact: true}},
		{Path: "/login"},
		{Path: "/grpc.", Match: config.RouteMatch{Headers: []config.MatchConfig{{Name: "Content-Type", Value: "application/grpc", HasValue: true}}}},
	}
	rt := newRouter()
	s := &site{name: "s"}
	pos := map[*route]int{} // the position in routes
	for i, rc := range routes {
		r := &route{site: "s", path: rc.Path, handler: http.NotFoundHandler()}
		pos[r] = i
		s.routes = append(s.routes, r)
	}
	rt.add(&config.SiteConfig{Name: "s", Hosts: []string{"s.test"}, Routes: routes}, s)
	index := func(r *route) int { return pos[r] }
	tests := []struct {
		method, target string
		header         http.Header
		want           int
	}{
		{"GET", "/", nil, 0},
		{"GET", "/api/users", nil, 1},
		{"POST", "/api/users", nil, 2},
		{"PUT", "/api/users", nil, 2},
		{"POST", "/api/users", http.Header{"X-Api-Version": {"2"}}, 3}, // two conditions beat one
		{"POST", "/api/users", http.Header{"X-Api-Version": {"3"}}, 2}, // value must match
		{"GET", "/api/users", http.Header{"X-Beta": {""}}, 4},          // presence only
		{"GET", "/api/users?format=csv", nil, 5},                       // query value
		{"GET", "/api/users?format=json", nil, 1},                      // wrong value
		{"GET", "/api/users?x=1&format=csv&format=xml", nil, 5},        // any of the values
		{"GET", "/api/v2/users", nil, 6},                               // regex
		{"GET", "/api/x/../v2/users", nil, 6},                          // regex sees the cleaned path
		{"GET", "/api/vX/users", nil, 1},                               // regex fails
		{"GET", "/login", nil, 7},                                      // exact beats prefix
		{"GET", "/login/reset", nil, 8},                                // prefix only
		{"GET", "/loginx", nil, 0},                                     // segment-aware prefix
		{"GET", "/api/", nil, 1},
		{"POST", "/api", nil, 0}, // "/api/" does not cover "/api"
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, "http://s.test"+tt.target, nil)
		for k, v := range tt.header {
			req.Header[k] = v
		}
		r := rt.lookup(req)
		if r == nil || index(r) != tt.want {
			got := -1
			if r != nil {
				got = index(r)
			}
			t.Errorf("%s %s %v: route %d, want %d", tt.method, tt.target, tt.header, got, tt.want)
		}
	}
}

func TestValidHost(t *testing.T) {
	tests := map[string]bool{
		"shop.example": true, "shop.example:8443": true, "127.0.0.1": true, "[::1]:8080": true, "[2001:db8::1]": true,
		"a_b.internal": true, "localhost%00": false, "localhost%1F": false, "evil.test/": false, "": false,
		"shop.example:": false, "shop.example:123456": false, "[::1": false, "-bad.test": false, "a b": false,
		"[::1]x": false, "host:port": false,
	}
	for h, want := range tests {
		if got := validHost(h); got != want {
			t.Errorf("validHost(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestStripParams(t *testing.T) {
	for in, want := range map[string]string{
		"/admin":            "/admin",
		"/admin;x":          "/admin",
		"/admin;x/y;z=1/w":  "/admin/y/w",
		"/;x":               "/",
		"/a;b;c/d":          "/a/d",
		"/public/..;/admin": "/public/../admin",
		"/x;":               "/x",
		"":                  "",
	} {
		if got := stripParams(in); got != want {
			t.Errorf("stripParams(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPathParameterConfusionIsRefused: "..;" and ".;" segments are dot
// segments to Tomcat and Spring, so they are refused like "..", and a path
// parameter cannot move a request off the route its path names: "/admin;x"
// takes the /admin route and its stricter settings.
func TestPathParameterConfusionIsRefused(t *testing.T) {
	public := newBackend(t, "public")
	admin := newBackend(t, "admin")
	cfg := `upstreams:
  - name: public
    targets: ["` + public.URL() + `"]
  - name: admin
    targets: ["` + admin.URL() + `"]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: public
      - path: /admin
        upstream: admin
`
	tp := startProxy(t, cfg, "")
	addr := strings.TrimPrefix(tp.URL, "http://")
	for _, target := range []string{"/public/..;/admin", "/public/..;x/admin", "/.;/admin", "/public/.;jsessionid=1/x", "/a/..;"} {
		resp := rawExchange(t, addr, "GET "+target+" HTTP/1.1\r\nHost: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(resp, "HTTP/1.1 400") {
			t.Errorf("%s: %q, want 400", target, firstLine(resp))
		}
	}
	for target, want := range map[string]string{"/admin;x": "admin", "/admin;jsessionid=1/users": "admin", "/adminx;y": "public", "/public;x": "public", "/a..;b/c": "public"} {
		if status, body, _ := do(t, "GET", tp.URL+target, "", nil); status != 200 || body != want {
			t.Errorf("%s: %d %q, want the %s route", target, status, body, want)
		}
	}
}
