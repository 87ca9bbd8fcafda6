package redisconn

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Metrics are the connection's series. Label values are fixed names chosen
// in code (operations, fallback kinds, resync reasons), never request data.
//
//	portcullis_redis_request_duration_seconds{op}  histogram, every call
//	portcullis_redis_errors_total{op}              failed calls
//	portcullis_redis_degraded                      1 while running on local state
//	portcullis_redis_fallback_total{kind}          decisions made locally because Redis was down
//	portcullis_redis_local_refusals_total          rate-limit refusals answered from the local pre-check
//	portcullis_redis_ban_resyncs_total{reason}     full reads of the shared ban table
//	portcullis_redis_ban_messages_total{result}    ban changes received by pub/sub
//	portcullis_redis_ban_outbox                    ban changes waiting for Redis
type Metrics struct {
	duration      *prometheus.HistogramVec
	errors        *prometheus.CounterVec
	degraded      prometheus.Gauge
	fallback      *prometheus.CounterVec
	localRefusals prometheus.Counter
	resyncs       *prometheus.CounterVec
	messages      *prometheus.CounterVec
	outbox        prometheus.Gauge
}

// A Redis round trip on loopback takes tens of microseconds, across a
// data centre a few hundred; the per-call timeout is tens of milliseconds.
var durationBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5}

func newMetrics() *Metrics {
	const ns, sub = "portcullis", "redis"
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help: "Round-trip time of calls to Redis, failed ones included, by operation.", Buckets: durationBuckets}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "errors_total",
			Help: "Calls to Redis that failed or timed out, by operation."}, []string{"op"}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "degraded",
			Help: "1 while Redis is unreachable and rate limits, bans and sessions fall back to local state."}),
		fallback: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "fallback_total",
			Help: "Decisions made with local state because Redis was unreachable, by kind (ratelimit, strike, session)."}, []string{"kind"}),
		localRefusals: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "local_refusals_total",
			Help: "Rate-limit refusals answered without a round trip: the key was known to be refused until a later time."}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "ban_resyncs_total",
			Help: "Full reads of the shared ban table, by reason (start, reconnect, gap, periodic)."}, []string{"reason"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "ban_messages_total",
			Help: "Ban changes received by pub/sub, by result (applied, stale, invalid)."}, []string{"result"}),
		outbox: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "ban_outbox",
			Help: "Ban changes made while Redis was unreachable, waiting to be pushed."}),
	}
	for _, op := range []string{"ratelimit", "ban", "ban_resync", "strike", "session", "ping", "probe"} {
		m.duration.WithLabelValues(op)
		m.errors.WithLabelValues(op)
	}
	for _, k := range []string{"ratelimit", "strike", "session"} {
		m.fallback.WithLabelValues(k)
	}
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.duration, m.errors, m.degraded, m.fallback, m.localRefusals, m.resyncs, m.messages, m.outbox}
}

func (m *Metrics) observe(op string, d time.Duration, err error) {
	m.duration.WithLabelValues(op).Observe(d.Seconds())
	if err != nil && !errors.Is(err, redis.Nil) {
		m.errors.WithLabelValues(op).Inc()
	}
}

// Fallback counts one decision made locally; kind is ratelimit, strike or
// session.
func (m *Metrics) Fallback(kind string) { m.fallback.WithLabelValues(kind).Inc() }

// LocalRefusal counts one rate-limit refusal answered by the pre-check.
func (m *Metrics) LocalRefusal() { m.localRefusals.Inc() }

// Resync counts one full read of the ban table.
func (m *Metrics) Resync(reason string) { m.resyncs.WithLabelValues(reason).Inc() }

// Message counts one ban change received; result is applied, stale or
// invalid.
func (m *Metrics) Message(result string) { m.messages.WithLabelValues(result).Inc() }

// Outbox sets the number of ban changes waiting for Redis.
func (m *Metrics) Outbox(n int) { m.outbox.Set(float64(n)) }
