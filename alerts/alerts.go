// Package alerts tells operators about incidents through webhooks: a generic
// JSON POST, or Slack's incoming-webhook format (which Mattermost, Rocket.Chat
// and Discord's /slack endpoint also accept).
//
// Place in the request path: after it, beside metrics/. The gateway reports
// blocked requests (ObserveBlock) and new bans (NewBan) without waiting; a
// periodic Check reads certificate expiries, feed health and the audit
// writer's drop counter. The package observes; it never decides anything
// about a request, and nothing it does (a slow or dead webhook included) can
// delay one.
//
// # Incidents
//
//	spike        opens: more than AttackSpike.BlocksPerMinute requests were
//	             blocked within one calendar minute
//	             closes: back at or under the threshold
//	cert:<host>  opens: the certificate expires within CertExpiry.Within, or
//	             its renewal reports an error
//	             closes: renewed and no error, or the host was removed
//	feed:<list>  opens: no successful load of the list for FeedStale.After
//	             closes: loaded again, or the list was removed
//	audit-drops  opens: the audit writer's drop counter grew since the last Check
//	             closes: it stopped growing
//
// An incident sends one message when it opens, nothing while it stays open,
// and one recovery message once its condition has been clear for Cooldown,
// so a flapping condition does not page anyone twice. New bans are not
// incidents: each sends one message, but at most Bans.Burst per Bans.Window;
// the rest of a flood is summed up in one message at the end of the window.
// MaxPerHour caps opening and ban messages together; recoveries are never
// cut, so every opening that went out gets its recovery.
//
// # Messages
//
// Generic webhooks receive
//
//	{"source": "portcullis", "instance": "edge-1", "event": "attack_spike",
//	 "status": "firing", "severity": "warning", "incident": "spike",
//	 "summary": "...", "details": {...}, "time": "2026-03-01T12:00:00Z"}
//
// with event attack_spike, cert_expiry, feed_stale, audit_drops, ban or
// ban_summary; status firing, resolved or info (bans); severity info,
// warning or critical. Slack webhooks receive {"text": "..."} with the same
// summary. Messages carry counts, host names, list names and, for bans, the
// banned prefix and the ban's reason; never request data, client addresses
// of unbanned clients, or secrets.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/internal/every"
	"golang.org/x/net/http/httpguts"
)

