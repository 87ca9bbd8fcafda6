package alerts

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// ObserveBlock counts one blocked request at t (the time it finished; a
// time older than the minutes still tracked is ignored). It is called for
// every blocked request, so it only does a few atomic operations. Like
// NewBan, it does nothing on a nil *Alerter (alerts not configured).
func (a *Alerter) ObserveBlock(t time.Time) {
	if a == nil || a.cfg.AttackSpike.BlocksPerMinute <= 0 {
		return
	}
	minute := uint64(t.Unix()/60) & 0xffffffff
	slot := &a.blocks[minute%uint64(len(a.blocks))]
	for {
		v := slot.Load()
		next := minute<<32 | 1
		switch m := v >> 32; {
		case m == minute:
			next = v + 1
		case m > minute: // the slot moved on to a later minute
			return
		}
		if slot.CompareAndSwap(v, next) {
			return
		}
	}
}

// blocksIn returns the blocks counted in a calendar minute still tracked.
func (a *Alerter) blocksIn(minute uint64) uint64 {
	minute &= 0xffffffff
	v := a.blocks[minute%uint64(len(a.blocks))].Load()
	if v>>32 != minute {
		return 0
	}
	return v & 0xffffffff
}

type banEvent struct {
	prefix, reason string
	until, at      time.Time
}

// NewBan reports a ban that was just added. It never blocks: when the input
// queue is full the ban is only counted, and the next summary includes it.
func (a *Alerter) NewBan(prefix, reason string, until time.Time) {
	if a == nil {
		return
	}
	select {
	case a.banEvents <- banEvent{prefix: prefix, reason: oneLine(reason, 200), until: until, at: a.now()}:
	default:
		a.bansLost.Add(1)
		a.dropped.Add(1)
	}
}

// Check compares st and the counters with the thresholds at now, opening and
// closing incidents and sending the due ban messages. Start calls it every
// Interval; tests call it with their own clock.
func (a *Alerter) Check(now time.Time, st State) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.checkSpike(now)
	a.checkCerts(now, st.Certs)
	a.checkFeeds(now, st.Feeds)
	a.checkDrops(now, st.AuditDropped)
	a.drainBans(now)
	if !a.banWin.start.IsZero() && now.Sub(a.banWin.start) >= a.cfg.Bans.Window {
		a.flushBans(now)
	}
}

// incident is an open incident. Closed incidents are not kept.
type incident struct {
	opened     time.Time
	clearSince time.Time // zero while the condition holds
	announced  bool      // the opening message passed MaxPerHour
	peak       uint64    // largest value seen while open (spike, drops)
	total      uint64    // sum while open (drops)
}

// track moves the incident key along: open when active and not open, close
// when inactive for Cooldown. opening is called only when a message is due.
func (a *Alerter) track(now time.Time, key string, active bool, opening func() message, recovery func(*incident) message) *incident {
	in, open := a.incidents[key]
	switch {
	case active && !open:
		in = &incident{opened: now}
		a.incidents[key] = in
		msg := opening()
		msg.incident = key
		in.announced = a.emit(now, msg, true)
	case active:
		in.clearSince = time.Time{}
	case open:
		if in.clearSince.IsZero() {
			in.clearSince = now
		}
		if now.Sub(in.clearSince) >= a.cfg.Cooldown {
			delete(a.incidents, key)
			if in.announced {
				msg := recovery(in)
				msg.incident, msg.status = key, statusResolved
				a.emit(now, msg, false)
			}
			return nil
		}
	}
	return in
}

func (a *Alerter) checkSpike(now time.Time) {
	limit := a.cfg.AttackSpike.BlocksPerMinute
	if limit <= 0 {
		return
	}
	minute := uint64(now.Unix() / 60)
	// The last full minute, or the current one as soon as it alone is
	// over the threshold: an attack is reported within one Interval.
	rate := max(a.blocksIn(minute-1), a.blocksIn(minute))
	in := a.track(now, "spike", rate > uint64(limit), func() message {
		return message{
			event: "attack_spike", severity: severityWarning,
			summary: fmt.Sprintf("Attack spike: %d blocked requests in a minute (threshold %d)", rate, limit),
			details: map[string]any{"blocks_per_minute": rate, "threshold": limit},
		}
	}, func(in *incident) message {
		return message{
			event: "attack_spike", severity: severityInfo,
			summary: fmt.Sprintf("Attack spike over: blocked requests back at or under %d a minute after %s (peak %d a minute)", limit, human(now.Sub(in.opened)), in.peak),
			details: map[string]any{"threshold": limit, "peak_blocks_per_minute": in.peak, "duration_seconds": int64(now.Sub(in.opened).Seconds())},
		}
	})
	if in != nil {
		in.peak = max(in.peak, rate)
	}
}

