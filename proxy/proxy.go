// Package proxy is the last stage: it forwards clean requests to an upstream
// pool and streams the answer back.
//
// Place in the request path: after waf (and the response cache, when a route
// has one). Only requests that every earlier stage let through arrive here.
//
// A Pool is one upstream: targets, a balancing policy (round robin, smooth
// weighted round robin, least connections, power of two choices, consistent
// hashing on the client address, a header or a cookie), per-target
// connection limits, TLS or cleartext HTTP/2 towards the targets, active and
// passive health checks, and retries that never replay a request an
// upstream may have acted on unless it is idempotent. A Route is one
// route's use of a pool: header edits, body limit, timeouts, gRPC and
// WebSocket handling.
//
// Ordinary requests to cleartext HTTP/1.1 targets (no upgrade, no
// Expect, a body of known length up to 16 KiB) are written and answered on
// the handler's own goroutine over each target's keep-alive pool (fast.go);
// everything else, TLS and h2c targets included, goes through
// http.Transport. Most of those requests also skip httputil.ReverseProxy:
// their head is written straight from the client's request (direct.go),
// byte for byte what ReverseProxy would send.
//
// Every forwarded request gets X-Forwarded-For/-Proto/-Host from what
// Portcullis itself saw (incoming values are dropped: they are not trusted);
// hop-by-hop headers are removed; WebSocket upgrades pass through; responses
// stream without buffering, trailers included. Upstream failures become a
// neutral 502, 503 or 504 page; the real error goes only to the audit record.
package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/respond"
)

// Route forwards one route's requests to its pool.
type Route struct {
	pool *Pool
	cfg  config.RouteProxyConfig
	opts attemptOptions
	rp   *httputil.ReverseProxy
	// direct: the route's requests may skip ReverseProxy (direct.go).
	direct bool
}

var _ http.Handler = (*Route)(nil)

// NewRoute returns the proxy stage of a route that forwards to pool.
func NewRoute(pool *Pool, cfg config.RouteProxyConfig) *Route {
	rt := &Route{pool: pool, cfg: cfg, opts: attemptOptions{headerWait: cfg.ResponseHeaderTimeout, wsIdle: cfg.WebSocketIdleTimeout}}
	rt.direct = directRoute(pool, &rt.cfg)
	rt.rp = &httputil.ReverseProxy{
		Rewrite:        rt.rewrite,
		Transport:      routeTransport{rt},
		BufferPool:     bufferPool{},
		ErrorHandler:   rt.fail,
		ModifyResponse: rt.modifyResponse,
		// Responses of unknown length (streams, gRPC) are flushed on every
		// write by ReverseProxy itself; known-length bodies are copied in
		// 32 KiB chunks.
		FlushInterval: 0,
		ErrorLog:      nil,
	}
	return rt
}

// routeTransport hands ReverseProxy's requests to the pool with the route's
// attempt options.
type routeTransport struct{ rt *Route }

func (t routeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.rt.pool.roundTrip(r, &t.rt.opts)
}

// ServeHTTP forwards r and notes the upstream time in the audit entry.
func (rt *Route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := audit.FromContext(r.Context())
	if rt.cfg.GRPC && !IsGRPC(r) {
		entry.Block(audit.StageProtocol, "not a gRPC request (HTTP/2 with Content-Type application/grpc) on a gRPC route")
		respond.Error(w, r, http.StatusUnsupportedMediaType, entry.ID)
		return
	}
	if max := rt.cfg.MaxBodySize; max > 0 {
		if r.ContentLength > max {
			entry.Block(audit.StageProtocol, "request body larger than max_body_size ("+strconv.FormatInt(max, 10)+" bytes)")
			respond.Error(w, r, http.StatusRequestEntityTooLarge, entry.ID)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &limitedBody{ReadCloser: r.Body, left: max}
		}
	}
	ctx := r.Context()
	var cancel context.CancelFunc
	if d := rt.deadline(r); d > 0 {
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
		r = r.WithContext(ctx)
	}
	start := time.Now()
	if rt.takesDirect(r) {
		rt.serveDirect(w, r)
	} else {
		rt.rp.ServeHTTP(w, r)
	}
	entry.Durations.Upstream = time.Since(start).Microseconds()
}

// grpcGrace is how long past a gRPC deadline the proxy keeps the call open:
// the upstream and the client enforce the deadline themselves, and the
// upstream's own DEADLINE_EXCEEDED status should reach the client first.
const grpcGrace = 500 * time.Millisecond

// deadline is the route's timeout, shortened by a gRPC deadline.
func (rt *Route) deadline(r *http.Request) time.Duration {
	d := rt.cfg.Timeout
	if rt.cfg.GRPC {
		if g, ok := parseGRPCTimeout(r.Header.Get("Grpc-Timeout")); ok && (d == 0 || g+grpcGrace < d) {
			d = g + grpcGrace
		}
	}
	return d
}

