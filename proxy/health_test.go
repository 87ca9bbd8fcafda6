package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

// TestReloadKeepsTargetVerdicts builds a pool, lets its active check take
// out a sick target and its passive check eject another, then builds the
// pool a reload would build from it. The replacement's checks run once an
// hour and need five failures, so any verdict it shows at once was carried
// over, not found again.
func TestReloadKeepsTargetVerdicts(t *testing.T) {
	var recovered atomic.Bool
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !recovered.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer sick.Close()
	well := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer well.Close()
	sickURL, _ := url.Parse(sick.URL)
	wellURL, _ := url.Parse(well.URL)
	otherURL, _ := url.Parse("http://127.0.0.1:9") // never probed: no check, or hourly after the first
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	check := config.HealthCheckConfig{Path: "/healthz", StatusLo: 200, StatusHi: 299, Interval: 10 * time.Millisecond, Timeout: 2 * time.Second, Rise: 1, Fall: 1}
	passive := config.PassiveConfig{Enabled: true, ConsecutiveFailures: 1, CoolDown: time.Hour}
	upstream := func(hc *config.HealthCheckConfig, pc config.PassiveConfig, targets ...*url.URL) *config.UpstreamConfig {
		u := &config.UpstreamConfig{Name: "app", Policy: config.PolicyRoundRobin, HealthCheck: hc, Passive: pc}
		for _, tu := range targets {
			u.Targets = append(u.Targets, config.TargetConfig{URL: tu, Weight: 1})
		}
		return u
	}

	prev := NewPool(upstream(&check, passive, sickURL, wellURL), nil, log)
	defer prev.Close()
	if !waitfor.True(10*time.Second, func() bool { return !prev.Status()[0].Up }) {
		t.Fatal("the sick target was never taken out")
	}
	prev.failed(prev.targets[1])
	if st := prev.Status(); !st[1].Up || !st[1].Ejected {
		t.Fatalf("before the reload: %+v", st)
	}

	slow := check
	slow.Interval, slow.Rise, slow.Fall = time.Hour, 2, 5
	moved := slow
	moved.Path = "/ready"
	longer := slow
	longer.Timeout = 5 * time.Second
	withCA := upstream(&slow, passive, sickURL, wellURL)
	withCA.TLS.RootCAs = x509.NewCertPool() // a reload that fixes the CA file
	slowerDial := upstream(&slow, passive, sickURL, wellURL)
	slowerDial.DialTimeout = time.Minute
	tests := []struct {
		name            string
		next            *config.UpstreamConfig
		sickUp          bool // target 0 (sickURL) takes traffic
		wellEjected     bool // target 1 (wellURL) is cooling down
		otherTargetUp   bool // target 2, if any, is new and starts in
		withOtherTarget bool
	}{
		{name: "same checks, slower", next: upstream(&slow, passive, sickURL, wellURL), sickUp: false, wellEjected: true},
		{name: "check path changed", next: upstream(&moved, passive, sickURL, wellURL), sickUp: true, wellEjected: true},
		{name: "check timeout changed", next: upstream(&longer, passive, sickURL, wellURL), sickUp: true, wellEjected: true},
		{name: "upstream CA changed", next: withCA, sickUp: true, wellEjected: true},
		{name: "dial timeout changed", next: slowerDial, sickUp: true, wellEjected: true},
		{name: "active check removed", next: upstream(nil, passive, sickURL, wellURL), sickUp: true, wellEjected: true},
		{name: "passive check disabled", next: upstream(&slow, config.PassiveConfig{}, sickURL, wellURL), sickUp: false, wellEjected: false},
		{name: "a new target starts in", next: upstream(&slow, passive, sickURL, wellURL, otherURL), sickUp: false, wellEjected: true, withOtherTarget: true, otherTargetUp: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := NewPool(tc.next, prev, log)
			defer next.Close()
			st := next.Status()
			if st[0].Up != tc.sickUp {
				t.Errorf("sick target up = %v, want %v", st[0].Up, tc.sickUp)
			}
			if !st[1].Up || st[1].Ejected != tc.wellEjected {
				t.Errorf("ejected target: up %v ejected %v, want up and ejected %v", st[1].Up, st[1].Ejected, tc.wellEjected)
			}
			if tc.withOtherTarget && (st[2].Up != tc.otherTargetUp || st[2].Ejected) {
				t.Errorf("new target: %+v", st[2])
			}
		})
	}

	// A shorter cool-down in the new configuration caps the ejection.
	short := passive
	short.CoolDown = time.Second
	capped := NewPool(upstream(&slow, short, sickURL, wellURL), prev, log)
	defer capped.Close()
	if until := capped.targets[1].ejectedUntil.Load(); until > time.Now().Add(time.Second).UnixNano() {
		t.Errorf("ejected for %s after the cool-down became 1s", time.Until(time.Unix(0, until)))
	}

	// A target carried over as down comes back once the new pool's own
	// check passes it Rise times.
	quick := check
	quick.Rise = 2
	back := NewPool(upstream(&quick, passive, sickURL, wellURL), prev, log)
	defer back.Close()
	if back.Status()[0].Up {
		t.Fatal("the sick target was not carried over as down")
	}
	recovered.Store(true)
	if !waitfor.True(10*time.Second, func() bool { return back.Status()[0].Up }) {
		t.Fatal("the carried-over target never came back after its check passed")
	}
	recovered.Store(false)

	// A pool built afresh (a start, not a reload) trusts every target.
	fresh := NewPool(upstream(&slow, passive, sickURL, wellURL), nil, log)
	defer fresh.Close()
	if st := fresh.Status(); !st[0].Up || st[1].Ejected {
		t.Errorf("fresh pool: %+v", st)
	}
}

