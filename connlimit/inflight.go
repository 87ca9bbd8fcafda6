package connlimit

import (
	"net/netip"

	"github.com/portcullis-waf/portcullis/ratelimit"
)

// InFlight bounds the requests one client address has in flight at once:
// from the moment the gateway knows the client until the response ends.
// Requests waiting for an inspection slot count, so one address cannot
// fill the inspection queue; nor can it hold unbounded request memory
// (bodies read ahead, rule-engine transactions) over HTTP/2, where one
// connection carries many requests.
//
// The address is the one clientip/ decided, so clients behind a trusted
// proxy are counted apart; IPv6 addresses are grouped by prefix. The table
// holds only clients with a request in flight.
type InFlight struct {
	limit  int
	prefix int
	counts *counts
}

// NewInFlight returns the table for limit requests per client (0: no
// limit) with IPv6 clients grouped by v6Prefix bits (outside 1..128: 64).
func NewInFlight(limit, v6Prefix int) *InFlight {
	return &InFlight{limit: limit, prefix: v6Prefix, counts: newCounts()}
}

// Limit is the number of requests a client may have in flight (0: none).
func (f *InFlight) Limit() int {
	if f == nil {
		return 0
	}
	return f.limit
}

// Acquire counts one request of client a. When a already has Limit in
// flight it returns ok false and nothing is counted; otherwise release
// must be called once when the request ends. A nil table, a zero limit and
// an invalid address admit everything.
func (f *InFlight) Acquire(a netip.Addr) (release func(), ok bool) {
	if f == nil || f.limit <= 0 || !a.IsValid() {
		return func() {}, true
	}
	k := ratelimit.KeyFromAddr(a, f.prefix)
	if !f.counts.acquire(k, f.limit) {
		return nil, false
	}
	return func() { f.counts.release(k) }, true
}

// Clients is the number of clients with a request in flight.
func (f *InFlight) Clients() int {
	if f == nil {
		return 0
	}
	return f.counts.len()
}
