package proxy

import (
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// gRPC runs over HTTP/2: the request and response bodies are streams of
// length-prefixed protobuf messages, possibly in both directions at once,
// and the status comes in trailers. ReverseProxy already streams both
// directions and passes trailers; what a gRPC route adds is below.

// isGRPC reports whether r is a gRPC call: HTTP/2 with a gRPC content type
// (application/grpc, application/grpc+proto, ...; not gRPC-Web, which is a
// different framing over HTTP/1.1).
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if r.ProtoMajor != 2 || !strings.HasPrefix(ct, "application/grpc") {
		return false
	}
	rest := ct[len("application/grpc"):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// parseGRPCTimeout reads the grpc-timeout header: at most 8 digits and a
// unit (H, M, S, m, u, n). A zero timeout, or one too long for a Duration,
// is treated as absent.
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	// 8 digits of hours overflow a Duration: such a deadline is as good as
	// none, and a wrapped negative one must not cancel the route's timeout.
	if n <= 0 || n > math.MaxInt64/int64(unit) {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

type stashKey struct{}

type stash struct {
	body   io.ReadCloser
	length int64
}

// InspectHeadersOnly wraps the rule-engine stage of a route (waf) so that,
// on a gRPC route, a gRPC call is judged on its headers (method path,
// metadata) while its body bypasses the engine and streams to the upstream.
// The engine reads a whole body before deciding, which would deadlock a
// bidirectional stream, and it cannot parse protobuf anyway. The body is
// put back by the route's proxy stage (Route.ServeHTTP). On other routes,
// or for requests that are not gRPC (refused later with 415), inspection
// is unchanged; it returns waf itself when the route is not a gRPC route.
func (rt *Route) InspectHeadersOnly(waf http.Handler) http.Handler {
	if !rt.cfg.GRPC {
		return waf
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isGRPC(r) || r.Body == nil || r.Body == http.NoBody {
			waf.ServeHTTP(w, r)
			return
		}
		s := &stash{body: r.Body, length: r.ContentLength}
		r = r.WithContext(context.WithValue(r.Context(), stashKey{}, s))
		r.Body, r.ContentLength = http.NoBody, 0
		waf.ServeHTTP(w, r)
	})
}

// restoreBody puts back a body that InspectHeadersOnly kept from the engine.
func restoreBody(r *http.Request) {
	if s, ok := r.Context().Value(stashKey{}).(*stash); ok {
		r.Body, r.ContentLength = s.body, s.length
	}
}

// gRPC status codes the proxy answers with.
const (
	grpcDeadlineExceeded = "4"
	grpcUnavailable      = "14"
)

// grpcError answers a gRPC call the proxy could not complete the way gRPC
// clients read errors: HTTP 200 with the status in a trailers-only
// response. Any other HTTP status reaches a gRPC client as UNAVAILABLE or
// UNKNOWN whatever the cause, and an HTML page as a protocol error. A call
// whose deadline has passed gets DEADLINE_EXCEEDED, which the client would
// have concluded itself a moment later: the upstream resets the stream
// (CANCEL) at the deadline it was given, and that reset can reach the proxy
// before the client's own timer fires (#14: TestProxyGRPC/deadline saw a
// 502 page about once in twenty runs). The message names only the request
// id; the cause is in the audit record.
func grpcError(w http.ResponseWriter, status int, deadlinePassed bool, id string) {
	code := grpcUnavailable
	if deadlinePassed || status == http.StatusGatewayTimeout {
		code = grpcDeadlineExceeded
	}
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", code)
	h.Set("Grpc-Message", "request "+id+": "+http.StatusText(status))
	w.WriteHeader(http.StatusOK)
}
