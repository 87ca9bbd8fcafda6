package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Message statuses and severities.
const (
	statusFiring   = "firing"
	statusResolved = "resolved"
	statusInfo     = "info"

	severityInfo     = "info"
	severityWarning  = "warning"
	severityCritical = "critical"
)

// message is one alert before encoding.
type message struct {
	event, status, severity, incident, summary string
	details                                    map[string]any
	time                                       time.Time
}

func (m message) level() slog.Level {
	if m.status == statusResolved || m.severity == severityInfo {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// genericPayload is the body of a generic webhook; see the package doc.
type genericPayload struct {
	Source   string         `json:"source"`
	Instance string         `json:"instance,omitempty"`
	Event    string         `json:"event"`
	Status   string         `json:"status"`
	Severity string         `json:"severity"`
	Incident string         `json:"incident,omitempty"`
	Summary  string         `json:"summary"`
	Details  map[string]any `json:"details,omitempty"`
	Time     time.Time      `json:"time"`
}

// slackPayload is Slack's incoming-webhook body. Only "text": every
// Slack-compatible receiver understands it, while blocks and attachments
// vary between them.
type slackPayload struct {
	Text string `json:"text"`
}

func (m message) encode(slack bool, instance string) ([]byte, error) {
	if slack {
		return json.Marshal(slackPayload{Text: m.slackText(instance)})
	}
	return json.Marshal(genericPayload{
		Source: "portcullis", Instance: instance, Event: m.event, Status: m.status,
		Severity: m.severity, Incident: m.incident, Summary: m.summary, Details: m.details,
		Time: m.time.UTC(),
	})
}

// slackText is one line: an icon for the state, who speaks, the summary.
// The summary is escaped as Slack requires, which also keeps a ban reason
// from mentioning <!channel> or linking somewhere.
func (m message) slackText(instance string) string {
	icon := map[string]string{severityInfo: ":information_source:", severityWarning: ":warning:", severityCritical: ":rotating_light:"}[m.severity]
	prefix := ""
	if m.status == statusResolved {
		icon, prefix = ":white_check_mark:", "Resolved: "
	}
	who := "Portcullis"
	if instance != "" {
		who += " " + instance
	}
	return fmt.Sprintf("%s *%s* %s%s", icon, slackEscape(who), prefix, slackEscape(m.summary))
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackEscape(s string) string { return slackEscaper.Replace(s) }

// hook is one webhook and its queue.
type hook struct {
	url     string // secret: never logged
	name    string // "webhook 0 (hooks.slack.com)", for logs
	slack   bool
	headers http.Header // possibly secret: never logged
	queue   chan []byte
}

// send delivers h's queue in order until Close closes it.
func (a *Alerter) send(h *hook) {
	defer a.senders.Done()
	for body := range h.queue {
		if a.ctx.Err() != nil { // Close gave up waiting
			a.dropped.Add(1)
			continue
		}
		a.deliver(h, body)
	}
}

// deliver posts body, retrying transient failures with exponential backoff.
func (a *Alerter) deliver(h *hook, body []byte) {
	wait := a.cfg.RetryBackoff
	attempts := 0
	var err error
	for {
		attempts++
		var retry bool
		if retry, err = a.post(h, body); err == nil {
			a.sent.Add(1)
			return
		}
		if !retry || attempts > a.cfg.Retries {
			break
		}
		a.retried.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-a.ctx.Done():
			t.Stop()
			a.failed.Add(1)
			a.log.Error("alert not delivered", "webhook", h.name, "err", a.ctx.Err())
			return
		}
		wait = min(2*wait, maxBackoff)
	}
	a.failed.Add(1)
	a.log.Error("alert not delivered", "webhook", h.name, "attempts", attempts, "err", err)
}

// post makes one attempt and reports whether a failure is worth retrying.
// Errors never include the URL.
func (a *Alerter) post(h *hook, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(a.ctx, a.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("cannot build request")
	}
	for k, vs := range h.headers {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "portcullis-alerts")
	resp, err := a.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text repeats the URL
			err = ue.Err
		}
		return true, err
	}
	// Drain a little so the connection can be reused, not a whole page.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return true, fmt.Errorf("status %d", resp.StatusCode)
	default:
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
}

// noRedirects returns a copy of c (or a new client) that never follows
// redirects; a 3xx then counts as a failed delivery.
func noRedirects(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	} else {
		out.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}