func (a *Alerter) checkCerts(now time.Time, certs map[string]CertState) {
	within := a.cfg.CertExpiry.Within
	for _, host := range sortedKeys(certs) {
		c := certs[host]
		left := c.Expiry.Sub(now)
		expiring := within > 0 && !c.Expiry.IsZero() && left <= within
		failing := c.RenewError != ""
		a.track(now, "cert:"+host, expiring || failing, func() message {
			m := message{event: "cert_expiry", severity: severityWarning, details: map[string]any{"host": host}}
			if !c.Expiry.IsZero() {
				m.details["expires"] = c.Expiry.UTC().Format(time.RFC3339)
			}
			if failing {
				m.details["error"] = oneLine(c.RenewError, 300)
			}
			switch {
			case !c.Expiry.IsZero() && left <= 0:
				m.severity = severityCritical
				m.summary = fmt.Sprintf("Certificate for %s expired %s ago", host, human(-left))
			case expiring:
				m.summary = fmt.Sprintf("Certificate for %s expires in %s", host, human(left))
			default:
				m.summary = fmt.Sprintf("Certificate for %s cannot be renewed", host)
			}
			if failing {
				if expiring {
					m.severity = severityCritical
				}
				m.summary += ": " + oneLine(c.RenewError, 300)
			}
			return m
		}, func(*incident) message {
			return message{
				event: "cert_expiry", severity: severityInfo,
				summary: fmt.Sprintf("Certificate for %s is fine again: expires in %s", host, human(left)),
				details: map[string]any{"host": host, "expires": c.Expiry.UTC().Format(time.RFC3339)},
			}
		})
	}
	closeGone(a, now, "cert:", certs, func(host string) message {
		return message{event: "cert_expiry", severity: severityInfo,
			summary: fmt.Sprintf("Certificate for %s is no longer monitored (host removed from the configuration)", host),
			details: map[string]any{"host": host}}
	})
}

func (a *Alerter) checkFeeds(now time.Time, feeds map[string]FeedState) {
	after := a.cfg.FeedStale.After
	for name := range a.feedSeen {
		if _, ok := feeds[name]; !ok {
			delete(a.feedSeen, name)
		}
	}
	for _, name := range sortedKeys(feeds) {
		f := feeds[name]
		since := f.LastSuccess
		if since.IsZero() {
			if _, ok := a.feedSeen[name]; !ok {
				a.feedSeen[name] = now
			}
			since = a.feedSeen[name]
		}
		a.track(now, "feed:"+name, after > 0 && now.Sub(since) > after, func() message {
			m := message{event: "feed_stale", severity: severityWarning, details: map[string]any{"list": name}}
			if f.LastSuccess.IsZero() {
				m.summary = fmt.Sprintf("IP list %s has not loaded once in %s", name, human(now.Sub(since)))
			} else {
				m.summary = fmt.Sprintf("IP list %s has not refreshed for %s; it serves its last good copy", name, human(now.Sub(since)))
				m.details["last_success"] = f.LastSuccess.UTC().Format(time.RFC3339)
			}
			if f.LastError != "" {
				m.details["error"] = oneLine(f.LastError, 300)
				m.summary += " (last error: " + oneLine(f.LastError, 300) + ")"
			}
			return m
		}, func(in *incident) message {
			return message{event: "feed_stale", severity: severityInfo,
				summary: fmt.Sprintf("IP list %s refreshed again after %s", name, human(now.Sub(in.opened))),
				details: map[string]any{"list": name, "last_success": f.LastSuccess.UTC().Format(time.RFC3339)}}
		})
	}
	closeGone(a, now, "feed:", feeds, func(name string) message {
		return message{event: "feed_stale", severity: severityInfo,
			summary: fmt.Sprintf("IP list %s is no longer monitored (removed from the configuration)", name),
			details: map[string]any{"list": name}}
	})
}

// closeGone closes at once, with a message of its own, the incidents of
// prefix whose subject is no longer in current: a reload removed it, so
// there is nothing left to wait for.
func closeGone[V any](a *Alerter, now time.Time, prefix string, current map[string]V, msg func(name string) message) {
	for key, in := range a.incidents {
		name, ok := strings.CutPrefix(key, prefix)
		if !ok {
			continue
		}
		if _, still := current[name]; still {
			continue
		}
		delete(a.incidents, key)
		if in.announced {
			m := msg(name)
			m.incident, m.status = key, statusResolved
			a.emit(now, m, false)
		}
	}
}

func (a *Alerter) checkDrops(now time.Time, dropped uint64) {
	delta := dropped - a.lastDrops
	if dropped < a.lastDrops { // a new writer after a reload counts from zero
		delta = dropped
	}
	a.lastDrops = dropped
	in := a.track(now, "audit-drops", delta > 0, func() message {
		return message{event: "audit_drops", severity: severityWarning,
			summary: fmt.Sprintf("Audit records are being dropped: %d since the last check (the audit queue is full; the store or disk is too slow)", delta),
			details: map[string]any{"dropped": delta}}
	}, func(in *incident) message {
		return message{event: "audit_drops", severity: severityInfo,
			summary: fmt.Sprintf("Audit records are no longer dropped; %d were lost over %s", in.total, human(now.Sub(in.opened))),
			details: map[string]any{"dropped_total": in.total, "duration_seconds": int64(now.Sub(in.opened).Seconds())}}
	})
	if in != nil {
		in.total += delta
	}
}

