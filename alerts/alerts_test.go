package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is a webhook endpoint on loopback that records what it gets.
type receiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	bodies  []map[string]any
	headers []http.Header
	hits    int
	// respond returns the status for the n-th request (from 1); nil: 200.
	respond func(n int) int
}

func newReceiver(t *testing.T, respond func(n int) int) *receiver {
	t.Helper()
	r := &receiver{respond: respond}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			t.Errorf("webhook body is not JSON: %v", err)
		}
		r.mu.Lock()
		r.hits++
		n := r.hits
		status := http.StatusOK
		if r.respond != nil {
			status = r.respond(n)
		}
		if status < 300 {
			r.bodies = append(r.bodies, body)
			r.headers = append(r.headers, req.Header.Clone())
		}
		r.mu.Unlock()
		if status >= 300 && status < 400 {
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}

// clock is the injected time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newAlerter builds an Alerter with a fast retry and a quiet log; cfg's
// zero fields get those test defaults, then New's defaults.
func newAlerter(t *testing.T, cfg Config, c *clock) (*Alerter, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Millisecond
	}
	if cfg.Instance == "" {
		cfg.Instance = "edge-1"
	}
	cfg.Log = slog.New(slog.NewTextHandler(&syncWriter{w: &log}, nil))
	cfg.Now = c.Now
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	return a, &log
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// deliver closes a and waits for every queued message.
func deliver(t *testing.T, a *Alerter) {
	t.Helper()
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// summaries lists "status event: summary" for each message, in order.
func summaries(msgs []map[string]any) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = fmt.Sprintf("%v %v", m["status"], m["event"])
	}
	return out
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// step is one moment of a scenario: input, then Check at t0+at.
type step struct {
	at     time.Duration
	blocks int
	state  State
}

