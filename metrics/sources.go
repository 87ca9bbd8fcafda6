package metrics

import (
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources are read at scrape time. Set them once when wiring, as closures
// that look up the pipeline in service at the moment they are called (for
// example through the gateway's atomic pointer), never as closures over one
// pipeline: a reload replaces the lists and the audit writer, and a
// captured pipeline would report a dead one forever. Any field may be nil.
// Callbacks must be fast and must not block: they run on every scrape.
type Sources struct {
	// Lists reports every configured IP list and feed.
	Lists func() []ListStat
	// Audit reports the audit writer.
	Audit func() AuditStat
	// Certs reports each TLS host's current certificate expiry
	// (tlsmgr.Manager.Expiry).
	Certs func() map[string]time.Time
	// ActiveBans is the number of bans held (bans.Store.Len).
	ActiveBans func() int
	// Alerts reports webhook delivery (alerts.Alerter.Stats).
	Alerts func() AlertStat
	// Inspections reports the rule engine's slots (waf.Gate).
	Inspections func() InspectionStat
	// Connections reports admission at accept (connlimit.Limiter).
	Connections func() ConnectionStat
}

// ConnectionStat is the state of the listeners' admission (connlimit).
type ConnectionStat struct {
	Open int64 // client connections open
	// Refused counts connections closed at accept, by reason ("per_client",
	// "rate", "fair_share"); the reasons are a fixed set.
	Refused map[string]uint64
	// Paused reports that the listeners stopped accepting because file
	// descriptors are short; Pauses counts such pauses.
	Paused bool
	Pauses uint64
	// Descriptors in use (estimated), their limit and the reserve kept
	// free; Limit 0: unknown.
	DescriptorsInUse, DescriptorLimit, DescriptorReserve int
}

// InspectionStat is the state of the inspection slots (server.inspections).
type InspectionStat struct {
	Slots, Inside, Waiting int
}

// ListStat is the health of one IP list, from reputation.List.Stats.
type ListStat struct {
	Name    string
	Entries int
	// LastSuccess is when the file or feed was last loaded or confirmed
	// unchanged; zero for lists of inline entries and feeds that never
	// loaded, which then have no last-success series.
	LastSuccess time.Time
	// Failures counts failed or rejected refreshes since start.
	Failures uint64
}

// AuditStat is the state of the audit writer, from audit.Writer.Stats.
// Written and the Dropped counts are in requests: a summary record stands
// for the requests it counted.
type AuditStat struct {
	QueueDepth int
	Written    uint64
	// Dropped by reason: the queue was full, the writer closed, a sink
	// could not write the record.
	DroppedQueueFull, DroppedWriterClosed, DroppedSinkFailed uint64
	// Aggregated requests were counted into summary records; Summaries
	// is the summary records made; Overflow the requests counted into a
	// catch-all because the key table was full; Keys the keys held.
	Aggregated, Summaries, Overflow uint64
	Keys                            int
	// Degraded is true while a sink cannot write.
	Degraded bool
	Sinks    []AuditSinkStat
}

// AuditSinkStat is one audit sink ("file", "store", "rule_log").
type AuditSinkStat struct {
	Name                  string
	Written, Lost, Errors uint64
	Failing               bool
}

// AlertStat counts alert messages, from alerts.Alerter.Stats.
type AlertStat struct {
	Sent, Failed, Dropped uint64
}

// SetSources replaces the scrape-time callbacks.
func (m *Metrics) SetSources(s Sources) { m.sources.Store(&s) }

// sourceCollector turns Sources into series at scrape time.
type sourceCollector struct {
	m *Metrics
	// panics counts panicking callbacks per source. It is reported by
	// Collect itself, after the calls, so that a scrape already shows the
	// failure that left its series out (the registry runs collectors
	// concurrently: a separate counter would lag one scrape behind).
	panics [len(sourceNames)]atomic.Uint64
}

// sourceNames label portcullis_metrics_source_errors_total.
var sourceNames = [...]string{"lists", "audit", "certs", "bans", "alerts", "inspections", "connections"}

var _ prometheus.Collector = (*sourceCollector)(nil)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

var (
	listEntriesDesc     = desc("list_entries", "Distinct prefixes in use by an IP list.", "list")
	listLastSuccessDesc = desc("list_last_success_timestamp_seconds", "Unix time an IP list's file or feed was last loaded or confirmed unchanged.", "list")
	listFailuresDesc    = desc("list_refresh_failures_total", "Failed or rejected refreshes of an IP list's file or feed.", "list")
	auditQueueDesc      = desc("audit_queue_depth", "Audit records waiting to be written.")
	auditWrittenDesc    = desc("audit_records_written_total", "Requests whose audit record (in full, or counted in a summary record) every sink wrote.")
	auditDroppedDesc    = desc("audit_records_dropped_total", "Requests whose audit record was lost, by reason: queue_full, writer_closed, sink_failed (a sink could not write it).", "reason")
	auditDegradedDesc   = desc("audit_degraded", "1 while an audit sink cannot write (a full disk, say), else 0.")
	auditSinkWritten    = desc("audit_sink_records_written_total", "Records an audit sink made durable.", "sink")
	auditSinkLost       = desc("audit_sink_records_lost_total", "Records an audit sink could not write.", "sink")
	auditErrorsDesc     = desc("audit_sink_errors_total", "Failed writes, flushes and probes of an audit sink.", "sink")
	auditSinkFailing    = desc("audit_sink_failing", "1 while an audit sink cannot write, else 0.", "sink")
	auditAggregatedDesc = desc("audit_records_aggregated_total", "Decided requests counted into summary records instead of recorded in full (audit.aggregate).")
	auditSummariesDesc  = desc("audit_summary_records_total", "Summary records written for aggregated requests.")
	auditOverflowDesc   = desc("audit_aggregation_overflow_total", "Requests counted into a catch-all summary because the aggregation key table was full.")
	auditKeysDesc       = desc("audit_aggregation_keys", "Aggregation keys held (audit.aggregate.max_keys bounds them).")
	certExpiryDesc      = desc("certificate_expiry_timestamp_seconds", "Unix time the current certificate of a TLS host expires.", "host")
	bansActiveDesc      = desc("bans_active", "Bans held, including expired ones not yet swept.")
	alertsSentDesc      = desc("alerts_sent_total", "Alert messages delivered to a webhook.")
	alertsFailedDesc    = desc("alerts_failed_total", "Alert messages a webhook did not accept after all retries.")
	alertsDroppedDesc   = desc("alerts_dropped_total", "Alert messages dropped by the rate limit or a full queue.")
	inspectSlotsDesc    = desc("inspection_slots", "Requests the rule engine may inspect at once (server.inspections).")
	inspectInsideDesc   = desc("inspections_in_progress", "Requests holding an inspection slot.")
	inspectWaitingDesc  = desc("inspections_waiting", "Requests waiting for an inspection slot.")
	sourceErrorsDesc    = desc("metrics_source_errors_total", "Scrape-time callbacks that panicked; their series are missing from that scrape.", "source")
	connOpenDesc        = desc("client_connections_open", "Client connections open on the traffic listeners.")
	connRefusedDesc     = desc("client_connections_refused_total", "Client connections closed at accept: per_client (server.client_connections), rate (server.client_connection_rate) or fair_share (over the client's share while descriptors are short).", "reason")
	acceptPausedDesc    = desc("accept_paused", "1 while the traffic listeners do not accept because file descriptors are short (server.descriptor_reserve).")
	acceptPausesDesc    = desc("accept_pauses_total", "Times the traffic listeners stopped accepting because file descriptors were short.")
	fdInUseDesc         = desc("descriptors_in_use", "File descriptors in use (client connections counted exactly, the rest sampled).")
	fdLimitDesc         = desc("descriptors_limit", "The file descriptor limit (RLIMIT_NOFILE) the reserve is kept from.")
	fdReserveDesc       = desc("descriptors_reserve", "File descriptors kept free for upstream connections, files and the admin listener.")
)

// Describe sends every descriptor Collect may use.
func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		listEntriesDesc, listLastSuccessDesc, listFailuresDesc,
		auditQueueDesc, auditWrittenDesc, auditDroppedDesc, auditDegradedDesc,
		auditSinkWritten, auditSinkLost, auditErrorsDesc, auditSinkFailing,
		auditAggregatedDesc, auditSummariesDesc, auditOverflowDesc, auditKeysDesc,
		certExpiryDesc, bansActiveDesc, alertsSentDesc, alertsFailedDesc, alertsDroppedDesc,
		inspectSlotsDesc, inspectInsideDesc, inspectWaitingDesc, sourceErrorsDesc,
		connOpenDesc, connRefusedDesc, acceptPausedDesc, acceptPausesDesc, fdInUseDesc, fdLimitDesc, fdReserveDesc,
	} {
		ch <- d
	}
}

