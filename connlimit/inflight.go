package connlimit

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/respond"

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
	k, counted, ok := f.take(a)
	switch {
	case !ok:
		return nil, false
	case !counted:
		return func() {}, true
	}
	return func() { f.counts.release(k) }, true
}

// take is Acquire without a release closure (none allocated per request):
// counted says whether k was counted and must be given back with
// f.counts.release.
func (f *InFlight) take(a netip.Addr) (k ratelimit.Key, counted, ok bool) {
	if f == nil || f.limit <= 0 || !a.IsValid() {
		return k, false, true
	}
	k = ratelimit.KeyFromAddr(a, f.prefix)
	if !f.counts.acquire(k, f.limit) {
		return k, false, false
	}
	return k, true, true
}

// Clients is the number of clients with a request in flight.
func (f *InFlight) Clients() int {
	if f == nil {
		return 0
	}
	return f.counts.len()
}

// admission counts each request in its client's requests in flight.
type admission struct {
	table *InFlight
	next  http.Handler
}

// NewStage returns the in-flight stage in front of next
// (server.client_requests): a request of a client that already has Limit
// requests in flight gets 429 with Retry-After and a record; the others are
// counted until next returns. The chain puts it after the cheap filters:
// allow-listed clients skip it with them.
func NewStage(f *InFlight, next http.Handler) http.Handler {
	return &admission{table: f, next: next}
}

func (a *admission) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := audit.FromContext(r.Context())
	k, counted, ok := a.table.take(entry.Addr)
	if !ok {
		entry.Block(audit.StageRateLimit, fmt.Sprintf("more than %d requests in flight from this client (server.client_requests)", a.table.Limit()))
		respond.ErrorWithHeaders(w, r, http.StatusTooManyRequests, entry.ID, http.Header{"Retry-After": {"1"}})
		return
	}
	if counted {
		defer a.table.counts.release(k)
	}
	a.next.ServeHTTP(w, r)
}
