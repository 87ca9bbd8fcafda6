package crowdsec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// maxEventsPerAlert bounds the events one alert carries; events_count
// still says how many blocks it stands for.
const maxEventsPerAlert = 10

// SignalsOptions configure Signals.
type SignalsOptions struct {
	URL           string // the LAPI's base URL, without a trailing slash
	MachineID     string
	Password      string
	FlushInterval time.Duration
	Timeout       time.Duration // of one LAPI call
	BatchSize     int           // alerts per request
	QueueSize     int           // blocks waiting to be sent
	Remediation   bool
	Log           *slog.Logger
	Client        *http.Client // nil: a client with Timeout
}

// SignalStats count what Signals did.
type SignalStats struct {
	Queued, Dropped    int64 // blocks taken; blocks dropped because the queue was full
	AlertsSent, Failed int64 // alerts the LAPI accepted; alerts lost to a failed send
}

// Signals publishes blocked requests to the LAPI as alerts. It is an
// audit sink (audit.Sink): Write only queues, never waiting.
type Signals struct {
	o      SignalsOptions
	client *http.Client
	queue  chan block

	queued, dropped, sent, failed atomic.Int64

	token    string // watcher JWT; used by the sending goroutine only
	tokenEnd time.Time

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// block is what an alert needs from one audit record: no headers, body or
// query string (they may hold secrets), no rule details.
type block struct {
	ip     netip.Addr
	at     time.Time
	stage  string
	reason string
	host   string
	method string
	path   string
	id     string
	status int
}

// NewSignals starts the sender; Close sends what is queued and stops.
func NewSignals(o SignalsOptions) (*Signals, error) {
	if o.URL == "" || o.MachineID == "" || o.Password == "" {
		return nil, errors.New("crowdsec: signals need the LAPI URL, a machine id and its password")
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 50
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: o.Timeout}
	}
	s := &Signals{o: o, client: client, queue: make(chan block, o.QueueSize), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s, nil
}

var _ audit.Sink = (*Signals)(nil)

// SinkName labels the sink in the audit writer's metrics and logs.
func (s *Signals) SinkName() string { return "crowdsec" }

// Write queues the record of a blocked request. Blocks by the ban stage
// are not signalled: they are the echo of a ban (often CrowdSec's own),
// not new evidence; nor are challenge pages, which any browser gets once. A full queue drops the block and counts it.
func (s *Signals) Write(e *audit.Entry) error {
	if e.Action != audit.ActionBlocked || e.Stage == audit.StageBan || e.Stage == audit.StageChallenge {
		return nil
	}
	ip, err := netip.ParseAddr(e.ClientIP)
	if err != nil {
		return nil
	}
	path, _, _ := strings.Cut(e.URI, "?")
	b := block{ip: ip.Unmap(), at: e.Time, stage: e.Stage, reason: truncate(e.Reason, 200), host: e.Host,
		method: e.Method, path: truncate(path, 200), id: e.ID, status: e.Status}
	if b.at.IsZero() {
		b.at = time.Now()
	}
	select {
	case s.queue <- b:
		s.queued.Add(1)
	default:
		s.dropped.Add(1)
	}
	return nil
}

// Flush does nothing: alerts leave on their own schedule (flush_interval),
// so that a slow LAPI never holds up the audit writer.
func (s *Signals) Flush() error { return nil }

// Close sends what is queued (within one timeout) and stops.
func (s *Signals) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	if n := s.dropped.Load() + s.failed.Load(); n > 0 {
		s.o.Log.Warn("CrowdSec signals lost", "dropped_queue_full", s.dropped.Load(), "alerts_failed", s.failed.Load())
	}
	return nil
}

// Stats returns the counters.
func (s *Signals) Stats() SignalStats {
	return SignalStats{Queued: s.queued.Load(), Dropped: s.dropped.Load(), AlertsSent: s.sent.Load(), Failed: s.failed.Load()}
}

func (s *Signals) run() {
	defer close(s.done)
	t := time.NewTicker(s.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.send()
			return
		case <-t.C:
			s.send()
		}
	}
}

// send drains the queue into alerts, one per client address and stage,
// and posts them in batches.
func (s *Signals) send() {
	var blocks []block
drain:
	for len(blocks) < cap(s.queue) {
		select {
		case b := <-s.queue:
			blocks = append(blocks, b)
		default:
			break drain
		}
	}
	if len(blocks) == 0 {
		return
	}
	alerts := s.alerts(blocks)
	for start := 0; start < len(alerts); start += s.o.BatchSize {
		batch := alerts[start:min(start+s.o.BatchSize, len(alerts))]
		ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
		err := s.post(ctx, batch)
		cancel()
		if err != nil {
			s.failed.Add(int64(len(batch)))
			s.o.Log.Warn("CrowdSec alerts not sent", "lapi", s.o.URL, "alerts", len(batch), "err", err)
			continue
		}
		s.sent.Add(int64(len(batch)))
	}
}