// Collect calls the sources. A panicking callback loses only its own series
// and is counted: the scrape, and the process (Gather runs collectors on
// goroutines of its own, where a panic is fatal), go on.
func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	defer func() {
		for i, name := range sourceNames {
			ch <- prometheus.MustNewConstMetric(sourceErrorsDesc, prometheus.CounterValue, float64(c.panics[i].Load()), name)
		}
	}()
	s := c.m.sources.Load()
	if s == nil {
		return
	}
	if s.Lists != nil {
		c.safely(0, func() { collectLists(ch, s.Lists()) })
	}
	if s.Audit != nil {
		c.safely(1, func() { collectAudit(ch, s.Audit()) })
	}
	if s.Certs != nil {
		c.safely(2, func() { collectCerts(ch, s.Certs()) })
	}
	if s.ActiveBans != nil {
		c.safely(3, func() {
			ch <- prometheus.MustNewConstMetric(bansActiveDesc, prometheus.GaugeValue, float64(s.ActiveBans()))
		})
	}
	if s.Alerts != nil {
		c.safely(4, func() {
			a := s.Alerts()
			ch <- prometheus.MustNewConstMetric(alertsSentDesc, prometheus.CounterValue, float64(a.Sent))
			ch <- prometheus.MustNewConstMetric(alertsFailedDesc, prometheus.CounterValue, float64(a.Failed))
			ch <- prometheus.MustNewConstMetric(alertsDroppedDesc, prometheus.CounterValue, float64(a.Dropped))
		})
	}
	if s.Inspections != nil {
		c.safely(5, func() {
			st := s.Inspections()
			ch <- prometheus.MustNewConstMetric(inspectSlotsDesc, prometheus.GaugeValue, float64(st.Slots))
			ch <- prometheus.MustNewConstMetric(inspectInsideDesc, prometheus.GaugeValue, float64(st.Inside))
			ch <- prometheus.MustNewConstMetric(inspectWaitingDesc, prometheus.GaugeValue, float64(st.Waiting))
		})
	}
	if s.Connections != nil {
		c.safely(6, func() { collectConnections(ch, s.Connections()) })
	}
}

