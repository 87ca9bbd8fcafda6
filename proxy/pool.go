package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// Pool is one upstream: its targets, the balancing policy, the connections
// to the targets, health checks and retries. It is an http.RoundTripper for
// the routes that forward to it; every route shares the pool's view of which
// targets are healthy.
type Pool struct {
	name       string
	targets    []*target
	bal        *balancer
	hashHeader string
	hashCookie string
	transport  *http.Transport
	headerWait time.Duration // response header timeout, per attempt
	retries    config.RetryConfig
	passive    config.PassiveConfig
	health     *config.HealthCheckConfig
	checker    *http.Client
	cfg        *config.UpstreamConfig // as built, for the next reload's comparison
	log        *slog.Logger

	life      context.Context // canceled by Close: stops the health checks
	end       context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// target is one server of a pool with its live state.
type target struct {
	idx      int
	url      *url.URL
	name     string // url.String(), for records and logs
	weight   int
	maxConns int64     // 0: no limit
	fast     *fastPath // nil: every request goes through http.Transport

	inflight     atomic.Int64
	served       atomic.Uint64
	down         atomic.Bool  // the active check's verdict
	ejectedUntil atomic.Int64 // unix nanoseconds; the passive check's verdict

	mu          sync.Mutex // passive check counters
	consecutive int
	windowStart int64
	requests    int
	failures    int

	checkPass, checkFail int        // active check streaks, owned by its checker goroutine
	check                checkState // the last check, for Health (status.go)
}

// usable reports whether t may take a request now.
func (t *target) usable(tried *triedSet, now int64) bool {
	if tried.has(t.idx) || t.down.Load() || now < t.ejectedUntil.Load() {
		return false
	}
	return t.maxConns == 0 || t.inflight.Load() < t.maxConns
}

// acquire counts a request in flight unless the target is at its limit
// (checked again here: usable only looked).
func (t *target) acquire() bool {
	for {
		cur := t.inflight.Load()
		if t.maxConns > 0 && cur >= t.maxConns {
			return false
		}
		if t.inflight.CompareAndSwap(cur, cur+1) {
			return true
		}
	}
}

func (t *target) release() { t.inflight.Add(-1) }

// Errors that the route turns into a 503; their text goes only to the
// audit record.
var (
	// ErrNoTarget means every target is down or ejected.
	ErrNoTarget = errors.New("no healthy target")
	// ErrBusy means every healthy target is at its connection limit.
	ErrBusy = errors.New("every healthy target is at its connection limit")
)

// dialError marks a failure to connect: the request never left Portcullis,
// so resending it elsewhere is safe whatever its method.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return "connect to " + e.addr + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// LocalError is a failure of Portcullis's own resources to reach a target:
// no file descriptor left, no ephemeral port, no kernel buffer or memory.
// It says nothing about the target, so it never counts against one (passive
// or active check), the request is not resent (another target would fail
// alike), and the route answers 503 with the local cause in the record.
type LocalError struct {
	Addr string
	Err  error
}

func (e *LocalError) Error() string {
	return "local resources exhausted connecting to " + e.Addr + " (not the upstream's fault): " + e.Err.Error()
}
func (e *LocalError) Unwrap() error { return e.Err }

// localErrnos are the dial failures that come from this host's limits,
// not from the target or the network: descriptors (per process, system
// wide), kernel buffers and memory, and ephemeral ports.
var localErrnos = []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL}