func TestIncidents(t *testing.T) {
	cert := func(expiry time.Duration, renewErr string) State {
		return State{Certs: map[string]CertState{"shop.test": {Expiry: t0.Add(expiry), RenewError: renewErr}}}
	}
	feed := func(last time.Time, err string) State {
		return State{Feeds: map[string]FeedState{"spamhaus": {LastSuccess: last, LastError: err}}}
	}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
		want  []string // "status event"
		check func(t *testing.T, msgs []map[string]any)
	}{{
		name: "spike opens once, stays quiet, recovers once",
		cfg:  Config{AttackSpike: AttackSpike{BlocksPerMinute: 10}, Cooldown: 5 * time.Minute},
		steps: []step{
			{at: 5 * time.Second, blocks: 5},                    // under the threshold
			{at: 10 * time.Second, blocks: 6},                   // 11 this minute: opens at once
			{at: 70 * time.Second, blocks: 40},                  // still open: quiet
			{at: 130 * time.Second, blocks: 30},                 // previous minute 40: open
			{at: 190 * time.Second},                             // previous minute 30: open
			{at: 250 * time.Second},                             // clear from here
			{at: 400 * time.Second, blocks: 12},                 // spike again within the cooldown: quiet
			{at: 460 * time.Second},                             // clear again
			{at: 460*time.Second + 5*time.Minute - time.Second}, // not yet
			{at: 460*time.Second + 5*time.Minute},               // recovered
			{at: 460*time.Second + 10*time.Minute},              // nothing more
		},
		want: []string{"firing attack_spike", "resolved attack_spike"},
		check: func(t *testing.T, msgs []map[string]any) {
			if got := msgs[0]["summary"]; got != "Attack spike: 11 blocked requests in a minute (threshold 10)" {
				t.Errorf("opening summary %q", got)
			}
			if d := msgs[1]["details"].(map[string]any); d["peak_blocks_per_minute"] != float64(40) {
				t.Errorf("recovery details %v, want peak 40", d)
			}
		},
	}, {
		name:  "spike disabled",
		cfg:   Config{},
		steps: []step{{at: time.Second, blocks: 100000}, {at: time.Minute}},
	}, {
		name: "certificate expiring, then renewed",
		cfg:  Config{CertExpiry: CertExpiry{Within: 14 * 24 * time.Hour}, Cooldown: time.Minute},
		steps: []step{
			{at: 0, state: cert(30*24*time.Hour, "")},
			{at: time.Hour, state: cert(10*24*time.Hour, "")},
			{at: 2 * time.Hour, state: cert(10*24*time.Hour, "")},
			{at: 3 * time.Hour, state: cert(90*24*time.Hour, "")},
			{at: 3*time.Hour + time.Minute, state: cert(90*24*time.Hour, "")},
		},
		want: []string{"firing cert_expiry", "resolved cert_expiry"},
		check: func(t *testing.T, msgs []map[string]any) {
			if got := msgs[0]["summary"]; got != "Certificate for shop.test expires in 9 days" {
				t.Errorf("summary %q", got)
			}
			if msgs[0]["severity"] != "warning" || msgs[0]["incident"] != "cert:shop.test" {
				t.Errorf("severity %v incident %v", msgs[0]["severity"], msgs[0]["incident"])
			}
		},
	}, {
		name:  "certificate expired and renewal failing",
		cfg:   Config{},
		steps: []step{{at: time.Hour, state: cert(-time.Minute, "acme: rate limited\nretry later")}},
		want:  []string{"firing cert_expiry"},
		check: func(t *testing.T, msgs []map[string]any) {
			want := "Certificate for shop.test expired 1h ago: acme: rate limited retry later"
			if msgs[0]["summary"] != want || msgs[0]["severity"] != "critical" {
				t.Errorf("got %q (%v), want %q (critical)", msgs[0]["summary"], msgs[0]["severity"], want)
			}
		},
	}, {
		name:  "renewal failing with time left",
		cfg:   Config{},
		steps: []step{{at: 0, state: cert(60*24*time.Hour, "order failed")}},
		want:  []string{"firing cert_expiry"},
		check: func(t *testing.T, msgs []map[string]any) {
			if msgs[0]["summary"] != "Certificate for shop.test cannot be renewed: order failed" {
				t.Errorf("summary %q", msgs[0]["summary"])
			}
		},
	}, {
		name: "host removed by a reload closes its incident",
		cfg:  Config{},
		steps: []step{
			{at: 0, state: cert(24*time.Hour, "")},
			{at: time.Minute, state: State{}},
			{at: time.Hour, state: State{}},
		},
		want: []string{"firing cert_expiry", "resolved cert_expiry"},
	}, {
		name: "feed stale, then refreshed",
		cfg:  Config{FeedStale: FeedStale{After: 6 * time.Hour}, Cooldown: time.Minute},
		steps: []step{
			{at: 0, state: feed(t0.Add(-time.Hour), "")},
			{at: 5 * time.Hour, state: feed(t0.Add(-time.Hour), "status 503")},
			{at: 6 * time.Hour, state: feed(t0.Add(-time.Hour), "status 503")},
			{at: 9 * time.Hour, state: feed(t0.Add(-time.Hour), "status 503")},
			{at: 10 * time.Hour, state: feed(t0.Add(10*time.Hour), "status 503")},
			{at: 11 * time.Hour, state: feed(t0.Add(11*time.Hour), "")},
		},
		want: []string{"firing feed_stale", "resolved feed_stale"},
		check: func(t *testing.T, msgs []map[string]any) {
			want := "IP list spamhaus has not refreshed for 7h; it serves its last good copy (last error: status 503)"
			if msgs[0]["summary"] != want {
				t.Errorf("summary %q, want %q", msgs[0]["summary"], want)
			}
		},
	}, {
		name: "feed that never loaded counts from when it was first seen",
		cfg:  Config{FeedStale: FeedStale{After: time.Hour}},
		steps: []step{
			{at: 0, state: feed(time.Time{}, "dial tcp: refused")},
			{at: time.Hour, state: feed(time.Time{}, "dial tcp: refused")},
			{at: time.Hour + time.Second, state: feed(time.Time{}, "dial tcp: refused")},
		},
		want: []string{"firing feed_stale"},
		check: func(t *testing.T, msgs []map[string]any) {
			if !strings.HasPrefix(msgs[0]["summary"].(string), "IP list spamhaus has not loaded once in 1h") {
				t.Errorf("summary %q", msgs[0]["summary"])
			}
		},
	}, {
		name: "audit drops",
		cfg:  Config{Cooldown: 2 * time.Minute},
		steps: []step{
			{at: 0, state: State{AuditDropped: 0}},
			{at: 15 * time.Second, state: State{AuditDropped: 40}},
			{at: 30 * time.Second, state: State{AuditDropped: 100}},
			{at: 45 * time.Second, state: State{AuditDropped: 100}},
			{at: 45*time.Second + 2*time.Minute, state: State{AuditDropped: 100}},
			{at: 10 * time.Minute, state: State{AuditDropped: 100}},
			{at: 11 * time.Minute, state: State{AuditDropped: 3}}, // a new writer after a reload
		},
		want: []string{"firing audit_drops", "resolved audit_drops", "firing audit_drops"},
		check: func(t *testing.T, msgs []map[string]any) {
			if d := msgs[1]["details"].(map[string]any); d["dropped_total"] != float64(100) {
				t.Errorf("recovery details %v, want 100 dropped", d)
			}
			if d := msgs[2]["details"].(map[string]any); d["dropped"] != float64(3) {
				t.Errorf("after reset %v, want 3 dropped", d)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, nil)
			c := &clock{t: t0}
			tc.cfg.Webhooks = []Webhook{{URL: rcv.srv.URL + "/hook"}}
			a, _ := newAlerter(t, tc.cfg, c)
			for _, s := range tc.steps {
				now := t0.Add(s.at)
				c.set(now)
				for range s.blocks {
					a.ObserveBlock(now)
				}
				a.Check(now, s.state)
			}
			deliver(t, a)
			msgs := rcv.got()
			if got := summaries(msgs); !equal(got, tc.want) {
				t.Fatalf("messages\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, m := range msgs {
				if m["source"] != "portcullis" || m["instance"] != "edge-1" || m["summary"] == "" || m["time"] == "" {
					t.Errorf("generic fields missing in %v", m)
				}
			}
			if tc.check != nil {
				tc.check(t, msgs)
			}
		})
	}
}

