// Package instance is a running Portcullis process: it composes the
// packages of the request path into one instance and owns its lifetime,
// from the first file it creates to the last audit record it flushes.
//
// cmd/portcullis parses flags and calls Run. Everything a running process
// holds is built, started and stopped here: the state directory, the
// memory limit, the audit writer and its sinks (file, rule log, SQLite
// store), the pipeline (gateway) and its certificates (tlsmgr), the traffic
// listeners, the admin listener (admin) with metrics and alerts, and the
// reload triggers (SIGHUP, the admin API, the file watch). The name is the
// one the documentation and the CLI use for it: "the running instance".
//
// Place in the request path: above it. It imports the pipeline and every
// stage; nothing but cmd/portcullis imports it.
//
// # One cleanup path
//
// Every part with a lifetime is a Component: a name, and optionally Start,
// Stop and Ready. Start's steps (one screen, in the order of the request's
// dependencies) register each part with add, which starts it and stacks
// its Stop. When a step fails, or at shutdown, the stack unwinds: each Stop
// runs once, in reverse order, and their errors are joined. So the reload
// triggers stop first (no reload begins once shutdown has), then the traffic
// listeners (in-flight requests finish within
// server.shutdown_grace), then the admin listener that said "shutting
// down" meanwhile, then the certificates, the pipeline (requests that
// outlived the listeners, such as WebSockets, get a few seconds more), the
// alerts, the audit writer (its queue flushed), the audit store, and last
// the memory limit is restored. No step cleans up after itself by hand.
//
// # Readiness
//
// /readyz is collected from the same components: each Ready says why the
// instance should get no traffic (starting or shutting down, listeners
// paused for file descriptors, hosts without a certificate, an audit that
// refuses requests) or what it serves despite (an audit that cannot
// write). The admin listener only formats the answer.
//
// # Adding a component
//
// A new part (a Redis client for limits, bans and sessions; a PostgreSQL
// audit sink with its spool) is one registration in a new step, placed in
// Start's list after what it needs and before what needs it:
//
//	func (i *Instance) connectRedis() error {
//		conn, err := redisconn.New(i.cfg.Cluster.Redis, ...)
//		if err != nil {
//			return err
//		}
//		i.redis = conn
//		return i.add(Component{Name: "redis", Stop: conn.Close, Ready: i.redisReadiness})
//	}
//
// (cluster.go holds the real one.)
//
// Its Stop then runs at shutdown and whenever a later step fails, and its
// Ready answers in /readyz, with nothing else to change.
package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/alerts"
	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
	"github.com/portcullis-waf/portcullis/metrics"
	"github.com/portcullis-waf/portcullis/tlsmgr"
)

// Options say what to run.
type Options struct {
	// Config is the validated configuration to start with. Required.
	Config *config.Config
	// ConfigPath is the file reloads read again; "" when the configuration
	// came from flags (run --upstream, demo): then there is nothing to
	// reload and a reload says so.
	ConfigPath string
	// Log receives the instance's log; nil means slog.Default().
	Log *slog.Logger
	// Level is the log's level, which a reload sets from log.level; nil
	// means none to change.
	Level *slog.LevelVar
	// Build is what /metrics reports in portcullis_build_info.
	Build metrics.BuildInfo
}

// Instance is a running Portcullis. Its exported methods are safe for
// concurrent use; the admin listener calls them as admin.Reloader,
// admin.CachePurger and admin.ReadinessReporter.
type Instance struct {
	cfg     *config.Config // as started: what only a restart changes
	cfgPath string
	log     *slog.Logger
	level   *slog.LevelVar
	build   metrics.BuildInfo
	parts   lifecycle

	metrics *metrics.Metrics    // nil without an admin listener to serve it
	store   *store.SQLite       // nil when the audit store is off
	pg      *store.Postgres     // nil without cluster.postgres
	pgSink  *store.PostgresSink // the audit writer's sink into pg
	records *audit.Writer
	alerts  *alerts.Alerter   // nil without an alerts block
	redis   *redisconn.Conn   // nil without cluster.redis; outlives reloads
	first   *gateway.Pipeline // the pipeline built at the start
	certs   *tlsmgr.Manager   // nil when no site has TLS
	server  *gateway.Server
	admin   []net.Addr // the admin listener's address, once listening

	started  atomic.Bool // every step done: ready for traffic
	draining atomic.Bool // shutting down: not ready for new traffic

	lapiWarn sync.Once // crowdsec.lapi_url in clear text, said once

	reloadMu sync.Mutex
	reloads  admin.ReloadHistory
	// recordAction adds a reload triggered outside the admin listener
	// (SIGHUP, the file watch) to the admin listener's action log; nil
	// without an admin listener. Set before the reload triggers start.
	recordAction func(admin.Action)

	// The console's view (console.go), guarded by consoleMu: set by
	// reloads, read by the console without waiting for one.
	consoleMu  sync.Mutex
	fileCfg    *config.Config       // the configuration as loaded, before the mode switches
	overrides  []admin.ModeOverride // the console's mode switches in force
	loadedSum  [32]byte             // SHA-256 of the file's content in force
	lastReload *admin.ReloadResult

	explainMu    sync.Mutex        // one suggestion at a time: each compiles rule sets
	explainCache map[string]string // record id → suggestion, bounded
}