func (rt *Route) rewrite(pr *httputil.ProxyRequest) {
	// The target (scheme, host, base path) is set per attempt by the pool.
	entry := audit.FromContext(pr.In.Context())
	// Keep the Host the client asked for: the upstream usually serves several
	// virtual hosts and builds links from it.
	pr.Out.Host = pr.In.Host
	// ReverseProxy already dropped incoming X-Forwarded-For/-Host/-Proto.
	// These carry the same kind of claims (client address, original URL)
	// that applications and frameworks believe, and are just as untrusted.
	for _, h := range spoofableHeaders { // canonical already: plain map deletes
		delete(pr.Out.Header, h)
	}
	// Only WebSocket may switch protocols: an h2c upgrade would open an
	// HTTP/2 connection whose requests the WAF never sees.
	if up := pr.Out.Header.Get("Upgrade"); up != "" && !strings.EqualFold(up, "websocket") {
		pr.Out.Header.Del("Upgrade")
		pr.Out.Header.Del("Connection")
		pr.Out.Header.Del("Http2-Settings")
	}
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	// What Header.Set would do for these canonical names, with one backing
	// array for the five values instead of one allocation each.
	vals := [...]string{entry.ClientIP, entry.ClientIP, pr.In.Host, proto, entry.ID}
	set := vals[:]
	h := pr.Out.Header
	h["X-Forwarded-For"] = set[0:1:1]
	h["X-Real-Ip"] = set[1:2:2]
	h["X-Forwarded-Host"] = set[2:3:3]
	h["X-Forwarded-Proto"] = set[3:4:4]
	h[respond.RequestIDHeader] = set[4:5:5]
	// The operator's edits come last, so a route may deliberately set one of
	// the headers above (e.g. X-Forwarded-Prefix for an app mounted below /).
	applyEdits(pr.Out.Header, &rt.cfg.RequestHeaders)
}

// spoofableHeaders are removed from every forwarded request (written in
// canonical form: net/http canonicalises incoming header names).
var spoofableHeaders = []string{
	"Forwarded", "X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "Cf-Connecting-Ip", "Fastly-Client-Ip",
	"X-Cluster-Client-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server",
	"X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Url-Scheme", "X-Original-Url", "X-Rewrite-Url",
	"X-Original-Forwarded-For",
}

// modifyResponse keeps the gateway's X-Request-Id the only one (the
// upstream's headers are added to the response, not set) and applies the
// route's response header edits.
func (rt *Route) modifyResponse(resp *http.Response) error {
	resp.Header.Del(respond.RequestIDHeader)
	applyEdits(resp.Header, &rt.cfg.ResponseHeaders)
	return nil
}

func applyEdits(h http.Header, e *config.HeaderEditsConfig) {
	for _, name := range e.Remove {
		delete(h, name)
	}
	for _, kv := range e.Set {
		h[kv[0]] = []string{kv[1]}
	}
	for _, kv := range e.Add {
		h[kv[0]] = append(h[kv[0]], kv[1])
	}
}

// fail answers an upstream failure: 503 when no target can take the
// request, 504 on timeouts, 502 otherwise, nothing when the client itself
// went away. The cause goes to the audit record only.
func (rt *Route) fail(w http.ResponseWriter, r *http.Request, err error) {
	entry := audit.FromContext(r.Context())
	if errors.Is(err, errBodyTooLarge) {
		entry.Block(audit.StageProtocol, "request body larger than max_body_size ("+strconv.FormatInt(rt.cfg.MaxBodySize, 10)+" bytes)")
		respond.ErrorAndClose(w, r, http.StatusRequestEntityTooLarge, entry.ID)
		return
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		entry.Fail(audit.StageProxy, "client closed the connection before the upstream answered")
		entry.Status = 499 // nginx's convention for "client closed request"
		return
	}
	var ce *clientBodyError
	if errors.As(err, &ce) && !errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		// A truncated or unreadable body: the client's failure, not the
		// upstream's (and the connection cannot be reused).
		entry.Fail(audit.StageProxy, err.Error())
		respond.ErrorAndClose(w, r, http.StatusBadRequest, entry.ID)
		return
	}
	status := http.StatusBadGateway
	var ne net.Error
	var local *LocalError
	switch {
	case errors.As(err, &local):
		// Portcullis itself is short of descriptors or ports: a 503 says
		// "try again later", and the record names the local cause.
		status = http.StatusServiceUnavailable
	case errors.Is(err, ErrNoTarget) || errors.Is(err, ErrBusy):
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		status = http.StatusGatewayTimeout
	}
	entry.Fail(audit.StageProxy, "upstream "+rt.pool.name+": "+err.Error())
	if rt.cfg.GRPC {
		g, ok := parseGRPCTimeout(r.Header.Get("Grpc-Timeout"))
		grpcError(w, status, ok && time.Since(entry.Time) >= g, entry.ID)
		return
	}
	respond.Error(w, r, status, entry.ID)
}

// bufferPool recycles the 32 KiB copy buffers of ReverseProxy.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