// banWindow holds back the bans of a flood. Bounded: it keeps counts, a
// few sample prefixes and the most common reasons, not every ban.
type banWindow struct {
	start   time.Time // zero: no window open
	sent    int
	held    int
	lost    uint64 // bans that never reached the queue
	sample  []string
	reasons map[string]int
}

const (
	maxBanSample  = 10
	maxBanReasons = 10
)

// drainBans handles the bans queued since the last call.
func (a *Alerter) drainBans(now time.Time) {
	for {
		select {
		case ev := <-a.banEvents:
			a.ban(now, ev)
		default:
			if lost := a.bansLost.Swap(0); lost > 0 {
				a.openBanWindow(now)
				a.banWin.lost += lost
			}
			return
		}
	}
}

func (a *Alerter) openBanWindow(at time.Time) {
	if a.banWin.start.IsZero() {
		a.banWin = banWindow{start: at, reasons: map[string]int{}}
	}
}

func (a *Alerter) ban(now time.Time, ev banEvent) {
	if !a.banWin.start.IsZero() && ev.at.Sub(a.banWin.start) >= a.cfg.Bans.Window {
		a.flushBans(now)
	}
	a.openBanWindow(ev.at)
	w := &a.banWin
	if w.sent < a.cfg.Bans.Burst && w.held == 0 {
		w.sent++
		a.emit(now, message{
			event: "ban", status: statusInfo, severity: severityInfo,
			summary: fmt.Sprintf("New ban: %s until %s (%s)", ev.prefix, ev.until.UTC().Format(time.RFC3339), ev.reason),
			details: map[string]any{"prefix": ev.prefix, "reason": ev.reason, "until": ev.until.UTC().Format(time.RFC3339)},
		}, true)
		return
	}
	w.held++
	if len(w.sample) < maxBanSample {
		w.sample = append(w.sample, ev.prefix)
	}
	if _, ok := w.reasons[ev.reason]; ok || len(w.reasons) < maxBanReasons {
		w.reasons[ev.reason]++
	}
}

// flushBans sends the summary of the bans held back, if any, and closes the
// window.
func (a *Alerter) flushBans(now time.Time) {
	w := a.banWin
	a.banWin = banWindow{}
	n := uint64(w.held) + w.lost
	if n == 0 {
		return
	}
	window := now.Sub(w.start)
	details := map[string]any{"count": n, "window_seconds": int64(window.Seconds()), "sample_prefixes": w.sample, "reasons": w.reasons}
	summary := fmt.Sprintf("%d more bans in %s", n, human(window))
	if w.sent == 0 {
		summary = fmt.Sprintf("%d bans in %s", n, human(window))
	}
	if len(w.sample) > 0 {
		summary += ", among them " + strings.Join(w.sample, ", ")
	}
	if top := topReason(w.reasons); top != "" {
		summary += "; most common reason: " + top
	}
	a.emit(now, message{event: "ban_summary", status: statusInfo, severity: severityWarning, summary: summary, details: details}, true)
}

func topReason(reasons map[string]int) string {
	best, n := "", 0
	for _, r := range sortedKeys(reasons) {
		if reasons[r] > n {
			best, n = r, reasons[r]
		}
	}
	return best
}

// emit logs msg and queues it for every webhook. A capped message counts
// against MaxPerHour and is dropped beyond it; it reports whether msg went
// out. Recoveries are not capped: their opening message was, and a
// recovery must follow every opening that went out.
func (a *Alerter) emit(now time.Time, msg message, capped bool) bool {
	if msg.status == "" {
		msg.status = statusFiring
	}
	msg.time = now
	if capped {
		hourAgo := now.Add(-time.Hour)
		i := 0
		for i < len(a.capped) && !a.capped[i].After(hourAgo) {
			i++
		}
		a.capped = a.capped[i:]
		if len(a.capped) >= a.cfg.MaxPerHour {
			a.dropped.Add(1)
			a.log.Warn("alert dropped: max_per_hour reached", "event", msg.event, "incident", msg.incident, "summary", msg.summary)
			return false
		}
		a.capped = append(a.capped, now)
	}
	a.log.Log(a.ctx, msg.level(), "alert", "event", msg.event, "status", msg.status, "incident", msg.incident, "summary", msg.summary)
	for _, h := range a.hooks {
		body, err := msg.encode(h.slack, a.cfg.Instance)
		if err != nil { // details are plain values; this is a bug
			a.log.Error("alert not encoded", "event", msg.event, "err", err)
			continue
		}
		select {
		case h.queue <- body:
		default:
			a.dropped.Add(1)
			a.log.Warn("alert dropped: webhook queue full", "webhook", h.name, "event", msg.event)
		}
	}
	return true
}

// human renders a duration for people: "3 days", "5h", "12m", "40s".
func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	default:
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
}

// oneLine keeps text on one line and at most n runes: error texts come
// from other systems and end up in chat messages.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