// Config configures an Alerter. The zero value of each field means its
// default; New validates the whole Config and reports every problem.
type Config struct {
	// Webhooks receive every message. With none, messages are only logged.
	Webhooks []Webhook
	// AttackSpike opens the "spike" incident.
	AttackSpike AttackSpike
	// CertExpiry opens "cert:<host>" incidents.
	CertExpiry CertExpiry
	// FeedStale opens "feed:<list>" incidents.
	FeedStale FeedStale
	// Bans limits messages about new bans.
	Bans Bans
	// Cooldown is how long an incident's condition must stay clear before
	// the incident closes with a recovery message. Default: 5m.
	Cooldown time.Duration
	// MaxPerHour caps messages that open incidents or report bans, all
	// webhooks together; the excess is logged and counted as dropped, and
	// an incident whose opening was dropped sends no recovery either.
	// Default: 60.
	MaxPerHour int
	// Interval is how often Start runs Check. Default: 15s.
	Interval time.Duration
	// Instance names this Portcullis in messages, to tell instances behind
	// one load balancer apart. Default: the host name.
	Instance string
	// Timeout bounds one delivery attempt. Default: 10s.
	Timeout time.Duration
	// Retries is how many times a failed delivery is retried (network
	// errors, 408, 429 and 5xx), waiting RetryBackoff, then twice as long
	// each time, up to 1m. Default: 3; a negative value is an error.
	Retries int
	// RetryBackoff is the first wait between attempts. Default: 2s.
	RetryBackoff time.Duration
	// QueueSize bounds the messages waiting for each webhook; when full,
	// new ones are dropped and counted. Default: 256.
	QueueSize int
	// Client sends the webhooks. Redirects are never followed, whatever
	// the client says: a redirect would resend the payload and the
	// configured headers to a place nobody configured. Default: a client
	// with its own transport.
	Client *http.Client
	// Log receives every message (so alerts are visible without webhooks)
	// and delivery failures. Default: slog.Default().
	Log *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Webhook is one receiver.
type Webhook struct {
	// URL is the http or https endpoint. It often holds a secret token
	// (Slack's does, in the path), so it is never logged: logs name the
	// webhook by its index and host only.
	URL string
	// Format is "generic" (default) or "slack".
	Format string
	// Headers are added to every request, e.g. Authorization for a
	// receiver that wants a token. They are never logged.
	Headers map[string]string
}

// AttackSpike configures the "spike" incident.
type AttackSpike struct {
	// BlocksPerMinute is the threshold: the incident opens when more
	// requests than this were blocked within one calendar minute. Default:
	// 0, disabled (what counts as a spike depends on the traffic).
	BlocksPerMinute int
}

// CertExpiry configures the "cert:<host>" incidents.
type CertExpiry struct {
	// Within opens an incident when a certificate expires within this
	// long. ACME renews a third of the lifetime before expiry, so with the
	// default a certificate only gets here after renewals failed for weeks.
	// Default: 14 days; negative disables expiry alerts (renewal errors
	// still alert).
	Within time.Duration
}

// FeedStale configures the "feed:<list>" incidents.
type FeedStale struct {
	// After opens an incident when an IP list's file or feed has not
	// loaded successfully for this long (the list keeps serving its last
	// good copy meanwhile). Default: 24h; negative disables.
	After time.Duration
}

// Bans configures messages about new bans.
type Bans struct {
	// Burst is how many bans get a message of their own per Window.
	// Default: 5.
	Burst int
	// Window is the period of Burst; bans beyond it are summed up in one
	// message when the window ends. Default: 10m.
	Window time.Duration
}

// State is what Check compares against the thresholds. Build it from the
// pipeline in service at the time of the call.
type State struct {
	// Certs maps each TLS host to its certificate (tlsmgr.Manager.Expiry
	// gives the expiries).
	Certs map[string]CertState
	// Feeds maps each IP list that loads from a file or URL to its health
	// (reputation.List.Stats). Lists of inline entries never go stale and
	// should be left out.
	Feeds map[string]FeedState
	// AuditDropped is the audit writer's cumulative drop count
	// (audit.Writer.Stats). A smaller value than last time means a new
	// writer, and counts from zero.
	AuditDropped uint64
}

// CertState is one host's certificate.
type CertState struct {
	// Expiry is the current certificate's NotAfter; zero if there is none
	// yet.
	Expiry time.Time
	// RenewError is the last renewal or issuance error, empty once a
	// renewal succeeded.
	RenewError string
}

// FeedState is one IP list's refresh health.
type FeedState struct {
	// LastSuccess is the last successful load; zero if none yet (the list
	// then counts as stale FeedStale.After after Check first saw it).
	LastSuccess time.Time
	// LastError describes the latest failure, for the message.
	LastError string
}

// Stats counts messages.
type Stats struct {
	// Sent counts deliveries a webhook accepted (one message to two
	// webhooks is two).
	Sent uint64
	// Failed counts deliveries that failed after all retries.
	Failed uint64
	// Retried counts retry attempts.
	Retried uint64
	// Dropped counts messages cut by MaxPerHour, deliveries dropped from a
	// full queue, and bans dropped from a full input queue (those still
	// appear in the next summary's count).
	Dropped uint64
}

// Alerter turns observations into messages. Its input methods never block;
// all methods are safe for concurrent use.
type Alerter struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	client *http.Client
	hooks  []*hook

	// blocks counts blocked requests per calendar minute without locks:
	// each slot packs minute<<32 | count.
	blocks [4]atomic.Uint64

	banEvents chan banEvent
	bansLost  atomic.Uint64 // bans that found banEvents full

	sent, failed, retried, dropped atomic.Uint64

	mu        sync.Mutex // guards the incident state below and closed
	incidents map[string]*incident
	feedSeen  map[string]time.Time
	lastDrops uint64
	banWin    banWindow
	capped    []time.Time // times of recent capped messages, oldest first
	closed    bool

	loop     every.Loop
	ctx      context.Context // ends in-flight deliveries at Close
	cancel   context.CancelFunc
	senders  sync.WaitGroup
	closeOne sync.Once
}

// Defaults.
const (
	DefaultCooldown     = 5 * time.Minute
	DefaultMaxPerHour   = 60
	DefaultInterval     = 15 * time.Second
	DefaultTimeout      = 10 * time.Second
	DefaultRetries      = 3
	DefaultRetryBackoff = 2 * time.Second
	DefaultQueueSize    = 256
	DefaultCertWithin   = 14 * 24 * time.Hour
	DefaultFeedAfter    = 24 * time.Hour
	DefaultBanBurst     = 5
	DefaultBanWindow    = 10 * time.Minute
	maxBackoff          = time.Minute
	banQueueSize        = 1024
)

// New validates cfg and starts one delivery goroutine per webhook. Close
// stops them.
func New(cfg Config) (*Alerter, error) {
	if err := cfg.normalise(); err != nil {
		return nil, err
	}
	a := &Alerter{
		cfg: cfg, log: cfg.Log, now: cfg.Now,
		banEvents: make(chan banEvent, banQueueSize),
		incidents: map[string]*incident{},
		feedSeen:  map[string]time.Time{},
	}
	a.client = noRedirects(cfg.Client)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	for i, w := range cfg.Webhooks {
		u, _ := url.Parse(w.URL) // validated
		h := &hook{
			url: w.URL, name: fmt.Sprintf("webhook %d (%s)", i, u.Host),
			slack: w.Format == FormatSlack, headers: http.Header{},
			queue: make(chan []byte, cfg.QueueSize),
		}
		for k, v := range w.Headers {
			h.headers.Set(k, v)
		}
		a.hooks = append(a.hooks, h)
		a.senders.Add(1)
		go a.send(h)
	}
	return a, nil
}

