package challenge

import (
	"net/http"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// Answer is the challenge as the answer of a filter hit instead of a
// block: a rate limit, a deny list or a GeoIP rule with action: challenge
// (the BunkerWeb and CrowdSec "captcha" remediation). The filter keeps
// deciding who is hit; the answer decides what a hit client gets:
//
//   - a client with a valid pass is let past the filter (Passed): it
//     solved the challenge, so it runs a browser, and its pass is bound to
//     its address, User-Agent and host for the pass's lifetime. A rate
//     limit still holds it to a ceiling (package ratelimit);
//   - a client that brings a valid answer gets its pass and goes on
//     (Serve returns true); the pass is added to the request too, so that
//     the later stages of the same request see it;
//   - any other gets the challenge page with the filter's status (429
//     for a rate limit, 403 for a deny list or GeoIP rule) and one audit
//     record: blocked, by the filter's stage, with the filter's reason and
//     the answer ("answered with the challenge", or why an answer was
//     rejected). A client without JavaScript sees the page's plain
//     explanation.
//
// Every outcome is counted by observe(stage, result): ResultPassed,
// ResultSolved, ResultServed, ResultRejected, and ResultCeiling from a
// rate limit.
type Answer struct {
	c       *Challenger
	stage   string
	status  int
	observe func(stage, result string)
}

// ResultCeiling is a client with a pass refused by a rate limit's
// ceiling.
const ResultCeiling = "ceiling"

// NewAnswer returns the challenge answer of a filter of stage (an audit
// stage) that would refuse with status. observe may be nil.
func NewAnswer(c *Challenger, stage string, status int, observe func(stage, result string)) *Answer {
	return &Answer{c: c, stage: stage, status: status, observe: observe}
}

// Note counts result for the answer's stage.
func (a *Answer) Note(result string) {
	if a.observe != nil {
		a.observe(a.stage, result)
	}
}

// Passed reports whether r carries a valid pass for the client of e. It
// counts nothing: the caller notes ResultPassed when the pass made the
// difference.
func (a *Answer) Passed(r *http.Request, e *audit.Entry) bool {
	cl := ClientOf(r, e.Addr.String())
	now := time.Now()
	for _, ck := range r.Cookies() {
		if ck.Name == PassCookie && a.c.CheckPass(ck.Value, cl, now) {
			return true
		}
	}
	return false
}

// Serve answers a request that hit the filter for reason, without a valid
// pass: true when it brought a valid answer (the pass cookie is set on w
// and added to r; the caller lets it go on), false when the page was
// served (with extra headers h, e.g. Retry-After) and the record marked.
func (a *Answer) Serve(w http.ResponseWriter, r *http.Request, e *audit.Entry, reason string, h http.Header) bool {
	now := time.Now()
	cl := ClientOf(r, e.Addr.String())
	result, set, why := a.c.Judge(r, cl, now)
	a.Note(result)
	switch result {
	case ResultPassed:
		return true
	case ResultSolved:
		http.SetCookie(w, set)
		r.AddCookie(&http.Cookie{Name: set.Name, Value: set.Value})
		return true
	case ResultRejected:
		e.Block(a.stage, reason+"; answered with the challenge"+asJSON(r)+", answer rejected: "+why)
	default:
		e.Block(a.stage, reason+"; answered with the challenge"+asJSON(r))
	}
	for k, vs := range h {
		w.Header()[k] = vs
	}
	a.c.ServePage(w, r, cl, e.ID, now, a.status)
	return false
}

// StripStage removes the challenge's cookies from every request before
// next (the rule engine): on a route whose filters answer with the
// challenge but that has no challenge stage of its own (which strips
// them), neither the rule engine nor the upstream sees them.
func StripStage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		StripCookies(r)
		next.ServeHTTP(w, r)
	})
}
