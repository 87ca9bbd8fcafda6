package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/config"
)

// Two independent verdicts decide whether a target takes requests:
//
//   - the active check (health_check) probes every target on a timer and
//     takes it out after Fall failed probes in a row, back after Rise passed
//     ones. It finds a dead target even when no traffic goes to it, and it
//     is the only way back for a target that is really down;
//   - the passive check (passive_check) watches real traffic: connection
//     errors and timeouts in a row, or the share of 5xx answers, eject a
//     target for a cool-down, after which it gets traffic again and is
//     judged afresh. It reacts within a few requests, between probes.

// observe records a response from t for the passive check.
func (p *Pool) observe(t *target, status int) {
	pc := &p.passive
	if !pc.Enabled {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.consecutive = 0
	if pc.FailureRatio <= 0 {
		return
	}
	now := time.Now().UnixNano()
	p.countLocked(t, now, status >= 500)
}

// failed records a connection error or timeout of t for the passive check.
func (p *Pool) failed(t *target) {
	pc := &p.passive
	if !pc.Enabled {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now().UnixNano()
	t.consecutive++
	if pc.ConsecutiveFailures > 0 && t.consecutive >= pc.ConsecutiveFailures {
		p.ejectLocked(t, now, "consecutive connection failures")
		return
	}
	if pc.FailureRatio > 0 {
		p.countLocked(t, now, true)
	}
}

// countLocked adds one outcome to t's window and ejects t when the share of
// failures reaches the ratio.
func (p *Pool) countLocked(t *target, now int64, failure bool) {
	pc := &p.passive
	if now-t.windowStart > int64(pc.Window) {
		t.windowStart, t.requests, t.failures = now, 0, 0
	}
	t.requests++
	if failure {
		t.failures++
	}
	if t.requests >= pc.MinRequests && float64(t.failures) >= pc.FailureRatio*float64(t.requests) {
		p.ejectLocked(t, now, "failure ratio reached")
	}
}

func (p *Pool) ejectLocked(t *target, now int64, why string) {
	t.consecutive, t.windowStart, t.requests, t.failures = 0, now, 0, 0
	if now < t.ejectedUntil.Load() {
		return // already out
	}
	t.ejectedUntil.Store(now + int64(p.passive.CoolDown))
	p.log.Warn("upstream target ejected by passive check", "target", t.name, "reason", why, "cool_down", p.passive.CoolDown)
}

// inherit takes over the verdicts of prev's targets for the targets of p
// with the same URL, before p's checks start:
//
//   - a target the active check had taken out stays out until p's own check
//     passes it Rise times, when p's check asks the same question (path,
//     host, accepted statuses, timeout) over the same kind of connection
//     (upstream TLS, h2c, dial timeout). A changed check or connection, or
//     no check, starts every target in: the old verdict answered another
//     question (a reload that fixes a CA file must not keep the targets it
//     failed out), and without a check nothing could bring a target back;
//   - a target the passive check ejected stays out for the rest of its
//     cool-down, at most p's own cool-down, when p has a passive check.
//
// The streaks start afresh: they belong to prev's checker goroutine, which
// may still be running.
func (p *Pool) inherit(prev *Pool) {
	byURL := make(map[string]*target, len(prev.targets))
	for _, t := range prev.targets {
		byURL[t.name] = t
	}
	sameCheck := p.health != nil && prev.health != nil && sameQuestion(*p.health, *prev.health) && sameConnection(p.cfg, prev.cfg)
	now := time.Now().UnixNano()
	for _, t := range p.targets {
		old := byURL[t.name]
		if old == nil {
			continue
		}
		if sameCheck {
			t.check.inherit(&old.check)
		}
		if sameCheck && old.down.Load() {
			t.down.Store(true)
			p.log.Info("upstream target starts down: the active check had taken it out before the reload", "target", t.name, "rise", p.health.Rise)
		}
		if until := min(old.ejectedUntil.Load(), now+int64(p.passive.CoolDown)); p.passive.Enabled && now < until {
			t.ejectedUntil.Store(until)
			p.log.Info("upstream target starts ejected: the passive check had ejected it before the reload", "target", t.name, "for", time.Duration(until-now).Round(time.Millisecond))
		}
	}
}

// sameQuestion reports whether two active checks judge a target alike;
// interval, rise and fall only change how fast.
func sameQuestion(a, b config.HealthCheckConfig) bool {
	return a.Path == b.Path && a.Host == b.Host && a.StatusLo == b.StatusLo && a.StatusHi == b.StatusHi && a.Timeout == b.Timeout
}

// sameConnection reports whether two upstreams reach their targets alike,
// so that a probe through either would fail or pass alike. The loaded
// values are compared, not file names: a reload often follows a rotation
// of the files' contents.
func sameConnection(a, b *config.UpstreamConfig) bool {
	if a.H2C != b.H2C || a.DialTimeout != b.DialTimeout || a.TLSInsecureSkipVerify != b.TLSInsecureSkipVerify || a.TLS.ServerName != b.TLS.ServerName {
		return false
	}
	if (a.TLS.RootCAs == nil) != (b.TLS.RootCAs == nil) || (a.TLS.RootCAs != nil && !a.TLS.RootCAs.Equal(b.TLS.RootCAs)) {
		return false
	}
	ca, cb := a.TLS.ClientCert, b.TLS.ClientCert
	if (ca == nil) != (cb == nil) {
		return false
	}
	return ca == nil || slices.EqualFunc(ca.Certificate, cb.Certificate, bytes.Equal)
}

// checkLoop probes t every interval until the pool closes. The first probe
// runs at once, so a target that is down at start is found within one
// timeout rather than one interval.
func (p *Pool) checkLoop(t *target) {
	defer p.wg.Done()
	hc := p.health
	probe := *t.url
	path, query, _ := strings.Cut(hc.Path, "?")
	probe.Path, probe.RawPath, probe.RawQuery = joinSlash(t.url.Path, path), "", query
	target := probe.String()
	ticker := time.NewTicker(hc.Interval)
	defer ticker.Stop()
	for {
		p.probe(t, target)
		select {
		case <-p.life.Done():
			return
		case <-ticker.C:
		}
	}
}

// probe runs one active check of t and applies Rise and Fall.
func (p *Pool) probe(t *target, target string) {
	hc := p.health
	// Derived from the pool's life: Close must not wait for a probe's timeout.
	ctx, cancel := context.WithTimeout(p.life, hc.Timeout)
	defer cancel()
	ok, status := false, 0
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err == nil {
		if hc.Host != "" {
			req.Host = hc.Host
		}
		req.Header.Set("User-Agent", "Portcullis-Health-Check")
		var resp *http.Response
		resp, err = p.checker.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
			resp.Body.Close()
			status = resp.StatusCode
			ok = status >= hc.StatusLo && status <= hc.StatusHi
		}
	}
	if p.life.Err() != nil {
		return // a probe cut by Close says nothing about the target
	}
	var local *LocalError
	if errors.As(err, &local) {
		// Out of descriptors or ports here: the target was never asked.
		p.log.Warn("upstream health check skipped: local resources exhausted", "target", t.name, "err", err)
		return
	}
	class := ""
	if !ok {
		class = checkClass(err, status)
	}
	defer func() { t.check.record(time.Now(), t.down.Load(), class) }()
	if ok {
		t.checkFail = 0
		t.checkPass++
		if t.down.Load() && t.checkPass >= hc.Rise {
			t.down.Store(false)
			// A target back from the dead starts with a clean record.
			t.mu.Lock()
			t.consecutive, t.requests, t.failures = 0, 0, 0
			t.mu.Unlock()
			t.ejectedUntil.Store(0)
			p.log.Info("upstream target up (active check passed)", "target", t.name, "rise", hc.Rise)
		}
		return
	}
	t.checkPass = 0
	t.checkFail++
	if !t.down.Load() && t.checkFail >= hc.Fall {
		t.down.Store(true)
		reason := "status outside " + statusRange(hc.StatusLo, hc.StatusHi)
		if err != nil {
			reason = err.Error()
		}
		p.log.Warn("upstream target down (active check failed)", "target", t.name, "fall", hc.Fall, "reason", reason)
	}
}

func statusRange(lo, hi int) string {
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return strconv.Itoa(lo) + "-" + strconv.Itoa(hi)
}
