package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// dialHost is a DNS name that can be dialled: letters, digits, hyphens and
// (container and service names) underscores, with an optional final dot.
var dialHost = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$`)

// parseHTTPURL parses an http or https URL that Portcullis connects to (an
// upstream target, a feed, a webhook, an ACME directory) and checks what
// url.Parse lets through but a dial would trip over later, or worse, dial
// somewhere else: "http://ftp://x" parses with the host "ftp:",
// "http://127.0.0.1:99999" with an impossible port, "http://:0" with no
// host at all. schemes lists the schemes allowed.
func parseHTTPURL(raw string, schemes ...string) (*url.URL, error) {
	if strings.TrimSpace(raw) != raw || raw == "" {
		return nil, fmt.Errorf("invalid URL %q: leading or trailing space, or empty", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %v", raw, unwrapURLError(err))
	}
	okScheme := false
	for _, s := range schemes {
		okScheme = okScheme || u.Scheme == s
	}
	if !okScheme {
		return nil, fmt.Errorf("scheme must be %s, got %q", strings.Join(schemes, " or "), u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("URL %q has no host", raw)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return nil, fmt.Errorf("URL %q has no host name", raw)
	}
	if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("URL %q has an empty port after %q (a second scheme?)", raw, host)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("URL %q: port must be 1..65535, got %q", raw, port)
		}
	}
	if strings.HasPrefix(u.Host, "[") {
		if ip := net.ParseIP(host); ip == nil {
			return nil, fmt.Errorf("URL %q: %q is not an IPv6 address", raw, host)
		}
	} else if net.ParseIP(host) == nil && !dialHost.MatchString(strings.ToLower(host)) {
		return nil, fmt.Errorf("URL %q: %q is not a host name or IP address", raw, host)
	}
	if strings.HasPrefix(u.Path, "//") {
		return nil, fmt.Errorf("URL %q: path starts with \"//\" (a URL inside a URL?)", raw)
	}
	return u, nil
}