// TestSameConnection: loaded TLS material is compared by content, so a
// reload that re-reads unchanged files keeps the verdicts and one that
// changes them does not.
func TestSameConnection(t *testing.T) {
	certA, certB := selfSigned(t, "a"), selfSigned(t, "b")
	pool := func(c *x509.Certificate) *x509.CertPool {
		p := x509.NewCertPool()
		p.AddCert(c)
		return p
	}
	client := func(c *x509.Certificate) *tls.Certificate {
		return &tls.Certificate{Certificate: [][]byte{c.Raw}}
	}
	tests := []struct {
		name string
		a, b config.UpstreamTLSConfig
		same bool
	}{
		{"system roots both", config.UpstreamTLSConfig{}, config.UpstreamTLSConfig{}, true},
		{"same CA read twice", config.UpstreamTLSConfig{RootCAs: pool(certA)}, config.UpstreamTLSConfig{RootCAs: pool(certA)}, true},
		{"CA replaced", config.UpstreamTLSConfig{RootCAs: pool(certA)}, config.UpstreamTLSConfig{RootCAs: pool(certB)}, false},
		{"CA added", config.UpstreamTLSConfig{}, config.UpstreamTLSConfig{RootCAs: pool(certA)}, false},
		{"server name changed", config.UpstreamTLSConfig{ServerName: "a.internal"}, config.UpstreamTLSConfig{ServerName: "b.internal"}, false},
		{"same client certificate read twice", config.UpstreamTLSConfig{ClientCert: client(certA)}, config.UpstreamTLSConfig{ClientCert: client(certA)}, true},
		{"client certificate rotated", config.UpstreamTLSConfig{ClientCert: client(certA)}, config.UpstreamTLSConfig{ClientCert: client(certB)}, false},
		{"client certificate removed", config.UpstreamTLSConfig{ClientCert: client(certA)}, config.UpstreamTLSConfig{}, false},
	}
	for _, tt := range tests {
		a := &config.UpstreamConfig{TLS: tt.a, DialTimeout: time.Second}
		b := &config.UpstreamConfig{TLS: tt.b, DialTimeout: time.Second}
		if got := sameConnection(a, b); got != tt.same {
			t.Errorf("%s: same = %v, want %v", tt.name, got, tt.same)
		}
	}
	h2c := &config.UpstreamConfig{H2C: true, DialTimeout: time.Second}
	if sameConnection(&config.UpstreamConfig{DialTimeout: time.Second}, h2c) {
		t.Error("h2c on: same = true")
	}
}

func selfSigned(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