func TestBans(t *testing.T) {
	tests := []struct {
		name        string
		bans        int
		want        []string
		wantSummary string
	}{
		{"a few bans, one message each", 3, []string{"info ban", "info ban", "info ban"}, ""},
		{"a flood sends a summary", 1000, []string{"info ban", "info ban", "info ban", "info ban", "info ban", "info ban_summary"}, "995 more bans in 10m"},
		{"more than the input queue holds: still counted", 3000, []string{"info ban", "info ban", "info ban", "info ban", "info ban", "info ban_summary"}, "2995 more bans in 10m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, nil)
			c := &clock{t: t0}
			a, _ := newAlerter(t, Config{Webhooks: []Webhook{{URL: rcv.srv.URL}}, Bans: Bans{Burst: 5, Window: 10 * time.Minute}}, c)
			for i := range tc.bans {
				a.NewBan(fmt.Sprintf("198.51.%d.%d/32", i/256, i%256), []string{"waf strikes", "404 burst"}[i%2], t0.Add(time.Hour))
			}
			a.Check(t0.Add(15*time.Second), State{})
			a.Check(t0.Add(9*time.Minute), State{}) // window still open: summary held
			a.Check(t0.Add(10*time.Minute), State{})
			a.Check(t0.Add(20*time.Minute), State{})
			deliver(t, a)
			msgs := rcv.got()
			if got := summaries(msgs); !equal(got, tc.want) {
				t.Fatalf("messages\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			first := msgs[0]
			if want := "New ban: 198.51.0.0/32 until 2026-03-01T13:00:00Z (waf strikes)"; first["summary"] != want {
				t.Errorf("ban summary %q, want %q", first["summary"], want)
			}
			if tc.wantSummary != "" {
				last := msgs[len(msgs)-1]
				if s := last["summary"].(string); !strings.HasPrefix(s, tc.wantSummary+", among them 198.51.0.5/32") || !strings.HasSuffix(s, "most common reason: 404 burst") {
					t.Errorf("summary %q, want %q...", s, tc.wantSummary)
				}
				if n := len(last["details"].(map[string]any)["sample_prefixes"].([]any)); n != maxBanSample {
					t.Errorf("%d sample prefixes, want %d", n, maxBanSample)
				}
			}
		})
	}
}

// TestBansHeldAtClose: bans held back when the process stops are summed up
// rather than lost.
func TestBansHeldAtClose(t *testing.T) {
	rcv := newReceiver(t, nil)
	c := &clock{t: t0}
	a, _ := newAlerter(t, Config{Webhooks: []Webhook{{URL: rcv.srv.URL}}, Bans: Bans{Burst: 1}}, c)
	for i := range 4 {
		a.NewBan(fmt.Sprintf("203.0.113.%d/32", i), "manual", t0.Add(time.Hour))
	}
	c.set(t0.Add(time.Minute))
	deliver(t, a)
	if got, want := summaries(rcv.got()), []string{"info ban", "info ban_summary"}; !equal(got, want) {
		t.Errorf("messages %v, want %v", got, want)
	}
}

func TestDelivery(t *testing.T) {
	tests := []struct {
		name        string
		respond     func(n int) int
		wantHits    int
		wantStats   Stats
		wantLogged  string
		wantNotSent bool
	}{
		{"accepted", nil, 1, Stats{Sent: 1}, "", false},
		{"retried then accepted", func(n int) int {
			if n == 1 {
				return http.StatusServiceUnavailable
			}
			return http.StatusNoContent
		}, 2, Stats{Sent: 1, Retried: 1}, "", false},
		{"retried, then counted as failed", func(int) int { return http.StatusBadGateway }, 3, Stats{Failed: 1, Retried: 2}, "status 502", true},
		{"429 is retried", func(n int) int {
			if n < 3 {
				return http.StatusTooManyRequests
			}
			return http.StatusOK
		}, 3, Stats{Sent: 1, Retried: 2}, "", false},
		{"400 is not retried", func(int) int { return http.StatusBadRequest }, 1, Stats{Failed: 1}, "status 400", true},
		{"redirects are not followed", func(int) int { return http.StatusFound }, 1, Stats{Failed: 1}, "status 302", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, tc.respond)
			c := &clock{t: t0}
			secretURL := rcv.srv.URL + "/services/T000/B000/s3cr3tt0ken"
			a, log := newAlerter(t, Config{
				Webhooks: []Webhook{{URL: secretURL, Headers: map[string]string{"Authorization": "Bearer hunter2"}}},
				Retries:  2,
			}, c)
			a.NewBan("192.0.2.7/32", "waf strikes", t0.Add(time.Hour))
			a.Check(t0, State{})
			deliver(t, a)
			rcv.mu.Lock()
			hits := rcv.hits
			rcv.mu.Unlock()
			if hits != tc.wantHits {
				t.Errorf("%d attempts, want %d", hits, tc.wantHits)
			}
			if got := a.Stats(); got != tc.wantStats {
				t.Errorf("stats %+v, want %+v", got, tc.wantStats)
			}
			logged := log.String()
			if tc.wantLogged != "" && !strings.Contains(logged, tc.wantLogged) {
				t.Errorf("log lacks %q:\n%s", tc.wantLogged, logged)
			}
			for _, secret := range []string{"s3cr3tt0ken", "hunter2"} {
				if strings.Contains(logged, secret) {
					t.Errorf("log contains the secret %q:\n%s", secret, logged)
				}
			}
			if !tc.wantNotSent {
				if h := rcv.headers[len(rcv.headers)-1]; h.Get("Authorization") != "Bearer hunter2" || h.Get("Content-Type") != "application/json" {
					t.Errorf("headers %v", h)
				}
			}
		})
	}
}

