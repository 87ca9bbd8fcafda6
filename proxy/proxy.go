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
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/respond"
)

// Pool forwards to the targets of one upstream in round-robin order.
type Pool struct {
	name      string
	targets   []*url.URL
	next      atomic.Uint64
	transport *http.Transport
	rp        *httputil.ReverseProxy
}

var _ http.Handler = (*Pool)(nil)

type targetKey struct{}

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
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      t,
		BufferPool:     bufferPool{},
		ErrorHandler:   p.fail,
		ModifyResponse: setRequestID,
		// Responses of unknown length (streams) are flushed on every write by
		// ReverseProxy itself; known-length bodies are copied in 32 KiB chunks.
		FlushInterval: 0,
		ErrorLog:      nil,
	}
	return p
}

// ServeHTTP forwards r to the next target.
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := audit.FromContext(r.Context())
	target := p.targets[(p.next.Add(1)-1)%uint64(len(p.targets))]
	entry.Upstream = target.String()
	start := time.Now()
	ctx := context.WithValue(r.Context(), targetKey{}, target)
	p.rp.ServeHTTP(w, r.WithContext(ctx))
	entry.Durations.Upstream = time.Since(start).Microseconds()
}

// Close drops idle upstream connections.
func (p *Pool) Close() { p.transport.CloseIdleConnections() }

func (p *Pool) rewrite(pr *httputil.ProxyRequest) {
	target := pr.In.Context().Value(targetKey{}).(*url.URL)
	entry := audit.FromContext(pr.In.Context())
	pr.SetURL(target)
	// Keep the Host the client asked for: the upstream usually serves several
	// virtual hosts and builds links from it.
	pr.Out.Host = pr.In.Host
	// ReverseProxy already dropped incoming X-Forwarded-*; Forwarded carries
	// the same claims and is just as untrusted.
	pr.Out.Header.Del("Forwarded")
	pr.Out.Header.Set("X-Forwarded-For", entry.ClientIP)
	pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	pr.Out.Header.Set("X-Forwarded-Proto", proto)
	pr.Out.Header.Set(respond.RequestIDHeader, entry.ID)
}

func setRequestID(resp *http.Response) error {
	resp.Header.Set(respond.RequestIDHeader, audit.FromContext(resp.Request.Context()).ID)
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
