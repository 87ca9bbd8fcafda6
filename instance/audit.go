package instance

import (
	"fmt"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/metrics"
)

// openAuditStore opens the SQLite audit store (audit.store), which the
// writer feeds and the dashboard reads. It closes last but one: after the
// writer has flushed its final batch into it.
func (i *Instance) openAuditStore() error {
	sc := i.cfg.Audit.Store
	if !sc.Enabled {
		return nil
	}
	sqlite, err := store.OpenSQLite(sc.Path, store.SQLiteOptions{MaxAge: sc.MaxAge, MaxBytes: sc.MaxSize, Log: i.log})
	if err != nil {
		return fmt.Errorf("audit store (audit.store.path %s): %w", sc.Path, err)
	}
	i.store = sqlite
	return i.add(Component{Name: "audit store", Stop: sqlite.Close})
}

// openAudit opens the configured sinks (the file, the rule log, the
// store) and starts the writer. At shutdown it flushes every queued record
// and the open summaries, after the pipeline has retired.
func (i *Instance) openAudit() error {
	ac := i.cfg.Audit
	var sinks []audit.Sink
	fileSink, err := audit.OpenFileSink(ac.File)
	if err != nil {
		return err
	}
	if n := fileSink.Repaired(); n > 0 {
		i.log.Warn("audit file ended in a torn record (the process stopped mid-write); cut it off", "file", ac.File, "bytes", n)
	}
	sinks = append(sinks, fileSink)
	if ac.RuleLog != "" {
		ruleLog, err := audit.OpenRuleLogSink(ac.RuleLog)
		if err != nil {
			_ = fileSink.Close() // not a component yet: the writer owns the sinks
			return err
		}
		if n := ruleLog.Repaired(); n > 0 {
			i.log.Warn("rule log ended in a torn line (the process stopped mid-write); cut it off", "file", ac.RuleLog, "bytes", n)
		}
		sinks = append(sinks, ruleLog)
	}
	if i.store != nil {
		sink, err := i.store.Sink()
		if err != nil {
			for _, s := range sinks {
				_ = s.Close()
			}
			return fmt.Errorf("audit store: %w", err)
		}
		sinks = append(sinks, &timedSink{Sink: sink, metrics: i.metrics})
	}
	if cs, err := i.crowdsecSignals(); err != nil {
		for _, s := range sinks {
			_ = s.Close()
		}
		return fmt.Errorf("crowdsec signals: %w", err)
	} else if cs != nil {
		sinks = append(sinks, cs)
	}
	if i.pgSink != nil {
		sinks = append(sinks, i.pgSink)
	}
	batch := 0 // the writer's default
	if i.pgSink != nil {
		// One PostgreSQL transaction costs a handful of round trips
		// whatever its size; the writer flushes whenever its queue runs
		// empty, so batches only grow this large under load, where they
		// keep ingest ahead of traffic (bench/pgstore).
		batch = pgBatchSize
	}
	i.records = audit.New(audit.Options{
		QueueSize: ac.QueueSize, Log: i.log, OnFailure: ac.OnFailure, BatchSize: batch,
		Aggregate: audit.AggregateOptions{Samples: ac.Aggregate.Samples, Window: ac.Aggregate.Window, MaxKeys: ac.Aggregate.MaxKeys},
	}, sinks...)
	return i.add(Component{Name: "audit", Stop: i.closeAudit, Ready: i.auditReadiness})
}

// closeAudit flushes the queue, the store's last batch and the open
// summaries, and says how many records were written and lost.
func (i *Instance) closeAudit() error {
	err := i.records.Close()
	st := i.records.Stats()
	i.log.Info("audit records flushed", "written", st.Written, "dropped", st.Dropped(), "dropped_sink_failed", st.DroppedSinkFailed,
		"dropped_queue_full", st.DroppedQueueFull, "aggregated", st.Aggregated, "summaries", st.Summaries)
	return err
}

// auditReadiness: a failing audit is "degraded". Under audit.on_failure:
// refuse the instance answers 503 to traffic, so readiness fails and a
// load balancer moves traffic elsewhere; under serve it still serves, so
// it stays ready (failing every instance's check at once would be the
// outage the operator chose to avoid) and says why.
func (i *Instance) auditReadiness() admin.Readiness {
	degraded, why := i.records.Degraded()
	switch {
	case !degraded:
		return admin.Readiness{}
	case i.records.Refusing():
		return admin.Readiness{NotReady: []string{"degraded: audit records cannot be written, refusing requests (audit.on_failure: refuse): " + why}}
	}
	return admin.Readiness{Degraded: []string{"audit records cannot be written, serving without them (audit.on_failure: serve): " + why}}
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
	metrics *metrics.Metrics // nil: nothing to report to
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
		t.metrics.ObserveStoreWrite(time.Since(start), t.pending)
	}
	t.pending = 0
	return err
}