// The LAPI's alert, as its API (swagger) defines it; required fields
// are always sent.
type alert struct {
	Scenario        string  `json:"scenario"`
	ScenarioHash    string  `json:"scenario_hash"`
	ScenarioVersion string  `json:"scenario_version"`
	Message         string  `json:"message"`
	EventsCount     int32   `json:"events_count"`
	StartAt         string  `json:"start_at"`
	StopAt          string  `json:"stop_at"`
	Capacity        int32   `json:"capacity"`
	Leakspeed       string  `json:"leakspeed"`
	Simulated       bool    `json:"simulated"`
	Remediation     bool    `json:"remediation"`
	Events          []event `json:"events"`
	Source          source  `json:"source"`
}

type event struct {
	Timestamp string `json:"timestamp"`
	Meta      []meta `json:"meta"`
}

type meta struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type source struct {
	Scope string `json:"scope"`
	Value string `json:"value"`
	IP    string `json:"ip"`
}

// alerts groups blocks by client address and stage, in order of arrival.
func (s *Signals) alerts(blocks []block) []alert {
	type key struct {
		ip    netip.Addr
		stage string
	}
	idx := map[key]int{}
	var out []alert
	var last []time.Time
	for _, b := range blocks {
		k := key{b.ip, b.stage}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			ip := b.ip.String()
			out = append(out, alert{Scenario: "portcullis/" + b.stage, Leakspeed: "0s", Remediation: s.o.Remediation,
				StartAt: b.at.UTC().Format(time.RFC3339), Source: source{Scope: "Ip", Value: ip, IP: ip}})
			last = append(last, b.at)
		}
		a := &out[i]
		a.EventsCount++
		last[i] = later(last[i], b.at)
		if len(a.Events) < maxEventsPerAlert {
			a.Events = append(a.Events, event{Timestamp: b.at.UTC().Format(time.RFC3339), Meta: []meta{
				{"service", "http"}, {"source_ip", b.ip.String()}, {"stage", b.stage}, {"target_fqdn", b.host},
				{"http_verb", b.method}, {"http_path", b.path}, {"http_status", strconv.Itoa(b.status)},
				{"request_id", b.id}, {"reason", b.reason},
			}})
		}
	}
	for i := range out {
		out[i].StopAt = last[i].UTC().Format(time.RFC3339)
		out[i].Message = fmt.Sprintf("Portcullis blocked %d request(s) from %s at the %s stage", out[i].EventsCount, out[i].Source.Value, blocksStage(out[i].Scenario))
	}
	return out
}

func blocksStage(scenario string) string { return strings.TrimPrefix(scenario, "portcullis/") }

// post sends one batch, logging in first (and again once if the token was
// refused).
func (s *Signals) post(ctx context.Context, batch []alert) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("encode alerts: %w", err)
	}
	for attempt := 0; ; attempt++ {
		if err := s.login(ctx, attempt > 0); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL+"/v1/alerts", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", userAgent)
		resp, err := s.client.Do(req)
		if err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			continue // the token expired early (LAPI restarted): log in again
		default:
			return fmt.Errorf("alerts: LAPI answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
		}
	}
}

// login gets a watcher token unless the current one is valid for another
// minute (or force).
func (s *Signals) login(ctx context.Context, force bool) error {
	if !force && s.token != "" && time.Until(s.tokenEnd) > time.Minute {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"machine_id": s.o.MachineID, "password": s.o.Password, "scenarios": []string{"portcullis/waf", "portcullis/ratelimit", "portcullis/reputation", "portcullis/protocol"}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL+"/v1/watchers/login", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("watcher login: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("watcher login: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("watcher login as %q: LAPI answered %s (check crowdsec.signals and cscli machines list)", s.o.MachineID, resp.Status)
	}
	var tok struct {
		Token  string `json:"token"`
		Expire string `json:"expire"`
	}
	if err := json.Unmarshal(data, &tok); err != nil || tok.Token == "" {
		return fmt.Errorf("watcher login: no token in the answer")
	}
	s.token = tok.Token
	s.tokenEnd = time.Now().Add(30 * time.Minute)
	if end, err := time.Parse(time.RFC3339, tok.Expire); err == nil {
		s.tokenEnd = end
	}
	return nil
}
