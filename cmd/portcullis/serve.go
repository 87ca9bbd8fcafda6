package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/alerts"
	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
	"github.com/portcullis-waf/portcullis/internal/every"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
	"github.com/portcullis-waf/portcullis/metrics"
	"github.com/portcullis-waf/portcullis/review/explain"
)

// instance is a running Portcullis: the traffic server and its pipeline,
// the audit writer and store, and the admin listener.
type instance struct {
	cfgPath string // "" when started from flags: nothing to reload
	server  *gateway.Server
	records *audit.Writer
	store   *store.SQLite // nil when the audit store is off
	admin   *admin.Server // nil without an admin block
	adminLn []net.Listener
	level   *slog.LevelVar
	log     *slog.Logger
	metrics *metrics.Metrics // nil without an admin listener to serve it
	alerts  *alerts.Alerter  // nil without an alerts block
	redis   *redisconn.Conn  // nil without cluster.redis; outlives reloads

	reloadMu sync.Mutex
	reloads  reloadHistory

	draining atomic.Bool // shutting down: not ready for new traffic

	explainMu    sync.Mutex        // one suggestion at a time: each compiles rule sets
	explainCache map[string]string // record id → suggestion, bounded
}

// reloadHistory is what the admin API and the log say about reloads:
// GET /api/reload answers {"succeeded": 2, "failed": 1, "last": {...}},
// lower-case keys like the rest of the API.
type reloadHistory struct {
	OK     int           `json:"succeeded"`
	Failed int           `json:"failed"`
	Last   *reloadResult `json:"last"`
}

type reloadResult struct {
	Time     time.Time `json:"time"`
	Trigger  string    `json:"trigger"`
	OK       bool      `json:"ok"`
	Duration string    `json:"duration"`
	Error    string    `json:"error,omitempty"`
}

// serve builds everything for cfg, serves until ctx ends, then shuts down
// gracefully: stop accepting, finish in-flight requests within the grace
// period, flush the audit records. ready is called once listening. cfgPath
// is the file reloads read again; level is the log level they may change.
func serve(ctx context.Context, cfg *config.Config, cfgPath string, log *slog.Logger, level *slog.LevelVar, ready func(*instance)) (err error) {
	inst := &instance{cfgPath: cfgPath, log: log, level: level}
	// A soft limit: the collector works harder near it (server.memory_limit).
	restoreLimit, autoMemory := applyMemoryLimit(cfg.Server, log)
	defer restoreLimit()
	if autoMemory {
		mctx, stopRelease := context.WithCancel(ctx)
		defer stopRelease()
		go releaseIdleMemory(mctx, log)
	}
	if inst.level == nil {
		inst.level = new(slog.LevelVar)
	}
	var sinks []audit.Sink
	if cfg.Audit.Store.Enabled {
		sqlite, err := store.OpenSQLite(cfg.Audit.Store.Path, store.SQLiteOptions{MaxAge: cfg.Audit.Store.MaxAge, MaxBytes: cfg.Audit.Store.MaxSize, Log: log})
		if err != nil {
			return fmt.Errorf("audit store (audit.store.path %s): %w", cfg.Audit.Store.Path, err)
		}
		inst.store = sqlite
		defer func() { err = errors.Join(err, sqlite.Close()) }()
		sink, err := sqlite.Sink()
		if err != nil {
			return fmt.Errorf("audit store: %w", err)
		}
		sinks = append(sinks, &timedSink{Sink: sink, inst: inst})
	}
	records, err := openAudit(cfg.Audit, log, sinks...)
	if err != nil {
		return err
	}
	inst.records = records
	if cfg.Cluster != nil && cfg.Cluster.Redis != nil {
		if inst.redis, err = connectRedis(cfg.Cluster, log); err != nil {
			_ = records.Close()
			return err
		}
		defer inst.redis.Close() // after the pipeline: its last bans go out first
	}
	pipeline, err := gateway.BuildShared(cfg, nil, records, log, inst.redis)
	if err != nil {
		_ = records.Close()
		return err
	}
	certs, err := gateway.BuildCertificates(cfg, log)
	if err != nil {
		pipeline.Close()
		_ = records.Close()
		return err
	}
	if cfg.Admin != nil {
		v, coraza, crs := versions()
		inst.metrics = metrics.New(metrics.BuildInfo{Version: v, Coraza: coraza, CRS: crs})
		if inst.redis != nil {
			inst.metrics.Registry().MustRegister(inst.redis.Collectors()...)
		}
	}
	if cfg.Alerts != nil {
		if inst.alerts, err = newAlerter(cfg.Alerts, log); err != nil {
			pipeline.Close()
			_ = records.Close()
			return err
		}
	}
	pipeline.Observe(gateway.Observers{Metrics: inst.metrics, Alerts: inst.alerts})
	server := gateway.NewServer(pipeline, certs, log)
	inst.server = server
	lns, err := server.Listen()
	if err != nil {
		pipeline.Close()
		_ = records.Close()
		return err
	}
	if cfg.Admin != nil {
		if err := inst.startAdmin(cfg); err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			pipeline.Close()
			_ = records.Close()
			return err
		}
	}
	if certs != nil {
		certs.Start() // order missing certificates, renew, watch files
		defer certs.Stop()
	}
	pipeline.Start() // list feeds, GeoIP file watching
	server.Serve(lns)
	inst.watchSources()
	if ready != nil {
		ready(inst)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var watch every.Loop
	if cfg.Server.WatchConfig && cfgPath != "" {
		watch.Start(2*time.Second, inst.watchConfig())
		defer watch.Stop()
	}

	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case serveErr = <-server.Errors():
			break loop
		case <-hup:
			_ = inst.reload("SIGHUP")
		}
	}
	grace := server.Pipeline().Config.Server.ShutdownGrace
	inst.draining.Store(true) // /readyz answers 503 from now on
	log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	shutErr := server.Shutdown(sctx)
	var adminErr error
	if inst.admin != nil {
		// Its own deadline: the traffic grace period may be used up.
		actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
		adminErr = inst.admin.Shutdown(actx)
		acancel()
	}
	server.WaitRetired()
	// Requests that outlived the listeners (hijacked WebSockets, handlers
	// past the grace period) still write their audit records: wait a
	// little for them before the writer closes.
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if n := server.Pipeline().Retire(rctx); n > 0 {
		log.Warn("requests still running at exit; their audit records are lost", "requests", n)
	}
	rcancel()
	if inst.alerts != nil {
		actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = inst.alerts.Close(actx) // held-back ban summaries, queued messages
		acancel()
	}
	closeErr := records.Close() // flushes the store's last batch and open summaries too
	st := records.Stats()
	log.Info("audit records flushed", "written", st.Written, "dropped", st.Dropped(), "dropped_sink_failed", st.DroppedSinkFailed,
		"dropped_queue_full", st.DroppedQueueFull, "aggregated", st.Aggregated, "summaries", st.Summaries)
	return errors.Join(serveErr, shutErr, adminErr, closeErr)
}