func TestUnreachableWebhookIsRetriedAndCounted(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close() // nothing listens there any more
	c := &clock{t: t0}
	a, log := newAlerter(t, Config{Webhooks: []Webhook{{URL: url}}, Retries: 2}, c)
	a.NewBan("192.0.2.7/32", "waf strikes", t0.Add(time.Hour))
	a.Check(t0, State{})
	deliver(t, a)
	if got := a.Stats(); got != (Stats{Failed: 1, Retried: 2}) {
		t.Errorf("stats %+v", got)
	}
	if strings.Contains(log.String(), url) {
		t.Errorf("log names the URL:\n%s", log)
	}
}

func TestSlackFormat(t *testing.T) {
	rcv := newReceiver(t, nil)
	c := &clock{t: t0}
	a, _ := newAlerter(t, Config{
		Webhooks:    []Webhook{{URL: rcv.srv.URL, Format: FormatSlack}},
		AttackSpike: AttackSpike{BlocksPerMinute: 1}, Cooldown: time.Minute,
	}, c)
	a.NewBan("192.0.2.0/24", "<!channel> & <https://evil.test|click>", t0.Add(time.Hour))
	for range 2 {
		a.ObserveBlock(t0)
	}
	a.Check(t0, State{})
	a.Check(t0.Add(2*time.Minute), State{})
	a.Check(t0.Add(3*time.Minute), State{})
	deliver(t, a)
	want := []string{
		":warning: *Portcullis edge-1* Attack spike: 2 blocked requests in a minute (threshold 1)",
		":information_source: *Portcullis edge-1* New ban: 192.0.2.0/24 until 2026-03-01T13:00:00Z (&lt;!channel&gt; &amp; &lt;https://evil.test|click&gt;)",
		":white_check_mark: *Portcullis edge-1* Resolved: Attack spike over: blocked requests back at or under 1 a minute after 3m (peak 2 a minute)",
	}
	msgs := rcv.got()
	if len(msgs) != len(want) {
		t.Fatalf("%d messages: %v", len(msgs), msgs)
	}
	for i, m := range msgs {
		if len(m) != 1 || m["text"] != want[i] {
			t.Errorf("message %d = %v, want only text %q", i, m, want[i])
		}
	}
}

