package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/portcullis-waf/portcullis/ratelimit"
)

// The gateway's use: key by client address (IPv6 by /64), ask, and describe
// the answer in the response headers.
func Example() {
	rule := ratelimit.Rule{Rate: 1, Burst: 2}
	lim := ratelimit.NewMemory(rule, 100_000)
	client := netip.MustParseAddr("2001:db8:1:2::7")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	for i := range 3 {
		d := lim.Allow(ratelimit.KeyFromAddr(client, ratelimit.DefaultIPv6Prefix), now)
		h := http.Header{}
		ratelimit.SetHeaders(h, d, rule)
		fmt.Printf("%d allowed=%v remaining=%s reset=%s retry-after=%q\n",
			i, d.Allowed, h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"), h.Get("Retry-After"))
	}
	// Output:
	// 0 allowed=true remaining=1 reset=1 retry-after=""
	// 1 allowed=true remaining=0 reset=2 retry-after=""
	// 2 allowed=false remaining=0 reset=2 retry-after="1"
}