// isLocal reports whether err is one of localErrnos.
func isLocal(err error) bool {
	for _, e := range localErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// headerTimeout is the response header timeout of one attempt.
type headerTimeout struct{ d time.Duration }

func (e *headerTimeout) Error() string {
	return fmt.Sprintf("no response headers within %s", e.d)
}
func (e *headerTimeout) Timeout() bool   { return true }
func (e *headerTimeout) Temporary() bool { return true }

// NewPool builds the pool for u and starts its active health checks, if
// any; Close stops them. The connection pool is sized for load: idle
// keep-alive connections are what make a proxy fast, so they are generous.
//
// prev is the pool of the same name that this one replaces on a reload, or
// nil. Its targets' verdicts carry over (see inherit), so a reload neither
// sends traffic to a target the health checks found dead nor waits for
// them to find it again.
func NewPool(u *config.UpstreamConfig, prev *Pool, log *slog.Logger) *Pool {
	if log == nil {
		log = slog.Default()
	}
	p := &Pool{
		name:       u.Name,
		hashHeader: u.HashHeader,
		hashCookie: u.HashCookie,
		transport:  newTransport(u),
		headerWait: u.ResponseHeaderTimeout,
		retries:    u.Retries,
		passive:    u.Passive,
		health:     u.HealthCheck,
		cfg:        u,
		log:        log.With("upstream", u.Name),
	}
	p.life, p.end = context.WithCancel(context.Background())
	for i, tc := range u.Targets {
		t := &target{idx: i, url: tc.URL, name: tc.URL.String(), weight: tc.Weight, maxConns: int64(tc.MaxConns)}
		// The fast path dials as the transport does (same errors, same
		// limits), through the transport's dialer as it is at the time.
		t.fast = newFastPath(tc.URL.Scheme, tc.URL.Hostname(), tc.URL.Port(), u.H2C, p.dialContext,
			p.transport.MaxIdleConnsPerHost, p.transport.IdleConnTimeout, p.transport.MaxResponseHeaderBytes)
		p.targets = append(p.targets, t)
	}
	p.bal = newBalancer(u.Policy, p.targets)
	if prev != nil {
		p.inherit(prev)
	}
	if p.health != nil && len(p.targets) > 0 {
		p.checker = &http.Client{
			Transport: p.transport,
			// A redirect is an answer: judge its status, do not follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		for _, t := range p.targets {
			p.wg.Add(1)
			go p.checkLoop(t)
		}
	}
	return p
}

func newTransport(u *config.UpstreamConfig) *http.Transport {
	dialer := &net.Dialer{Timeout: u.DialTimeout, KeepAlive: 30 * time.Second}
	tlsConf := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            u.TLS.RootCAs,
		ServerName:         u.TLS.ServerName,
		InsecureSkipVerify: u.TLSInsecureSkipVerify, //nolint:gosec // operator's explicit choice, documented
	}
	if u.TLS.ClientCert != nil {
		tlsConf.Certificates = []tls.Certificate{*u.TLS.ClientCert}
	}
	t := &http.Transport{
		Proxy: nil, // never route through proxies named in the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				if isLocal(err) {
					return nil, &LocalError{Addr: addr, Err: err}
				}
				return nil, &dialError{addr: addr, err: err}
			}
			return c, nil
		},
		TLSClientConfig:       tlsConf,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   u.MaxIdleConnsPerTarget,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		DisableCompression:    true, // pass the upstream's encoding through untouched
		ForceAttemptHTTP2:     true,
		// The response header timeout is applied per attempt (see attempt)
		// so that routes can override it.
		MaxResponseHeaderBytes: 1 << 20,
		// Read and write buffers stay at Go's 4 KiB: larger reads bypass
		// bufio anyway, and every idle upstream connection holds both
		// (32 KiB each cost 16 MiB of heap at 256 pooled connections).
	}
	if u.H2C {
		// Prior-knowledge HTTP/2 over cleartext, what gRPC servers speak
		// without TLS. Every target is http (checked by config).
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		t.Protocols = &protos
	}
	return t
}

// dialContext opens a connection to a target with the transport's dialer.
func (p *Pool) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return p.transport.DialContext(ctx, network, addr)
}

// Name is the upstream's name.
func (p *Pool) Name() string { return p.name }

// Close stops the health checks and drops idle upstream connections.
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		p.end()
		p.wg.Wait()
		p.transport.CloseIdleConnections()
		for _, t := range p.targets {
			t.fast.close()
		}
	})
}

// TargetStatus is a snapshot of one target, for tests and the admin API.
type TargetStatus struct {
	URL      string
	Up       bool // the active check's verdict (true without active checks)
	Ejected  bool // ejected by the passive check, cooling down
	InFlight int64
	Served   uint64 // responses received from it
}

// Status returns a snapshot of every target.
func (p *Pool) Status() []TargetStatus {
	now := time.Now().UnixNano()
	out := make([]TargetStatus, len(p.targets))
	for i, t := range p.targets {
		out[i] = TargetStatus{URL: t.name, Up: !t.down.Load(), Ejected: now < t.ejectedUntil.Load(), InFlight: t.inflight.Load(), Served: t.served.Load()}
	}
	return out
}

// attemptOptions are a route's settings for its attempts.
type attemptOptions struct {
	headerWait time.Duration // 0: the pool's
	wsIdle     time.Duration // idle timeout of upgraded connections; 0: none
}

// roundTrip sends req to a target chosen by the policy, and on a connection
// error resends it to another when that is safe (see config.Retries).
func (p *Pool) roundTrip(req *http.Request, o *attemptOptions) (*http.Response, error) {
	return p.send(req, o, nil)
}

