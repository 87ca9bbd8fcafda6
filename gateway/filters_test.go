package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTrustedProxyDecidesTheClientAddress(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, "client_ip:\n  trusted_proxies: [127.0.0.1]\naudit:\n  log_all: true\n"+basicConfig, up.URL)
	// 127.0.0.1 is trusted; 10.1.1.1 is claimed by the client and untrusted
	// addresses are never skipped, so the right-most untrusted one wins.
	_, got, id := do(t, "GET", tp.URL+"/", "", http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.9"}})
	if !strings.Contains(got, "X-Forwarded-For: 203.0.113.9\r\n") {
		t.Errorf("upstream did not get the resolved client:\n%s", got)
	}
	e := tp.entryFor(t, id)
	if e.ClientIP != "203.0.113.9" || e.Peer != "127.0.0.1" {
		t.Errorf("record client %s peer %s", e.ClientIP, e.Peer)
	}
}
