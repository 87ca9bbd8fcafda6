// Package proxy is the last stage: it forwards clean requests to an upstream
// pool and streams the answer back.
//
// Place in the request path: after waf. Only requests that every earlier stage
// let through arrive here. It sets X-Forwarded-For/-Proto/-Host from what
// Portcullis itself saw (incoming values are dropped: they are not trusted),
// removes hop-by-hop headers, passes WebSocket upgrades through and streams
// responses without buffering. Upstream failures become a neutral 502 or 504
// page; the real error goes only to the audit record.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/respond"
)

// Pool forwards to the targets of one upstream in round-robin order.
type Pool struct {
	name        string
	targets     []*url.URL
	targetNames []string // targets[i].String(), computed once
	next        atomic.Uint64
	transport   *http.Transport
	rp          *httputil.ReverseProxy
}

var _ http.Handler = (*Pool)(nil)

// NewPool builds the pool for u with a connection pool sized for load: idle
// keep-alive connections are what make a proxy fast, so they are generous.
func NewPool(u *config.UpstreamConfig) *Pool {
	dialer := &net.Dialer{Timeout: u.DialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                  nil, // never route through proxies named in the environment
		DialContext:            dialer.DialContext,
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    u.MaxIdleConnsPerTarget,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  u.ResponseHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		DisableCompression:     true, // pass the upstream's encoding through untouched
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 1 << 20,
		ReadBufferSize:         32 << 10,
		WriteBufferSize:        32 << 10,
	}
	if u.TLSInsecureSkipVerify {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // operator's explicit choice, documented
	}
	p := &Pool{name: u.Name, targets: u.Targets, transport: t}
	for _, tu := range u.Targets {
		p.targetNames = append(p.targetNames, tu.String())
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      t,
		BufferPool:     bufferPool{},
		ErrorHandler:   p.fail,
		ModifyResponse: dropUpstreamRequestID,
		// Responses of unknown length (streams) are flushed on every write by
		// ReverseProxy itself; known-length bodies are copied in 32 KiB chunks.
		FlushInterval: 0,
		ErrorLog:      nil,
	}
	return p
}

// ServeHTTP forwards r to the next target (chosen in rewrite, which
// ReverseProxy calls synchronously, so no per-request context is needed).
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := audit.FromContext(r.Context())
	start := time.Now()
	p.rp.ServeHTTP(w, r)
	entry.Durations.Upstream = time.Since(start).Microseconds()
}

// Close drops idle upstream connections.
func (p *Pool) Close() { p.transport.CloseIdleConnections() }

func (p *Pool) rewrite(pr *httputil.ProxyRequest) {
	i := (p.next.Add(1) - 1) % uint64(len(p.targets))
	target := p.targets[i]
	entry := audit.FromContext(pr.In.Context())
	entry.Upstream = p.targetNames[i]
	pr.SetURL(target)
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
	pr.Out.Header.Set("X-Forwarded-For", entry.ClientIP)
	pr.Out.Header.Set("X-Real-Ip", entry.ClientIP)
	pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	pr.Out.Header.Set("X-Forwarded-Proto", proto)
	pr.Out.Header.Set(respond.RequestIDHeader, entry.ID)
}

// spoofableHeaders are removed from every forwarded request (written in
// canonical form: net/http canonicalises incoming header names).
var spoofableHeaders = []string{
	"Forwarded", "X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "Cf-Connecting-Ip", "Fastly-Client-Ip",
	"X-Cluster-Client-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server",
	"X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Url-Scheme", "X-Original-Url", "X-Rewrite-Url",
	"X-Original-Forwarded-For",
}

// dropUpstreamRequestID keeps the gateway's X-Request-Id the only one: the
// upstream's headers are added to the response, not set.
func dropUpstreamRequestID(resp *http.Response) error {
	resp.Header.Del(respond.RequestIDHeader)
	return nil
}

// fail answers an upstream failure: 504 on timeouts, 502 otherwise, nothing
// when the client itself went away. The cause goes to the audit record only.
func (p *Pool) fail(w http.ResponseWriter, r *http.Request, err error) {
	entry := audit.FromContext(r.Context())
	if errors.Is(r.Context().Err(), context.Canceled) {
		entry.Fail(audit.StageProxy, "client closed the connection before the upstream answered")
		entry.Status = 499 // nginx's convention for "client closed request"
		return
	}
	status := http.StatusBadGateway
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status = http.StatusGatewayTimeout
	}
	entry.Fail(audit.StageProxy, "upstream "+p.name+": "+err.Error())
	respond.Error(w, r, status, entry.ID)
}

// bufferPool recycles the 32 KiB copy buffers of ReverseProxy.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
