package instance

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/audit/store"
)

// pgBatchSize is the most records the audit writer hands the shared store
// in one transaction.
const pgBatchSize = 2000

// openPostgres opens the cluster's shared audit store (cluster.postgres)
// and the sink the audit writer feeds it through. PostgreSQL being down
// does not stop the start: records spool to disk (cluster.postgres.
// spool_dir) and readiness says degraded until they are delivered. The
// store closes after the writer, which closes the sink with its last
// batch.
func (i *Instance) openPostgres() error {
	cc := i.cfg.Cluster
	if cc == nil || cc.Postgres == nil {
		return nil
	}
	pc := cc.Postgres
	pg, err := store.OpenPostgres(store.PostgresOptions{
		ConnString: pc.ConnString, Password: pc.Password.Reveal(), Schema: pc.Schema, Instance: pc.Instance,
		MaxAge: pc.MaxAge, Timeout: pc.Timeout, Dial: pc.Dial, Log: i.log.With("component", "postgres"),
	})
	if err != nil {
		return fmt.Errorf("cluster.postgres: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pc.Dial+pc.Timeout)
	defer cancel()
	if err := pg.EnsureSchema(ctx); err != nil {
		i.log.Warn("cluster: postgres audit store not reachable at start; records spool until it is", "address", pc.Addr, "error", err)
	} else {
		i.log.Info("cluster: postgres audit store connected", "address", pc.Addr, "schema", pc.Schema, "instance", pc.Instance, "sslmode", pc.SSLMode)
	}
	sink, err := pg.Sink(store.SpoolOptions{Dir: pc.SpoolDir, MaxBytes: pc.SpoolMax})
	if err != nil {
		_ = pg.Close()
		return fmt.Errorf("cluster.postgres: %w", err)
	}
	i.pg, i.pgSink = pg, sink
	if i.metrics != nil {
		i.metrics.Registry().MustRegister(spoolCollectors(sink, pc.SpoolMax)...)
	}
	return i.add(Component{Name: "postgres audit store", Stop: pg.Close, Ready: i.postgresReadiness})
}

// postgresReadiness reports records waiting in the spool as degraded,
// never as not ready: they are kept, and every instance failing its check
// during a database outage would turn it into a traffic outage.
func (i *Instance) postgresReadiness() admin.Readiness {
	if down, why := i.pgSink.Degraded(); down {
		return admin.Readiness{Degraded: []string{why}}
	}
	return admin.Readiness{}
}

// spoolCollectors export the sink's counters.
func spoolCollectors(k *store.PostgresSink, limit int64) []prometheus.Collector {
	stat := func(f func(store.SpoolStats) float64) func() float64 {
		return func() float64 { return f(k.Stats()) }
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portcullis_postgres_degraded",
			Help: "1 while the shared audit store cannot be written to or records wait in the spool."},
			stat(func(s store.SpoolStats) float64 {
				if s.Down || s.Batches > 0 {
					return 1
				}
				return 0
			})),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "portcullis_postgres_write_failures_total",
			Help: "Failed writes of a batch to the shared audit store."}, stat(func(s store.SpoolStats) float64 { return float64(s.Failures) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "portcullis_postgres_delivered_records_total",
			Help: "Audit records written to the shared audit store, directly or from the spool."}, stat(func(s store.SpoolStats) float64 { return float64(s.Delivered) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "portcullis_postgres_duplicate_records_total",
			Help: "Redelivered audit records the shared store already had (skipped)."}, stat(func(s store.SpoolStats) float64 { return float64(s.Duplicates) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "portcullis_audit_spool_records_total",
			Help: "Audit records written to the on-disk spool while the shared store was unreachable."}, stat(func(s store.SpoolStats) float64 { return float64(s.Spooled) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "portcullis_audit_spool_dropped_records_total",
			Help: "Audit records lost because the spool was full (cluster.postgres.spool_max_size)."}, stat(func(s store.SpoolStats) float64 { return float64(s.Dropped) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portcullis_audit_spool_batches",
			Help: "Batches waiting in the spool."}, stat(func(s store.SpoolStats) float64 { return float64(s.Batches) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portcullis_audit_spool_bytes",
			Help: "Bytes waiting in the spool."}, stat(func(s store.SpoolStats) float64 { return float64(s.Bytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portcullis_audit_spool_max_bytes",
			Help: "The spool's bound."}, func() float64 { return float64(limit) }),
	}
}