// Formats of Webhook.Format.
const (
	FormatGeneric = "generic"
	FormatSlack   = "slack"
)

// normalise fills in defaults and reports every invalid field at once.
func (c *Config) normalise() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("alerts: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		field := fmt.Sprintf("webhooks[%d]", i)
		// The URL itself never goes into an error: it may hold a token.
		u, err := url.Parse(w.URL)
		switch {
		case w.URL == "":
			bad(field+".url", "is required")
		case err != nil:
			bad(field+".url", "is not a valid URL")
		case u.Scheme != "http" && u.Scheme != "https":
			bad(field+".url", "scheme %q is not http or https", u.Scheme)
		case u.Host == "":
			bad(field+".url", "has no host")
		}
		switch w.Format {
		case "":
			w.Format = FormatGeneric
		case FormatGeneric, FormatSlack:
		default:
			bad(field+".format", "%q is not %q or %q", w.Format, FormatGeneric, FormatSlack)
		}
		for k, v := range w.Headers {
			if !httpguts.ValidHeaderFieldName(k) {
				bad(field+".headers", "%q is not a valid header name", k)
			} else if !httpguts.ValidHeaderFieldValue(v) {
				bad(field+".headers", "the value of %s is not a valid header value", k)
			}
		}
	}
	if c.AttackSpike.BlocksPerMinute < 0 {
		bad("attack_spike.blocks_per_minute", "must not be negative")
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"cooldown", &c.Cooldown, DefaultCooldown},
		{"interval", &c.Interval, DefaultInterval},
		{"timeout", &c.Timeout, DefaultTimeout},
		{"retry_backoff", &c.RetryBackoff, DefaultRetryBackoff},
		{"bans.window", &c.Bans.Window, DefaultBanWindow},
	} {
		if *d.v < 0 {
			bad(d.field, "must not be negative")
		} else if *d.v == 0 {
			*d.v = d.def
		}
	}
	for _, n := range []struct {
		field string
		v     *int
		def   int
	}{
		{"max_per_hour", &c.MaxPerHour, DefaultMaxPerHour},
		{"queue_size", &c.QueueSize, DefaultQueueSize},
		{"bans.burst", &c.Bans.Burst, DefaultBanBurst},
	} {
		if *n.v < 0 {
			bad(n.field, "must not be negative")
		} else if *n.v == 0 {
			*n.v = n.def
		}
	}
	if c.Retries < 0 {
		bad("retries", "must not be negative")
	} else if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.CertExpiry.Within == 0 {
		c.CertExpiry.Within = DefaultCertWithin
	}
	if c.FeedStale.After == 0 {
		c.FeedStale.After = DefaultFeedAfter
	}
	if c.Instance == "" {
		c.Instance, _ = os.Hostname()
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return errors.Join(errs...)
}

// Start runs Check every Interval with the state that state returns at that
// moment, until Close. state must read the pipeline in service at the time
// of the call, not one captured when wiring.
func (a *Alerter) Start(state func() State) {
	a.loop.Start(a.cfg.Interval, func(context.Context) {
		// A bug in state must cost the alerts, not the process.
		defer func() {
			if v := recover(); v != nil {
				a.log.Error("alerts check panicked", "panic", fmt.Sprint(v))
			}
		}()
		a.Check(a.now(), state())
	})
}

// Stats returns the message counters.
func (a *Alerter) Stats() Stats {
	return Stats{Sent: a.sent.Load(), Failed: a.failed.Load(), Retried: a.retried.Load(), Dropped: a.dropped.Load()}
}

// Close stops Start's loop, sends the summary of bans still held back, and
// waits until the queued messages are delivered or ctx ends, whichever comes
// first; then in-flight deliveries are abandoned. It returns ctx's error if
// messages were abandoned. Input after Close is ignored.
func (a *Alerter) Close(ctx context.Context) error {
	a.loop.Stop()
	a.closeOne.Do(func() {
		a.mu.Lock()
		now := a.now()
		a.drainBans(now)
		a.flushBans(now)
		a.closed = true
		for _, h := range a.hooks {
			close(h.queue)
		}
		a.mu.Unlock()
	})
	done := make(chan struct{})
	go func() { a.senders.Wait(); close(done) }()
	select {
	case <-done:
		a.cancel()
		return nil
	case <-ctx.Done():
		a.cancel()
		<-done
		return ctx.Err()
	}
}
