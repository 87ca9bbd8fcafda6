// Package redisconn is the one Redis connection of a Portcullis process
// that runs in a cluster (config cluster.redis), with the health state that
// every user of it shares.
//
// Place in the request path: beside it. The rate limiter (ratelimit.Redis),
// the ban table's replication (bans.Shared), the strike counters and the
// admin sessions call Redis through Do, which bounds each call by the
// configured timeout and measures it. The connection is built once per
// process and survives configuration reloads.
//
// Degradation. The first failed call marks the connection down: from then
// on callers do not wait for Redis on the request path (Up is false), they
// use their local state instead, and a probe pings Redis in the
// background. When it answers, the connection is up again and the
// functions given to OnRecover run (the ban table pushes what was queued
// and resyncs). Going down and coming back are logged once each, and while
// down a reminder at most once a minute; the gauge
// portcullis_redis_degraded and Degraded (for /readyz) say it at any time.
package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/portcullis-waf/portcullis/config"
)

// Conn is a Redis client with a shared up/down state. Safe for concurrent
// use.
type Conn struct {
	// Client is the go-redis client; use it through Do so that failures
	// are noticed.
	Client  *redis.Client
	prefix  string
	timeout time.Duration
	log     *slog.Logger
	probe   time.Duration // interval of the recovery probe

	down      atomic.Bool
	downSince atomic.Int64 // Unix nanoseconds
	lastErr   atomic.Pointer[string]

	mu        sync.Mutex
	onRecover []func()
	probing   bool
	failures  uint64 // failed calls since going down
	lastWarn  time.Time
	closed    bool
	done      chan struct{}
	wg        sync.WaitGroup

	m *Metrics
}

// Options tune a Conn beyond the configuration; the zero value is right
// outside tests.
type Options struct {
	// Log receives the degradation and recovery lines. Nil discards.
	Log *slog.Logger
	// ProbeInterval is how often a down connection is tried. Default 250ms.
	ProbeInterval time.Duration
}

