// Package ratelimit decides whether a client may send another request now,
// with the generic cell rate algorithm (GCRA), and describes the decision in
// response headers.
//
// Place in the request path: after clientip/ (which gives the address that
// keys are built from) and reputation/ (bans and deny lists answer first),
// and before waf/. It is a cheap stage on purpose: a flood is refused with a
// 429 and a Retry-After before it costs a rule-engine evaluation. Its stage
// (stage.go: Limits.Build, NewStage) builds the Key (client address,
// address+route, or a header value), calls Limiter.Allow, and on a refusal
// annotates the audit entry and answers through respond.ErrorWithHeaders
// with 429; SetHeaders adds the rate-limit fields to the refusal.
//
// GCRA keeps one number per key, the theoretical arrival time (TAT): the
// instant at which the key's bucket would be full again. A request at time t
// is allowed if, after adding one emission interval T = 1/Rate to
// max(TAT, t), the TAT is at most Burst·T ahead of t. This is equivalent to
// a token bucket of Burst tokens refilled at Rate per second, but needs no
// background refill and only one int64 of state, which is why the shared
// limiter of a cluster (Redis, redis.go) uses the same algorithm.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Rule is a limit: a sustained Rate with room for Burst requests at once.
type Rule struct {
	// Rate is the sustained number of requests per second a key may send.
	// It must be positive and finite; fractions allow slow limits (0.1 is one
	// request every ten seconds). Required, no default.
	Rate float64
	// Burst is how many requests a key that has been quiet may send at once
	// (the bucket size). It must be at least 1; 1 means requests must be
	// spaced by at least 1/Rate. Required, no default.
	Burst int
}

// maxWindow bounds Burst/Rate so that TAT arithmetic in Unix nanoseconds can
// never overflow an int64 (the sum stays below 2^63 until the year 2262).
const maxWindow = time.Duration(1 << 60)

// Validate reports every problem with the rule at once.
func (r Rule) Validate() error {
	var errs []error
	switch {
	case math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) || r.Rate <= 0:
		errs = append(errs, fmt.Errorf("rate %v must be a positive number of requests per second", r.Rate))
	case r.Rate > 1e9:
		// The emission interval is kept in whole nanoseconds.
		errs = append(errs, fmt.Errorf("rate %v is above the maximum of 1e9 requests per second", r.Rate))
	}
	if r.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst %d must be at least 1", r.Burst))
	}
	// Checked in floating point: a tiny rate's interval does not fit in an
	// int64 of nanoseconds at all.
	if len(errs) == 0 && float64(time.Second)/r.Rate*float64(r.Burst) >= float64(maxWindow) {
		errs = append(errs, fmt.Errorf("burst %d at rate %v spans more than %v", r.Burst, r.Rate, maxWindow))
	}
	return errors.Join(errs...)
}

// interval is the emission interval T: the time one request "costs". Only
// meaningful for a rule that passed Validate.
func (r Rule) interval() time.Duration {
	return max(time.Duration(math.Round(float64(time.Second)/r.Rate)), 1)
}

// Decision is the outcome of one Allow call.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the rule's Burst: the most requests a quiet key may send at once.
	Limit int
	// Remaining is how many more requests could be sent right now.
	Remaining int
	// ResetAfter is how long until the key is back to a full burst if it
	// sends nothing more.
	ResetAfter time.Duration
	// RetryAfter is how long until the next request would be allowed; zero
	// when Allowed.
	RetryAfter time.Duration
}

// Limiter decides, per key, whether a request arriving at now may proceed.
// An allowed request consumes capacity; a refused one does not, so a client
// that keeps hammering while refused is not punished further here (bans/
// does that).
//
// Implementations must be safe for concurrent use. now is passed in rather
// than read from the clock so that tests are deterministic and one request
// uses one clock reading throughout; an implementation backed by a shared
// store may use the store's clock instead.
type Limiter interface {
	Allow(key Key, now time.Time) Decision
}

// Header names from draft-ietf-httpapi-ratelimit-headers-06 (December 2022),
// the last revision with separate Limit/Remaining/Reset/Policy fields; -07
// and later replace them with structured "RateLimit" and "RateLimit-Policy"
// fields. We follow -06 because it is what deployed clients and libraries
// parse today; moving to the later syntax only touches SetHeaders.
const (
	HeaderLimit     = "RateLimit-Limit"
	HeaderRemaining = "RateLimit-Remaining"
	HeaderReset     = "RateLimit-Reset"
	HeaderPolicy    = "RateLimit-Policy"
	HeaderRetry     = "Retry-After"
)

// SetHeaders describes d in h: RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset (whole seconds, rounded up, so a client that waits that long
// is never early), RateLimit-Policy when the rule's window is a whole number
// of seconds, and Retry-After (whole seconds, rounded up, at least 1) when the
// request was refused.
//
// The policy "<burst>;w=<seconds>" says burst requests per window, where the
// window Burst/Rate is the time a full burst takes to refill; that quota over
// that window is exactly the sustained rate. A window that is not a whole
// number of seconds cannot be written in -06 syntax without misstating the
// rate, so the field is then left out (it is optional).
func SetHeaders(h http.Header, d Decision, rule Rule) {
	h.Set(HeaderLimit, strconv.Itoa(d.Limit))
	h.Set(HeaderRemaining, strconv.Itoa(max(d.Remaining, 0)))
	h.Set(HeaderReset, strconv.FormatInt(ceilSeconds(d.ResetAfter), 10))
	if w := float64(rule.Burst) / rule.Rate; w >= 1 && w == math.Trunc(w) && w < 1e15 {
		h.Set(HeaderPolicy, strconv.Itoa(rule.Burst)+";w="+strconv.FormatInt(int64(w), 10))
	}
	if !d.Allowed {
		h.Set(HeaderRetry, strconv.FormatInt(max(ceilSeconds(d.RetryAfter), 1), 10))
	}
}

// ceilSeconds rounds d up to whole seconds; negative durations count as 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
