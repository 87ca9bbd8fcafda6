package proxy

import (
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

// IsGRPC reports whether r is a gRPC call: HTTP/2 with a gRPC content type
// (application/grpc, application/grpc+proto, ...; not gRPC-Web, which is a
// different framing over HTTP/1.1). On a gRPC route the chain has the rule
// engine judge such a call on its headers only (waf.Stage.HeadersOnly);
// the proxy refuses any other request with 415.
func IsGRPC(r *http.Request) bool {
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