// send is roundTrip; with d, req is the client's own request and every
// attempt takes the direct path (direct.go).
func (p *Pool) send(req *http.Request, o *attemptOptions, d *directRun) (*http.Response, error) {
	ctx := req.Context()
	entry := audit.FromContext(ctx)
	var key uint64
	if p.bal.ring != nil {
		key = p.hashKey(req, entry.ClientIP)
	}
	idempotent := isIdempotent(req, p.retries.IdempotencyKey)
	var body *replayBody
	if req.Body != nil && req.Body != http.NoBody {
		var keep int64
		if idempotent {
			keep = p.retries.BodyBuffer
		}
		body = &replayBody{src: req.Body, limit: keep}
	}
	start := time.Now()
	resends := p.retries.Attempts
	var tried triedSet
	var lastErr error
	for {
		i := p.pick(&tried, key, time.Now().UnixNano())
		if i < 0 {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, p.unavailable()
		}
		tried.add(i)
		t := p.targets[i]
		if !t.acquire() {
			continue // filled up since it was picked; it counts as tried
		}
		entry.Upstream = t.name
		var resp *http.Response
		var sent bool
		var err error
		if d != nil {
			resp, sent, err = p.attemptDirect(req, t, body, o, d)
		} else {
			resp, sent, err = p.attempt(req, t, body, o)
		}
		if err == nil {
			return resp, nil
		}
		t.release()
		kind := classify(err, ctx, body)
		if kind == failClient {
			// The client's body broke: no target is to blame and no other
			// target would fare better.
			if body != nil {
				if cerr := body.clientFailure(); cerr != nil {
					return nil, cerr
				}
			}
			return nil, err
		}
		if countsAgainst(kind, sent) {
			p.failed(t)
		}
		lastErr = err
		if resends == 0 || time.Since(start) >= p.retries.Budget || !mayResend(kind, idempotent, body) {
			return nil, err
		}
		resends--
		if body != nil {
			body.rewind()
		}
	}
}

// unavailable tells "all down" from "all busy" when no target can be picked.
func (p *Pool) unavailable() error {
	now := time.Now().UnixNano()
	for _, t := range p.targets {
		if !t.down.Load() && now >= t.ejectedUntil.Load() {
			return ErrBusy
		}
	}
	return ErrNoTarget
}

// attempt sends one copy of req to t. sent reports whether the request,
// body included, was written to the target.
func (p *Pool) attempt(req *http.Request, t *target, body *replayBody, o *attemptOptions) (resp *http.Response, sent bool, err error) {
	// One allocation holds what the attempt needs until its response body
	// is closed: the header watch, its trace hook, the target URL and the
	// body wrapper (issue 14: the uninspected path allocates per request
	// only what it must).
	a := &attemptRun{t: t}
	ctx, cancel := context.WithCancel(req.Context())
	a.cancel = cancel
	wait := p.headerWait
	if o.headerWait > 0 {
		wait = o.headerWait
	}
	hw := &a.hw
	hw.wait, hw.cancel = wait, cancel
	a.trace.WroteRequest = hw.wroteRequest
	ctx = httptrace.WithClientTrace(ctx, &a.trace)
	out := req.WithContext(ctx) // a shallow copy: headers are shared, which is fine, they are not changed here
	a.url = *req.URL
	setTarget(&a.url, t.url)
	out.URL = &a.url
	if body != nil {
		out.Body = body.view()
		out.GetBody = nil
	}
	if t.fast.takes(out) {
		resp, err = t.fast.roundTrip(out)
	} else {
		resp, err = p.transport.RoundTrip(out)
	}
	fired, sent := hw.stop()
	if fired {
		cancel()
		if resp != nil {
			resp.Body.Close()
		}
		return nil, sent, &headerTimeout{d: wait}
	}
	if err != nil {
		cancel()
		return nil, sent, err
	}
	t.served.Add(1)
	p.observe(t, resp.StatusCode)
	if rwc, ok := resp.Body.(interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
		Close() error
	}); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection (WebSocket): ReverseProxy needs to write to
		// it, and it is closed after idle time without traffic.
		resp.Body = newIdleConn(rwc, o.wsIdle, a.end)
		return resp, true, nil
	}
	a.body.ReadCloser, a.body.run = resp.Body, a
	resp.Body = &a.body
	return resp, true, nil
}

// attemptRun is the state of one attempt, allocated at once.
type attemptRun struct {
	hw     headerWatch
	trace  httptrace.ClientTrace
	url    url.URL
	body   upstreamBody
	cancel context.CancelFunc
	t      *target
}