func TestMaxPerHour(t *testing.T) {
	rcv := newReceiver(t, nil)
	c := &clock{t: t0}
	a, _ := newAlerter(t, Config{Webhooks: []Webhook{{URL: rcv.srv.URL}}, MaxPerHour: 2, Cooldown: time.Minute}, c)
	certs := State{Certs: map[string]CertState{}}
	for _, h := range []string{"a.test", "b.test", "c.test"} {
		certs.Certs[h] = CertState{Expiry: t0.Add(time.Hour)}
	}
	a.Check(t0, certs)
	// Renewed: the two announced incidents recover; the third, whose
	// opening was dropped, closes quietly.
	for h := range certs.Certs {
		certs.Certs[h] = CertState{Expiry: t0.Add(90 * 24 * time.Hour)}
	}
	a.Check(t0.Add(time.Minute), certs)
	a.Check(t0.Add(2*time.Minute), certs)
	deliver(t, a)
	if got, want := summaries(rcv.got()), []string{"firing cert_expiry", "firing cert_expiry", "resolved cert_expiry", "resolved cert_expiry"}; !equal(got, want) {
		t.Errorf("messages %v, want %v", got, want)
	}
	if d := a.Stats().Dropped; d != 1 {
		t.Errorf("dropped %d, want 1", d)
	}
}