// reload reads the configuration file again and switches to it. A bad file
// is rejected whole with the same messages as `portcullis check`, and the
// running configuration keeps serving.
func (inst *instance) reload(trigger string) error {
	inst.reloadMu.Lock()
	defer inst.reloadMu.Unlock()
	start := time.Now()
	err := func() error {
		if inst.cfgPath == "" {
			return errors.New("started without a configuration file (-c): nothing to reload")
		}
		cfg, err := config.Load(inst.cfgPath)
		if err != nil {
			return err
		}
		if err := inst.server.Reload(cfg, cfg.Server.ShutdownGrace); err != nil {
			return err
		}
		inst.level.Set(cfg.Log.Level)
		return nil
	}()
	inst.metrics.ObserveReload(err == nil, time.Since(start))
	res := &reloadResult{Time: start.UTC(), Trigger: trigger, OK: err == nil, Duration: time.Since(start).Round(time.Millisecond).String()}
	if err != nil {
		res.Error = err.Error()
		inst.reloads.Failed++
		inst.log.Error("reload failed; the running configuration keeps serving", "trigger", trigger, "duration", res.Duration, "err", err.Error())
	} else {
		inst.reloads.OK++
		inst.log.Info("configuration reloaded", "trigger", trigger, "duration", res.Duration)
	}
	inst.reloads.Last = res
	return err
}

// watchConfig returns the periodic check of the configuration file: a
// change of its content (not only its time stamp) triggers a reload.
func (inst *instance) watchConfig() func(context.Context) {
	last, _ := os.ReadFile(inst.cfgPath)
	return func(context.Context) {
		now, err := os.ReadFile(inst.cfgPath)
		if err != nil || string(now) == string(last) {
			return
		}
		last = now
		_ = inst.reload("file change")
	}
}