// end finishes the attempt once its response is done with: the attempt's
// context is canceled and the target's connection slot released.
func (a *attemptRun) end() { a.cancel(); a.t.release() }

// headerWatch is the response header timeout of one attempt (none when
// wait is 0). It starts when the request, body included, was written (a
// slow upload is not a slow upstream) and stops when the response headers
// arrive. It also notes whether the request was written at all.
type headerWatch struct {
	wait   time.Duration
	cancel context.CancelFunc
	mu     sync.Mutex
	timer  *time.Timer
	done   bool // response (or error) arrived; the timer must not start
	fired  bool
	sent   bool // the request was written whole
}

func (h *headerWatch) wroteRequest(info httptrace.WroteRequestInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return
	}
	if info.Err == nil {
		h.sent = true
	}
	if h.wait <= 0 || h.timer != nil {
		return
	}
	h.timer = time.AfterFunc(h.wait, func() {
		h.mu.Lock()
		fire := !h.done // a response that just arrived must keep its context
		h.fired = fire
		h.mu.Unlock()
		if fire {
			h.cancel()
		}
	})
}

// stop ends the watch and reports whether it had fired and whether the
// request had been written.
func (h *headerWatch) stop() (fired, sent bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	if h.timer != nil {
		h.timer.Stop()
	}
	return h.fired, h.sent
}

// setTarget points u (the request's URL) at target: its scheme and host,
// and its path before the request's.
func setTarget(u *url.URL, target *url.URL) {
	// As httputil.ProxyRequest.SetURL: even an empty path becomes "/" (a
	// CONNECT request's authority form has none).
	u.Scheme, u.Host = target.Scheme, target.Host
	if u.RawPath == "" && target.RawPath == "" {
		u.Path = joinSlash(target.Path, u.Path)
		return
	}
	// Keep the request's own escaping (an encoded slash stays encoded).
	tp, up := target.EscapedPath(), u.EscapedPath()
	u.Path = joinSlash(target.Path, u.Path)
	u.RawPath = joinSlash(tp, up)
}

func joinSlash(a, b string) string {
	as, bs := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case as && bs:
		return a + b[1:]
	case !as && !bs:
		return a + "/" + b
	}
	return a + b
}

// Kinds of attempt failure.
const (
	failConn     = iota // the connection broke after it was established
	failDial            // no connection: nothing was sent
	failTimeout         // no response headers in time (the attempt's own timeout)
	failDeadline        // the request's deadline passed (the route's timeout, a gRPC deadline)
	failCanceled        // the client went away
	failClient          // the client's request body could not be read
	failLocal           // Portcullis's own resources ran out (LocalError)
)

func classify(err error, ctx context.Context, body *replayBody) int {
	var ce *clientBodyError
	if (body != nil && body.clientFailure() != nil) || errors.As(err, &ce) {
		return failClient
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return failDeadline
		}
		return failCanceled
	}
	var le *LocalError
	if errors.As(err, &le) {
		return failLocal
	}
	var de *dialError
	if errors.As(err, &de) {
		return failDial
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return failTimeout
	}
	return failConn
}

// countsAgainst reports whether a failure is the target's, for the passive
// check: it could not be reached, it did not answer in time, or the
// connection broke after the whole request was written to it. The client's
// failures (a broken or oversized body, a slow upload, going away) and the
// request's own deadline (which may have been spent waiting for the client)
// say nothing about the target; counting them would let one client eject
// every target of a pool.
func countsAgainst(kind int, sent bool) bool {
	switch kind {
	case failDial, failTimeout:
		return true
	case failConn:
		return sent
	}
	return false
}

// mayResend reports whether a request may be sent again after a failure.
func mayResend(kind int, idempotent bool, body *replayBody) bool {
	switch kind {
	case failDial:
		// Nothing reached any upstream: safe for every method, as long as
		// the body can be given again whole.
		return body == nil || body.replayable()
	case failConn:
		// The upstream may have acted on it: only idempotent requests.
		return idempotent && (body == nil || body.replayable())
	}
	return false
}

// isIdempotent follows RFC 9110 §9.2.2. An Idempotency-Key header makes
// any method safe to resend only when the upstream says its targets honour
// it (retries.idempotency_key): it is the client's claim, and trusting it
// everywhere would let any client have its POSTs replayed.
func isIdempotent(r *http.Request, honourKey bool) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	if !honourKey {
		return false
	}
	_, k1 := r.Header["Idempotency-Key"]
	_, k2 := r.Header["X-Idempotency-Key"]
	return k1 || k2
}
