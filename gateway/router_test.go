package gateway

import (
	"net/http"
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
		{"shop.example.", "/", "shop", "/"},
		{"blog.example", "/post", "wild", "/"},
		{"a.b.example", "/post", "any", ""}, // one level only; "*" has no "/" route
		{"other.test", "/static/app.js", "any", "/static/"},
		{"other.test", "/", "", ""},
	}
	for _, tt := range tests {
		r := rt.lookup(tt.host, tt.path)
		switch {
		case tt.route == "" && r != nil:
			t.Errorf("%s%s: got %s %s, want no route", tt.host, tt.path, r.site, r.path)
		case tt.route != "" && (r == nil || r.site != tt.site || r.path != tt.route):
			t.Errorf("%s%s: got %+v, want %s %s", tt.host, tt.path, r, tt.site, tt.route)
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