// startAdmin opens the admin listener: dashboard, JSON API, reload, health.
func (inst *instance) startAdmin(cfg *config.Config) error {
	ac := cfg.Admin
	var records store.Store = inst.store
	if inst.store == nil {
		files, err := store.OpenFiles(cfg.Audit.File)
		if err != nil {
			return fmt.Errorf("admin: read audit file: %w", err)
		}
		records = files
	}
	auth := admin.Auth{None: ac.Auth.None}
	for _, u := range ac.Auth.Users {
		auth.Users = append(auth.Users, admin.User{Name: u.Name, PasswordHash: u.PasswordHash})
	}
	for _, t := range ac.Auth.Tokens {
		auth.Tokens = append(auth.Tokens, admin.Token{Name: t.Name, SHA256: t.SHA256})
	}
	srv, err := admin.New(admin.Options{
		Store:   records,
		Bans:    inst.server.Pipeline().Bans(),
		Explain: inst.explain,
		Auth:    auth,
		Log:     inst.log.With("component", "admin"),
		Redis:   inst.redis,
	})
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	srv.Handle("POST /api/reload", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := inst.reload("admin API")
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
		inst.reloadMu.Lock()
		defer inst.reloadMu.Unlock()
		_ = json.NewEncoder(w).Encode(inst.reloads.Last)
	}), false)
	srv.Handle("GET /api/reload", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inst.reloadMu.Lock()
		defer inst.reloadMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(inst.reloads)
	}), false)
	srv.Handle("POST /api/cache/purge", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Key    string `json:"key"`    // "https://host/path?query", as the cache keys it
			Prefix bool   `json:"prefix"` // every key starting with Key
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || req.Key == "" {
			http.Error(w, `body must be {"key": "https://host/path", "prefix": false}`, http.StatusBadRequest)
			return
		}
		n := inst.server.Pipeline().PurgeCache(req.Key, req.Prefix)
		inst.log.Info("cache purged", "key", req.Key, "prefix", req.Prefix, "removed", n)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int{"removed": n})
	}), false)
	if inst.metrics != nil {
		srv.Handle("GET /metrics", inst.metrics.Handler(), false)
	}
	srv.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	}), true)
	srv.Handle("GET /readyz", http.HandlerFunc(inst.readyz), true)

	var tlsConfig *tls.Config
	if ac.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(ac.CertFile, ac.KeyFile)
		if err != nil {
			return fmt.Errorf("admin: load cert_file/key_file: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", ac.Listen)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", ac.Listen, err)
	}
	inst.admin, inst.adminLn = srv, []net.Listener{ln}
	go func() {
		if err := srv.Serve(ln, tlsConfig); err != nil {
			inst.log.Error("admin listener stopped", "address", ln.Addr().String(), "err", err)
		}
	}()
	inst.log.Info("admin listener", "address", ln.Addr().String(), "tls", tlsConfig != nil)
	return nil
}

// readyz answers 200 when the pipeline is built, the listeners are up and
// readyz answers 200 when the pipeline is built, the listeners are up and
// accepting (not paused for file descriptors) and every TLS site has a
// certificate; 503 with the reason otherwise. A failing audit adds a
// "degraded:" line, and fails readiness under audit.on_failure: refuse.
func (inst *instance) readyz(w http.ResponseWriter, r *http.Request) {
	p := inst.server.Pipeline()
	var missing []string
	if certs := inst.server.Certificates(); certs != nil {
		have := certs.Expiry()
		for _, s := range p.Config.Sites {
			if s.TLS == nil {
				continue
			}
			for _, h := range s.Hosts {
				if _, ok := have[h]; !ok && h != "*" && h[0] != '*' {
					missing = append(missing, h)
				}
			}
		}
	}
	if inst.draining.Load() {
		http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
		return
	}
	if st := inst.server.Limits().Stats(); st.Paused {
		// A balancer should send new clients elsewhere: they would wait in
		// the backlog until descriptors are free again.
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: not accepting connections, file descriptors short (%d in use of %d, %d reserved)\n", st.OpenFiles, st.MaxFiles, st.Reserve)
		return
	}
	if len(inst.server.Addrs()) == 0 || len(missing) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: listeners %d, hosts without a certificate: %v\n", len(inst.server.Addrs()), missing)
		return
	}
	// Redis unreachable: limits, bans and sessions are local until it
	// answers. Still ready (every instance failing its check at once
	// would be an outage); the body says why, after the first line.
	if inst.redis != nil {
		if down, why := inst.redis.Degraded(); down {
			defer fmt.Fprintf(w, "degraded: %s\n", why)
		}
	}
	// A failing audit is "degraded". Under audit.on_failure: refuse the
	// instance answers 503 to traffic, so readiness fails and a load
	// balancer moves traffic elsewhere; under serve it still serves, so
	// it stays ready (failing every instance's check at once would be the
	// outage the operator chose to avoid) and says why in the body.
	if degraded, why := inst.records.Degraded(); degraded {
		if inst.records.Refusing() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: degraded: audit records cannot be written, refusing requests (audit.on_failure: refuse): %s\n", why)
			return
		}
		fmt.Fprintf(w, "ready\ndegraded: audit records cannot be written, serving without them (audit.on_failure: serve): %s\n", why)
		return
	}
	fmt.Fprintf(w, "ready\n")
}

