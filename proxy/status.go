package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// TargetHealth is one target's health as the admin console shows it: the
// verdicts, since when the active check's verdict holds, and the class of
// the last failed check. It never carries an upstream's error text: that
// goes to the log only.
type TargetHealth struct {
	URL string
	// Up is the active check's verdict (true without active checks).
	Up bool
	// Checked is whether an active check runs for the target.
	Checked bool
	// Since is when Up last changed, or when the first check ran; zero
	// before any check.
	Since time.Time
	// LastCheck is when the last check ended; zero before any.
	LastCheck time.Time
	// ErrorClass is the last failed check's kind ("timeout",
	// "connection refused", "tls", "status 503", ...), "" when the last
	// check passed.
	ErrorClass string
	// EjectedUntil is the end of a passive-check cool-down, zero when the
	// target is not ejected.
	EjectedUntil time.Time
	InFlight     int64
	Served       uint64
}

// Health returns every target's health, in the configuration's order.
func (p *Pool) Health() []TargetHealth {
	now := time.Now()
	out := make([]TargetHealth, len(p.targets))
	for i, t := range p.targets {
		h := TargetHealth{URL: t.name, Up: !t.down.Load(), Checked: p.health != nil,
			InFlight: t.inflight.Load(), Served: t.served.Load()}
		if until := t.ejectedUntil.Load(); now.UnixNano() < until {
			h.EjectedUntil = time.Unix(0, until)
		}
		h.Since, h.LastCheck, h.ErrorClass = t.check.read()
		out[i] = h
	}
	return out
}

// checkState is what the active check last saw of a target, for Health.
type checkState struct {
	mu       sync.Mutex
	down     bool
	since    time.Time
	last     time.Time
	class    string
	observed bool
}

// record notes a check's end: down is the verdict after it, class the
// failure's kind ("" when it passed).
func (c *checkState) record(now time.Time, down bool, class string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.observed || c.down != down {
		c.since = now
	}
	c.observed, c.down, c.last, c.class = true, down, now, class
}

// inherit takes over prev's state across a reload that keeps the check.
func (c *checkState) inherit(prev *checkState) {
	prev.mu.Lock()
	down, since, last, class, observed := prev.down, prev.since, prev.last, prev.class, prev.observed
	prev.mu.Unlock()
	c.mu.Lock()
	c.down, c.since, c.last, c.class, c.observed = down, since, last, class, observed
	c.mu.Unlock()
}

func (c *checkState) read() (since, last time.Time, class string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.since, c.last, c.class
}

// checkClass names the kind of a failed check without its text: err is
// the request's error, status the answer's status when there was one.
func checkClass(err error, status int) string {
	var (
		dns  *net.DNSError
		ne   net.Error
		cert *tls.CertificateVerificationError
		rec  tls.RecordHeaderError
		alrt tls.AlertError
		una  x509.UnknownAuthorityError
		host x509.HostnameError
		inv  x509.CertificateInvalidError
	)
	switch {
	case err == nil && status != 0:
		return "status " + strconv.Itoa(status)
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &dns):
		return "dns"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.As(err, &cert), errors.As(err, &rec), errors.As(err, &alrt),
		errors.As(err, &una), errors.As(err, &host), errors.As(err, &inv):
		return "tls"
	}
	return "connection error"
}
