// Package useragent refuses requests that carry no User-Agent (scratch
// example of a filter stage, issue 14).
//
// Place in the request path: a cheap filter after GeoIP, before rate limits.
package useragent

import (
	"net/http"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/respond"
)

type stage struct{ next http.Handler }

// NewStage returns the stage in front of next, or next when the site does
// not ask for it.
func NewStage(fc config.FiltersConfig, next http.Handler) http.Handler {
	if !fc.RequireUserAgent {
		return next
	}
	return &stage{next: next}
}

func (s *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("User-Agent") == "" {
		e := audit.FromContext(r.Context())
		e.Block(audit.StageUserAgent, "no User-Agent")
		respond.Error(w, r, http.StatusForbidden, e.ID)
		return
	}
	s.next.ServeHTTP(w, r)
}