// openAudit opens the configured sinks and starts the writer. extra sinks
// (the audit store) are written after the file.
func openAudit(ac config.AuditConfig, log *slog.Logger, extra ...audit.Sink) (*audit.Writer, error) {
	var sinks []audit.Sink
	fileSink, err := audit.OpenFileSink(ac.File)
	if err != nil {
		return nil, err
	}
	if n := fileSink.Repaired(); n > 0 {
		log.Warn("audit file ended in a torn record (the process stopped mid-write); cut it off", "file", ac.File, "bytes", n)
	}
	sinks = append(sinks, fileSink)
	if ac.RuleLog != "" {
		ruleLog, err := audit.OpenRuleLogSink(ac.RuleLog)
		if err != nil {
			_ = fileSink.Close()
			return nil, err
		}
		if n := ruleLog.Repaired(); n > 0 {
			log.Warn("rule log ended in a torn line (the process stopped mid-write); cut it off", "file", ac.RuleLog, "bytes", n)
		}
		sinks = append(sinks, ruleLog)
	}
	return audit.New(audit.Options{
		QueueSize: ac.QueueSize, Log: log, OnFailure: ac.OnFailure,
		Aggregate: audit.AggregateOptions{Samples: ac.Aggregate.Samples, Window: ac.Aggregate.Window, MaxKeys: ac.Aggregate.MaxKeys},
	}, append(sinks, extra...)...), nil
}

// newAlerter builds the alerter from the alerts block.
func newAlerter(ac *config.AlertsConfig, log *slog.Logger) (*alerts.Alerter, error) {
	cfg := alerts.Config{
		AttackSpike: alerts.AttackSpike{BlocksPerMinute: ac.BlocksPerMinute},
		CertExpiry:  alerts.CertExpiry{Within: ac.CertExpiryWithin},
		FeedStale:   alerts.FeedStale{After: ac.FeedStaleAfter},
		MaxPerHour:  ac.MaxPerHour,
		Cooldown:    ac.Cooldown,
		Log:         log.With("component", "alerts"),
	}
	for _, w := range ac.Webhooks {
		cfg.Webhooks = append(cfg.Webhooks, alerts.Webhook{URL: w.URL, Format: w.Format, Headers: w.Headers})
	}
	a, err := alerts.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", "alerts", err)
	}
	return a, nil
}

// watchSources connects the scrape-time metrics and the periodic alert
// checks to whatever pipeline is current: they run across reloads.
func (inst *instance) watchSources() {
	lists := func() map[string]gateway.ListStat { return inst.server.Pipeline().ListStats() }
	certs := func() map[string]time.Time {
		if c := inst.server.Certificates(); c != nil {
			return c.Expiry()
		}
		return nil
	}
	if inst.metrics != nil {
		inst.metrics.SetSources(metrics.Sources{
			Lists: func() []metrics.ListStat {
				var out []metrics.ListStat
				for name, st := range lists() {
					out = append(out, metrics.ListStat{Name: name, Entries: st.Entries, LastSuccess: st.LastSuccess, Failures: st.Failures})
				}
				return out
			},
			Audit: func() metrics.AuditStat { return auditStat(inst.records.Stats()) },
			Certs: certs,
			ActiveBans: func() int {
				if b := inst.server.Pipeline().Bans(); b != nil {
					return b.Len()
				}
				return 0
			},
			Alerts: func() metrics.AlertStat {
				if inst.alerts == nil {
					return metrics.AlertStat{}
				}
				st := inst.alerts.Stats()
				return metrics.AlertStat{Sent: st.Sent, Failed: st.Failed, Dropped: st.Dropped}
			},
			Inspections: func() metrics.InspectionStat {
				g := inst.server.Pipeline().Gate()
				inside, waiting := g.Busy()
				return metrics.InspectionStat{Slots: g.Slots(), Inside: inside, Waiting: waiting}
			},
			Connections: func() metrics.ConnectionStat {
				st := inst.server.Limits().Stats()
				return metrics.ConnectionStat{Open: st.Open, Refused: st.Refused, Paused: st.Paused, Pauses: st.Pauses,
					DescriptorsInUse: st.OpenFiles, DescriptorLimit: st.MaxFiles, DescriptorReserve: st.Reserve}
			},
		})
	}
	if inst.alerts != nil {
		inst.alerts.Start(func() alerts.State {
			st := alerts.State{Certs: map[string]alerts.CertState{}, Feeds: map[string]alerts.FeedState{}}
			for host, exp := range certs() {
				st.Certs[host] = alerts.CertState{Expiry: exp}
			}
			if c := inst.server.Certificates(); c != nil {
				for host, msg := range c.RenewErrors() {
					cs := st.Certs[host]
					cs.RenewError = msg
					st.Certs[host] = cs
				}
			}
			for name, ls := range lists() {
				if ls.Feed {
					st.Feeds[name] = alerts.FeedState{LastSuccess: ls.LastSuccess, LastError: ls.LastError}
				}
			}
			st.AuditDropped = inst.records.Stats().Dropped()
			return st
		})
	}
}

