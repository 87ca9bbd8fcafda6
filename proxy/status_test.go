package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

func TestCheckClass(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"passed", nil, 0, ""},
		{"bad status", nil, 503, "status 503"},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), 0, "timeout"},
		{"refused", &net.OpError{Op: "dial", Err: &osSyscallError{syscall.ECONNREFUSED}}, 0, "connection refused"},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), 0, "connection reset"},
		{"dns", &net.DNSError{Err: "no such host", Name: "backend.internal"}, 0, "dns"},
		{"tls", &tls.CertificateVerificationError{Err: errors.New("x509: certificate signed by unknown authority")}, 0, "tls"},
		{"other", errors.New("backend.internal said something secret"), 0, "connection error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkClass(tc.err, tc.status); got != tc.want {
				t.Fatalf("checkClass(%v, %d) = %q, want %q", tc.err, tc.status, got, tc.want)
			}
		})
	}
}

// osSyscallError wraps an errno as os.SyscallError does, without naming os.
type osSyscallError struct{ errno syscall.Errno }

func (e *osSyscallError) Error() string { return "connect: " + e.errno.Error() }
func (e *osSyscallError) Unwrap() error { return e.errno }

// TestHealth runs a pool against a real backend that goes down and comes
// back, and a port nobody listens on: Health reports the verdicts, since
// when, and the class of the failure, never the error's text.
func TestHealth(t *testing.T) {
	var sick atomic.Bool
	sick.Store(true)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer backend.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close() // nobody listens there now: connection refused
	bu, _ := url.Parse(backend.URL)
	cu, _ := url.Parse("http://" + closedAddr)
	hc := config.HealthCheckConfig{Path: "/healthz", StatusLo: 200, StatusHi: 299, Interval: 10 * time.Millisecond, Timeout: 2 * time.Second, Rise: 1, Fall: 1}
	u := &config.UpstreamConfig{Name: "app", Policy: config.PolicyRoundRobin, HealthCheck: &hc,
		Targets: []config.TargetConfig{{URL: bu, Weight: 1}, {URL: cu, Weight: 1}}}
	p := NewPool(u, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer p.Close()

	if !waitfor.True(10*time.Second, func() bool {
		h := p.Health()
		return !h[0].Up && h[0].ErrorClass == "status 503" && !h[1].Up && h[1].ErrorClass == "connection refused"
	}) {
		t.Fatalf("health never showed both targets down: %+v", p.Health())
	}
	h := p.Health()
	downSince := h[0].Since
	if !h[0].Checked || downSince.IsZero() || h[0].LastCheck.Before(downSince) {
		t.Fatalf("target 0: %+v", h[0])
	}
	for _, th := range h {
		if strings.Contains(th.ErrorClass, "127.0.0.1") {
			t.Fatalf("error class carries an address: %q", th.ErrorClass)
		}
	}

	sick.Store(false)
	if !waitfor.True(10*time.Second, func() bool { h := p.Health(); return h[0].Up && h[0].ErrorClass == "" }) {
		t.Fatalf("the backend never came back: %+v", p.Health()[0])
	}
	if h := p.Health()[0]; !h.Since.After(downSince) {
		t.Fatalf("since %v did not move after coming back (down since %v)", h.Since, downSince)
	}

	// A reload with the same check keeps since and the class.
	before := p.Health()[1]
	next := NewPool(u, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer next.Close()
	if got := next.Health()[1]; got.Up || got.ErrorClass != "connection refused" || got.Since.After(before.Since) {
		t.Fatalf("after reload: %+v, before %+v", got, before)
	}
}
