package challenge

import (
	"net/http"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/respond"
)

// NewStage returns the challenge stage of a route: a request with a valid
// pass (or an answer just solved, which sets the pass cookie) goes on to
// next with the challenge's cookies removed; any other gets the challenge
// page, and its record says so. observe, when not nil, counts each result
// (metrics).
func NewStage(c *Challenger, observe func(result string), next http.Handler) http.Handler {
	return &stage{c: c, observe: observe, next: next}
}

type stage struct {
	c       *Challenger
	observe func(result string)
	next    http.Handler
}

func (s *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	e := audit.FromContext(r.Context())
	cl := ClientOf(r, e.Addr.String())
	result, set, why := s.c.Judge(r, cl, now)
	StripCookies(r)
	if s.observe != nil {
		s.observe(result)
	}
	switch result {
	case ResultPassed:
		s.next.ServeHTTP(w, r)
		return
	case ResultSolved:
		http.SetCookie(w, set)
		s.next.ServeHTTP(w, r)
		return
	case ResultRejected:
		e.Block(audit.StageChallenge, "proof-of-work answer rejected: "+why+asJSON(r))
	default:
		e.Block(audit.StageChallenge, "proof-of-work challenge served"+asJSON(r))
	}
	s.c.ServePage(w, r, cl, e.ID, now, http.StatusForbidden)
}

// asJSON is the note a record gets when the challenge was answered as
// JSON (an API client, which cannot solve it): the operator sees which
// clients a challenged route turns away without the chance of a browser.
func asJSON(r *http.Request) string {
	if respond.WantsJSON(r) {
		return " (as JSON)"
	}
	return ""
}