// maxExplainCache bounds the remembered suggestions.
const maxExplainCache = 256

// explain computes the suggested exclusion for the dashboard. Each
// suggestion compiles rule sets several times (about a second each on two
// cores), so only one is computed at a time — a second caller is told to
// retry rather than queue up CPU the proxy needs — and results are kept by
// record id.
func (inst *instance) explain(e *audit.Entry) (string, error) {
	if !inst.explainMu.TryLock() {
		return "", errors.New("another suggestion is being computed; reload the page in a few seconds")
	}
	defer inst.explainMu.Unlock()
	cfg := inst.server.Pipeline().Config
	key := e.ID + "\x00" + fmt.Sprintf("%p", cfg) // a reload may change the answer
	if y, ok := inst.explainCache[key]; ok {
		return y, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := explain.Explain(ctx, cfg, e, explain.Options{})
	if err != nil {
		return "", err
	}
	if inst.explainCache == nil || len(inst.explainCache) >= maxExplainCache {
		inst.explainCache = map[string]string{}
	}
	inst.explainCache[key] = s.YAML()
	return s.YAML(), nil
}

// auditStat converts the writer's counters for the metrics.
func auditStat(st audit.Stats) metrics.AuditStat {
	out := metrics.AuditStat{
		QueueDepth: st.QueueDepth, Written: st.Written,
		DroppedQueueFull: st.DroppedQueueFull, DroppedWriterClosed: st.DroppedWriterClosed, DroppedSinkFailed: st.DroppedSinkFailed,
		Aggregated: st.Aggregated, Summaries: st.Summaries, Overflow: st.Overflow, Keys: st.Keys, Degraded: st.Degraded,
	}
	for _, s := range st.Sinks {
		out.Sinks = append(out.Sinks, metrics.AuditSinkStat{Name: s.Name, Written: s.Written, Lost: s.Lost, Errors: s.Errors, Failing: s.Failing})
	}
	return out
}

// timedSink reports the audit store's write latency to the metrics: each
// Flush commits the batch written since the previous one. It passes the
// store sink's name and probe through, which the writer looks for.
type timedSink struct {
	audit.Sink
	inst    *instance
	pending int
}

func (t *timedSink) SinkName() string { return "store" }

func (t *timedSink) Probe() error {
	if p, ok := t.Sink.(audit.Prober); ok {
		return p.Probe()
	}
	return nil
}

func (t *timedSink) Write(e *audit.Entry) error {
	t.pending++
	return t.Sink.Write(e)
}

func (t *timedSink) Flush() error {
	start := time.Now()
	err := t.Sink.Flush()
	if t.pending > 0 && err == nil { // a failed batch is counted lost by the writer
		t.inst.metrics.ObserveStoreWrite(time.Since(start), t.pending)
	}
	t.pending = 0
	return err
}

// connectRedis builds the process's Redis connection (cluster.redis) and
// tries it once: an instance starts even when Redis is down, degraded, and
// catches up when it answers.
func connectRedis(cc *config.ClusterConfig, log *slog.Logger) (*redisconn.Conn, error) {
	conn, err := redisconn.New(cc.Redis, redisconn.Options{Log: log.With("component", "redis")})
	if err != nil {
		return nil, fmt.Errorf("cluster.redis: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(cc.Redis.Dial, cc.Redis.Timeout))
	defer cancel()
	if err := conn.Ping(ctx); err == nil {
		log.Info("cluster: redis connected", "cluster", cc.Name, "address", cc.Redis.Addr, "tls", cc.Redis.TLS != nil)
	}
	return conn, nil
}
