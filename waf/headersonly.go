package waf

import "net/http"

// HeadersOnly returns the stage for a route whose matching requests are
// judged on their headers alone (the method path, metadata) while their
// body bypasses the engine and streams to next untouched: the chain sets it
// for gRPC routes, with proxy.IsGRPC as when. The engine reads a whole body
// before deciding, which would deadlock a bidirectional stream, and it
// cannot parse protobuf anyway. Requests for which when is false, or
// without a body, are inspected as by the stage itself.
func (s *Stage) HeadersOnly(when func(*http.Request) bool) http.Handler {
	return &headersOnly{stage: s, when: when}
}

type headersOnly struct {
	stage *Stage
	when  func(*http.Request) bool
}

func (h *headersOnly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || !h.when(r) {
		h.stage.ServeHTTP(w, r)
		return
	}
	body, length := r.Body, r.ContentLength
	r = r.WithContext(r.Context()) // a copy: the request is the caller's
	r.Body, r.ContentLength = http.NoBody, 0
	// The same stage with a next that puts the body back: it is the
	// request's own, never seen by the engine.
	inner := *h.stage
	inner.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body, r.ContentLength = body, length
		h.stage.next.ServeHTTP(w, r)
	})
	inner.ServeHTTP(w, r)
}