// TestNeverBlocks: a webhook that hangs neither blocks the input methods
// nor Check; its queue overflows into the dropped count, and Close gives up
// when its context ends.
func TestNeverBlocks(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	c := &clock{t: t0}
	a, _ := newAlerter(t, Config{Webhooks: []Webhook{{URL: srv.URL}}, QueueSize: 2, MaxPerHour: 1000}, c)
	certs := map[string]CertState{}
	for i := range 20 {
		certs[fmt.Sprintf("h%d.test", i)] = CertState{Expiry: t0.Add(time.Hour)}
	}
	a.Check(t0, State{Certs: certs}) // 20 messages for a queue of 2 and one in flight
	// 17 or 18: the sender may or may not have taken the first message yet.
	queued := a.Stats().Dropped
	if queued != 17 && queued != 18 {
		t.Errorf("dropped %d of 20 messages, want 17 or 18", queued)
	}
	for range 10_000 {
		a.ObserveBlock(t0)
		a.NewBan("192.0.2.1/32", "x", t0.Add(time.Hour))
	}
	if d := a.Stats().Dropped - queued; d != 10_000-banQueueSize {
		t.Errorf("%d bans dropped from the input queue, want %d", d, 10_000-banQueueSize)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Close(ctx); err == nil {
		t.Error("Close with an ended context reported no abandoned messages")
	}
}

func TestNewValidation(t *testing.T) {
	_, err := New(Config{
		Webhooks: []Webhook{
			{URL: "ftp://hooks.example/T0/s3cr3t"},
			{URL: "https://hooks.example/x", Format: "teams", Headers: map[string]string{"Bad Name": "v", "X-Ok": "line\nbreak"}},
			{},
		},
		AttackSpike: AttackSpike{BlocksPerMinute: -1},
		Retries:     -1,
		Cooldown:    -time.Second,
	})
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	want := []string{
		`alerts: webhooks[0].url: scheme "ftp" is not http or https`,
		`alerts: webhooks[1].format: "teams" is not "generic" or "slack"`,
		`alerts: webhooks[1].headers: "Bad Name" is not a valid header name`,
		`alerts: webhooks[1].headers: the value of X-Ok is not a valid header value`,
		`alerts: webhooks[2].url: is required`,
		`alerts: attack_spike.blocks_per_minute: must not be negative`,
		`alerts: cooldown: must not be negative`,
		`alerts: retries: must not be negative`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error shows the URL: %v", err)
	}

	a, err := New(Config{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("empty config: %v", err)
	}
	_ = a.Close(context.Background())
}

// TestObserveBlockMinutes: counts land in their minute; a late observation
// for a minute no longer tracked does not disturb the current one.
func TestObserveBlockMinutes(t *testing.T) {
	c := &clock{t: t0}
	a, _ := newAlerter(t, Config{AttackSpike: AttackSpike{BlocksPerMinute: 1}}, c)
	for i := range 5 {
		for range i + 1 {
			a.ObserveBlock(t0.Add(time.Duration(i) * time.Minute))
		}
	}
	a.ObserveBlock(t0) // minute 0's slot now holds minute 4
	min0 := uint64(t0.Unix() / 60)
	for i, want := range []uint64{0, 2, 3, 4, 5} {
		if got := a.blocksIn(min0 + uint64(i)); got != want {
			t.Errorf("minute %d: %d blocks, want %d", i, got, want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	rcv := newReceiver(t, nil)
	c := &clock{t: t0}
	a, _ := newAlerter(t, Config{Webhooks: []Webhook{{URL: rcv.srv.URL}}, AttackSpike: AttackSpike{BlocksPerMinute: 100}}, c)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				a.ObserveBlock(t0)
				if i%100 == 0 {
					a.NewBan(fmt.Sprintf("192.0.2.%d/32", g), "x", t0.Add(time.Hour))
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			a.Check(t0.Add(time.Duration(i)*time.Second), State{AuditDropped: uint64(i)})
		}
	})
	wg.Wait()
	deliver(t, a)
	if got := a.blocksIn(uint64(t0.Unix() / 60)); got != 4000 {
		t.Errorf("%d blocks counted, want 4000", got)
	}
}

func TestNilAlerterIsANoOp(t *testing.T) {
	var a *Alerter
	a.ObserveBlock(t0)
	a.NewBan("192.0.2.1/32", "x", t0)
}