// New builds the client for cfg. It does not connect: Redis may be down at
// start, and the instance then starts degraded (see Ping and Check).
func New(cfg *config.RedisConfig, opts Options) (*Conn, error) {
	o := &redis.Options{
		Network:  cfg.Network,
		Addr:     cfg.Addr,
		Username: cfg.Username,
		Password: cfg.Password.Reveal(),
		DB:       cfg.DB,
		// Retrying inside one call would multiply the time a request
		// waits; the caller falls back to local state instead.
		MaxRetries:    -1,
		DialerRetries: 1,
		DialTimeout:   cfg.Dial,
		// Each call carries its own deadline (Do); these bound calls made
		// without one (pub/sub) and large reads (a full ban resync).
		ReadTimeout:           5 * time.Second,
		WriteTimeout:          5 * time.Second,
		ContextTimeoutEnabled: true,
		PoolSize:              cfg.PoolSize,
		// No CLIENT SETINFO (unknown before Redis 7.2) and no maintenance
		// notifications (a managed-service feature): one round trip less
		// per new connection and no errors logged for either.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if t := cfg.TLS; t != nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // only when configured, documented as for tests
		if t.CAPEM != nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(t.CAPEM) {
				return nil, errors.New("redis: tls ca_file holds no PEM certificate")
			}
			tc.RootCAs = pool
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("redis: load tls cert_file/key_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		o.TLSConfig = tc
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	quietLibrary.Do(func() {
		// The client library logs every failed dial itself; during an
		// outage that is a line per request. Its messages go to debug;
		// the connection's own state changes are logged at warn, once.
		redis.SetLogger(libraryLog{log})
	})
	c := &Conn{
		Client:  redis.NewClient(o),
		prefix:  cfg.KeyPrefix,
		timeout: cfg.Timeout,
		log:     log,
		probe:   opts.ProbeInterval,
		done:    make(chan struct{}),
		m:       newMetrics(),
	}
	if c.probe <= 0 {
		c.probe = 250 * time.Millisecond
	}
	return c, nil
}

var quietLibrary sync.Once

type libraryLog struct{ log *slog.Logger }

func (l libraryLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug("redis client: " + fmt.Sprintf(format, v...))
}

// Prefix starts every key: "portcullis:<cluster name>:" unless configured.
func (c *Conn) Prefix() string { return c.prefix }

// Timeout is the bound of one call on the request path.
func (c *Conn) Timeout() time.Duration { return c.timeout }

// Metrics returns the connection's metrics (for callers that count their
// own fallbacks and resyncs).
func (c *Conn) Metrics() *Metrics { return c.m }

// Up reports whether Redis answered the last call. While it is false,
// request-path callers use local state without trying Redis.
func (c *Conn) Up() bool { return !c.down.Load() }

// Degraded reports whether the instance runs on local state, and why, for
// /readyz. The instance still serves.
func (c *Conn) Degraded() (bool, string) {
	if !c.down.Load() {
		return false, ""
	}
	why := "unreachable"
	if e := c.lastErr.Load(); e != nil {
		why = *e
	}
	since := time.Unix(0, c.downSince.Load())
	return true, fmt.Sprintf("redis %s since %s (%s): rate limits, bans and sessions are local until it answers", c.Client.Options().Addr, since.UTC().Format(time.RFC3339), why)
}

// Do runs fn with a context bounded by the configured timeout, measures it
// under op (a fixed name such as "ratelimit"), and marks the connection
// down when it fails. redis.Nil (no such key) is not a failure.
func (c *Conn) Do(op string, fn func(ctx context.Context) error) error {
	return c.DoWithin(op, c.timeout, fn)
}

// DoWithin is Do with its own bound, for background work that moves more
// data than a request-path call (a full resync).
func (c *Conn) DoWithin(op string, d time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	start := time.Now()
	err := fn(ctx)
	cancel()
	c.m.observe(op, time.Since(start), err)
	if err != nil && !errors.Is(err, redis.Nil) {
		c.Failed(op, err)
		return fmt.Errorf("redis %s: %w", op, err)
	}
	return err
}

// Failed marks the connection down after err (a call outside Do, such as
// the pub/sub receiver, reports its failures here).
func (c *Conn) Failed(op string, err error) {
	msg := op + ": " + err.Error()
	c.lastErr.Store(&msg)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.failures++
	if c.down.CompareAndSwap(false, true) {
		c.downSince.Store(now.UnixNano())
		c.m.degraded.Set(1)
		c.failures, c.lastWarn = 1, now
		c.log.Warn("redis unreachable: rate limits, bans and admin sessions fall back to this instance's local state until it answers",
			"address", c.Client.Options().Addr, "op", op, "err", err.Error())
	} else if now.Sub(c.lastWarn) >= time.Minute {
		c.log.Warn("redis still unreachable; serving with local state", "address", c.Client.Options().Addr,
			"since", time.Unix(0, c.downSince.Load()).UTC().Format(time.RFC3339), "failed_calls", c.failures, "err", err.Error())
		c.lastWarn = now
	}
	if !c.probing {
		c.probing = true
		c.wg.Add(1)
		go c.probeLoop()
	}
}

// probeLoop pings Redis until it answers, then marks the connection up
// and runs the recovery functions.
func (c *Conn) probeLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.probe)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(c.timeout, c.Client.Options().DialTimeout))
		start := time.Now()
		err := c.Client.Ping(ctx).Err()
		cancel()
		c.m.observe("probe", time.Since(start), err)
		if err != nil {
			msg := "probe: " + err.Error()
			c.lastErr.Store(&msg)
			continue
		}
		c.mu.Lock()
		c.probing = false
		since := time.Unix(0, c.downSince.Load())
		c.down.Store(false)
		c.m.degraded.Set(0)
		fns := append([]func(){}, c.onRecover...)
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		c.log.Info("redis reachable again: shared state resumes", "address", c.Client.Options().Addr, "down_for", time.Since(since).Round(time.Millisecond).String())
		for _, fn := range fns {
			fn()
		}
		return
	}
}

// OnRecover registers fn to run (on the probe's goroutine) each time the
// connection comes back up. It returns a function that unregisters it.
func (c *Conn) OnRecover(fn func()) (remove func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onRecover = append(c.onRecover, fn)
	i := len(c.onRecover) - 1
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if i < len(c.onRecover) {
			c.onRecover[i] = func() {}
		}
	}
}

// Ping checks the connection now (at start, and for `portcullis check
// --connect`), marking it down when Redis does not answer.
func (c *Conn) Ping(ctx context.Context) error {
	start := time.Now()
	err := c.Client.Ping(ctx).Err()
	c.m.observe("ping", time.Since(start), err)
	if err != nil {
		c.Failed("ping", err)
		return fmt.Errorf("redis %s: %w", c.Client.Options().Addr, err)
	}
	return nil
}

// Close stops the probe and closes the client.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	c.wg.Wait()
	return c.Client.Close()
}

// Collectors are the connection's Prometheus series, for the admin
// listener's registry.
func (c *Conn) Collectors() []prometheus.Collector { return c.m.collectors() }