var (
	_ admin.Reloader          = (*Instance)(nil)
	_ admin.CachePurger       = (*Instance)(nil)
	_ admin.ReadinessReporter = (*Instance)(nil)
)

// Run starts an instance for opts, calls ready (if not nil) once every
// listener accepts connections, serves until ctx ends or a listener fails,
// and then shuts down gracefully (Stop).
func Run(ctx context.Context, opts Options, ready func(*Instance)) error {
	i, err := Start(opts)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(i)
	}
	return i.Serve(ctx)
}

// Start builds and starts everything opts.Config describes and returns
// once every listener accepts connections. When a step fails, what the
// earlier steps started is stopped again before Start returns the error.
func Start(opts Options) (*Instance, error) {
	if opts.Config == nil {
		return nil, errors.New("instance: Options.Config is required")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Level == nil {
		opts.Level = new(slog.LevelVar)
	}
	i := &Instance{cfg: opts.Config, cfgPath: opts.ConfigPath, log: opts.Log, level: opts.Level, build: opts.Build}
	for _, step := range []func() error{
		i.prepareStateDir,
		i.loadOverrides,
		i.limitMemory,
		i.newMetrics,
		i.connectRedis,
		i.openAuditStore,
		i.openPostgres,
		i.openAudit,
		i.newAlerter,
		i.buildPipeline,
		i.startBouncer,
		i.buildCertificates,
		i.newServer,
		i.startAdmin,
		i.serveTraffic,
		i.observe,
		i.watchReloads,
	} {
		if err := step(); err != nil {
			return nil, errors.Join(err, i.parts.stop())
		}
	}
	i.started.Store(true)
	for _, a := range i.server.Addrs() {
		i.log.Info("portcullis listening", "address", a.String(), "audit", i.cfg.Audit.File)
	}
	return i, nil
}

// add starts c and stacks it for Stop and readiness (see Component).
func (i *Instance) add(c Component) error { return i.parts.add(c) }

// Serve waits until ctx ends or a traffic listener fails, then shuts down
// (Stop). It returns the listener's error and Stop's, joined.
func (i *Instance) Serve(ctx context.Context) error {
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-i.server.Errors():
	}
	return errors.Join(serveErr, i.Stop())
}

// Stop shuts the instance down gracefully: /readyz answers 503 from now
// on, the listeners stop accepting, requests in flight finish within
// server.shutdown_grace, and every queued audit record is written. It
// stops every component in reverse order and returns their errors
// joined; a second call does nothing.
func (i *Instance) Stop() error {
	if i.draining.Swap(true) {
		return nil
	}
	i.log.Info("shutting down", "grace", i.cfg.Server.ShutdownGrace.String())
	return i.parts.stop()
}

// Addrs are the traffic listeners' bound addresses, in the configuration's
// order (useful with port 0).
func (i *Instance) Addrs() []net.Addr { return i.server.Addrs() }

// AdminAddrs is the admin listener's bound address; empty without one.
func (i *Instance) AdminAddrs() []net.Addr { return i.admin }

// Readiness is the instance's answer to /readyz (admin.ReadinessReporter):
// not ready before every step is done or once shutdown has begun, and
// otherwise what every running component says, in the order they started.
func (i *Instance) Readiness() admin.Readiness {
	switch {
	case i.draining.Load():
		return admin.Readiness{NotReady: []string{"shutting down"}}
	case !i.started.Load():
		return admin.Readiness{NotReady: []string{"starting"}}
	}
	return i.parts.readiness()
}

// pipeline is the pipeline serving new requests (after a reload, not the
// first one).
func (i *Instance) pipeline() *gateway.Pipeline {
	if i.server != nil {
		return i.server.Pipeline()
	}
	return i.first
}

// prepareStateDir creates the state directory 0700 before anything writes
// into it (the audit database would otherwise create it with its own
// mode), and warns when an existing one is open to others: it holds
// private keys, bans and audit records.
func (i *Instance) prepareStateDir() error {
	dir := i.cfg.TLS.StateDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the state directory %s: %w", dir, err)
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		i.log.Warn("the state directory is open to other users; it holds keys and audit records: chmod 700 it",
			"dir", dir, "mode", fmt.Sprintf("%#o", st.Mode().Perm()))
	}
	return nil
}
