package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestUpstreamURLs: URLs that url.Parse accepts but no dial can use are
// refused by check and reload alike (#13: "http://ftp://x",
// "http://127.0.0.1:99999" and "http://:0" were accepted).
func TestUpstreamURLs(t *testing.T) {
	cases := []struct {
		url  string
		want string // "" when valid
	}{
		{"http://ftp://x", `has an empty port after "ftp"`},
		{"http://127.0.0.1:99999", `port must be 1..65535, got "99999"`},
		{"http://:0", "has no host name"},
		{"http://127.0.0.1:0", `port must be 1..65535, got "0"`},
		{"http://127.0.0.1:", `has an empty port`},
		{"http://exa mple.com", "invalid URL"},
		{"http://bad_host!:80", "is not a host name or IP address"},
		{"http://[::1", "invalid URL"},
		{"http://host//x", `path starts with "//"`},
		{"http://host:80//x", `path starts with "//"`},
		{"ftp://x", `scheme must be http or https, got "ftp"`},
		{"http:x", "has no host"},
		{" http://x", "leading or trailing space"},
		{"http://127.0.0.1:3000", ""},
		{"https://[::1]:8443/base", ""},
		{"http://app_1:8080", ""},
		{"http://backend.internal.", ""},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			yaml := fmt.Sprintf("upstreams: [{name: app, targets: [%q]}]\nsites: [{hosts: [\"*\"], routes: [{path: /, upstream: app}]}]\n", tc.url)
			_, err := Parse("p.yaml", []byte(yaml))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatal("accepted")
			case tc.want != "" && !strings.Contains(err.Error(), "p.yaml:1: upstreams[0].targets[0]: ") || tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
	// The zero-config run goes through the same check.
	if _, err := Default(":8080", "http://ftp://x"); err == nil {
		t.Error("run --upstream accepted http://ftp://x")
	}
}

// FuzzParseHTTPURL: whatever the check accepts has a host and a usable
// port, and the check never panics.
func FuzzParseHTTPURL(f *testing.F) {
	for _, s := range []string{"http://ftp://x", "http://127.0.0.1:99999", "http://:0", "https://[::1]:8443/a", "http://a_b.c.:1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseHTTPURL(s, "http", "https")
		if err != nil {
			return
		}
		if u.Hostname() == "" || strings.HasSuffix(u.Host, ":") {
			t.Fatalf("accepted %q with host %q", s, u.Host)
		}
		if p := u.Port(); p == "0" {
			t.Fatalf("accepted port 0 in %q", s)
		}
	})
}