// connectionReasons are the refusal reasons reported, always all of them
// (a series that appears only after the first refusal breaks rate()).
var connectionReasons = [...]string{"per_client", "rate", "fair_share"}

func collectConnections(ch chan<- prometheus.Metric, st ConnectionStat) {
	ch <- prometheus.MustNewConstMetric(connOpenDesc, prometheus.GaugeValue, float64(st.Open))
	for _, r := range connectionReasons {
		ch <- prometheus.MustNewConstMetric(connRefusedDesc, prometheus.CounterValue, float64(st.Refused[r]), r)
	}
	paused := 0.0
	if st.Paused {
		paused = 1
	}
	ch <- prometheus.MustNewConstMetric(acceptPausedDesc, prometheus.GaugeValue, paused)
	ch <- prometheus.MustNewConstMetric(acceptPausesDesc, prometheus.CounterValue, float64(st.Pauses))
	ch <- prometheus.MustNewConstMetric(fdInUseDesc, prometheus.GaugeValue, float64(st.DescriptorsInUse))
	if st.DescriptorLimit > 0 {
		ch <- prometheus.MustNewConstMetric(fdLimitDesc, prometheus.GaugeValue, float64(st.DescriptorLimit))
		ch <- prometheus.MustNewConstMetric(fdReserveDesc, prometheus.GaugeValue, float64(st.DescriptorReserve))
	}
}

func (c *sourceCollector) safely(source int, f func()) {
	defer func() {
		if v := recover(); v != nil {
			c.panics[source].Add(1)
			slog.Error("metrics source panicked", "source", sourceNames[source], "panic", fmt.Sprint(v))
		}
	}()
	f()
}

func collectAudit(ch chan<- prometheus.Metric, a AuditStat) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(auditQueueDesc, float64(a.QueueDepth))
	counter(auditWrittenDesc, a.Written)
	counter(auditDroppedDesc, a.DroppedQueueFull, "queue_full")
	counter(auditDroppedDesc, a.DroppedWriterClosed, "writer_closed")
	counter(auditDroppedDesc, a.DroppedSinkFailed, "sink_failed")
	gauge(auditDegradedDesc, bool01(a.Degraded))
	counter(auditAggregatedDesc, a.Aggregated)
	counter(auditSummariesDesc, a.Summaries)
	counter(auditOverflowDesc, a.Overflow)
	gauge(auditKeysDesc, float64(a.Keys))
	seen := map[string]bool{}
	for _, s := range a.Sinks {
		if seen[s.Name] || len(seen) >= MaxSourceItems || !utf8.ValidString(s.Name) {
			continue
		}
		seen[s.Name] = true
		counter(auditSinkWritten, s.Written, s.Name)
		counter(auditSinkLost, s.Lost, s.Name)
		counter(auditErrorsDesc, s.Errors, s.Name)
		gauge(auditSinkFailing, bool01(s.Failing), s.Name)
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collectLists reports each list name once (a duplicate series would fail
// the scrape), at most MaxSourceItems of them. Names that are not UTF-8
// (the client library refuses them) are left out.
func collectLists(ch chan<- prometheus.Metric, lists []ListStat) {
	seen := make(map[string]struct{}, len(lists))
	for _, l := range lists {
		if _, dup := seen[l.Name]; dup || len(seen) >= MaxSourceItems || !utf8.ValidString(l.Name) {
			continue
		}
		seen[l.Name] = struct{}{}
		ch <- prometheus.MustNewConstMetric(listEntriesDesc, prometheus.GaugeValue, float64(l.Entries), l.Name)
		ch <- prometheus.MustNewConstMetric(listFailuresDesc, prometheus.CounterValue, float64(l.Failures), l.Name)
		if !l.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(listLastSuccessDesc, prometheus.GaugeValue, unixSeconds(l.LastSuccess), l.Name)
		}
	}
}

// collectCerts reports hosts in name order so that the cap keeps the same
// ones on every scrape.
func collectCerts(ch chan<- prometheus.Metric, certs map[string]time.Time) {
	hosts := make([]string, 0, len(certs))
	for h := range certs {
		if utf8.ValidString(h) {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	if len(hosts) > MaxSourceItems {
		hosts = hosts[:MaxSourceItems]
	}
	for _, h := range hosts {
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, unixSeconds(certs[h]), h)
	}
}
