package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// This file holds the RFC 9111 rules: what a shared cache may store, for how
// long a stored response is fresh, and how old it is.

// directives are the parsed Cache-Control directives of a message.
type directives struct {
	noStore, noCache, private, public          bool
	mustRevalidate, proxyRevalidate, immutable bool
	maxAge, sMaxAge, staleIfError              time.Duration
	hasMaxAge, hasSMaxAge, hasStaleIfError     bool
}

// parseCacheControl reads every Cache-Control line. Unknown directives are
// ignored (RFC 9111 §5.2); a malformed delta-seconds is treated as absent
// for max-age (so the response is not fresh by it) and as 0 for the rest.
func parseCacheControl(lines []string) directives {
	var d directives
	for _, line := range lines {
		for _, part := range splitComma(line) {
			name, value, _ := strings.Cut(part, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			value = strings.Trim(strings.TrimSpace(value), `"`)
			switch name {
			case "no-store":
				d.noStore = true
			case "no-cache":
				d.noCache = true
			case "private":
				d.private = true
			case "public":
				d.public = true
			case "must-revalidate":
				d.mustRevalidate = true
			case "proxy-revalidate":
				d.proxyRevalidate = true
			case "immutable":
				d.immutable = true
			case "max-age":
				d.maxAge, d.hasMaxAge = deltaSeconds(value)
			case "s-maxage":
				d.sMaxAge, d.hasSMaxAge = deltaSeconds(value)
			case "stale-if-error":
				d.staleIfError, d.hasStaleIfError = deltaSeconds(value)
			}
		}
	}
	return d
}

// deltaSeconds parses a non-negative number of seconds; huge values are
// capped (RFC 9111 §1.2.2).
func deltaSeconds(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
		}
		n = 1 << 31 // overflow: all digits, just very large
	}
	if n > 1<<31 {
		n = 1 << 31
	}
	return time.Duration(n) * time.Second, true
}

func splitComma(s string) []string {
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// cacheableByDefault are the statuses a cache may store with heuristic
// freshness (RFC 9110 §15.1); others need explicit freshness.
var cacheableByDefault = map[int]bool{
	200: true, 203: true, 204: true, 300: true, 301: true, 308: true,
	404: true, 405: true, 410: true, 414: true, 501: true,
}

// understoodWithFreshness may be stored only with explicit freshness.
var understoodWithFreshness = map[int]bool{302: true, 307: true}

// verdict is what a response may become in a shared cache.
type verdict struct {
	store     bool
	reason    string        // why not, for tests and debugging
	freshness time.Duration // 0: stale at once (store for revalidation)
	cc        directives
}

// judge applies RFC 9111 §3 to a response for a GET request.
func (c *Cache) judge(req *http.Request, status int, h http.Header, now time.Time) verdict {
	cc := parseCacheControl(h["Cache-Control"])
	v := verdict{cc: cc}
	switch {
	case cc.noStore:
		v.reason = "no-store"
		return v
	case cc.private:
		v.reason = "private"
		return v
	case !cacheableByDefault[status] && !understoodWithFreshness[status]:
		v.reason = "status " + strconv.Itoa(status)
		return v
	case hasVaryStar(h["Vary"]):
		v.reason = "Vary: *"
		return v
	case len(h["Set-Cookie"]) > 0 && !c.cfg.StoreSetCookie:
		v.reason = "Set-Cookie"
		return v
	case len(h["Trailer"]) > 0:
		v.reason = "trailers"
		return v
	}
	// §3.5: a response to a request with credentials is the user's, unless
	// it says it may be shared.
	if req.Header.Get("Authorization") != "" && !cc.public && !cc.hasSMaxAge && !cc.mustRevalidate {
		v.reason = "Authorization"
		return v
	}
	explicit := true
	switch {
	case cc.hasSMaxAge:
		v.freshness = cc.sMaxAge
	case cc.hasMaxAge:
		v.freshness = cc.maxAge
	case len(h["Expires"]) > 0:
		exp, err := http.ParseTime(h.Get("Expires"))
		date := dateOf(h, now)
		if err == nil && exp.After(date) {
			v.freshness = exp.Sub(date)
		} // an invalid Expires means already expired (§5.3)
	default:
		explicit = false
	}
	if !explicit && understoodWithFreshness[status] {
		v.reason = "status " + strconv.Itoa(status) + " without explicit freshness"
		return v
	}
	if cc.noCache {
		v.freshness = 0 // stored, but validated before every use
	}
	if v.freshness <= 0 && !hasValidator(h) {
		// Nothing to serve without asking the upstream, and nothing to ask
		// it with: storing would only take space.
		v.reason = "no freshness and no validator"
		return v
	}
	v.store = true
	return v
}

func hasVaryStar(lines []string) bool {
	for _, l := range lines {
		for _, name := range splitComma(l) {
			if name == "*" {
				return true
			}
		}
	}
	return false
}

func hasValidator(h http.Header) bool {
	return h.Get("ETag") != "" || h.Get("Last-Modified") != ""
}

// dateOf is the Date of a response, or now when it has none or it is bad.
func dateOf(h http.Header, now time.Time) time.Time {
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		return d
	}
	return now
}

// initialAge is the corrected initial age of RFC 9111 §4.2.3.
func initialAge(h http.Header, requestTime, responseTime time.Time) time.Duration {
	apparent := max(0, responseTime.Sub(dateOf(h, responseTime)))
	ageValue, _ := deltaSeconds(strings.TrimSpace(h.Get("Age")))
	corrected := ageValue + responseTime.Sub(requestTime)
	return max(apparent, corrected)
}

// etagMatches is the weak comparison of If-None-Match (RFC 9110 §13.1.2).
func etagMatches(ifNoneMatch, etag string) bool {
	if etag == "" {
		return false
	}
	strip := func(t string) string { return strings.TrimPrefix(strings.TrimSpace(t), "W/") }
	want := strip(etag)
	for _, t := range splitComma(ifNoneMatch) {
		if t == "*" || strip(t) == want {
			return true
		}
	}
	return false
}
