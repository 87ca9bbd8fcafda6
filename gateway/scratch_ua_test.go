package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestScratchUserAgentStage(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, `upstreams: [{name: app, targets: ["UPSTREAM"]}]
sites:
  - hosts: ["*"]
    filters: {require_user_agent: true}
    routes: [{path: /, upstream: app}]
`, up.URL)
	req, _ := http.NewRequest("GET", tp.URL+"/", nil)
	req.Header.Set("User-Agent", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("no UA: %d", resp.StatusCode)
	}
	if e := tp.entryFor(t, resp.Header.Get("X-Request-Id")); e.Stage != "useragent" {
		t.Fatalf("stage %q", e.Stage)
	}
	status, _, _ := fromClient(t, tp.URL+"/", "192.0.2.1")
	if status != 200 {
		t.Fatalf("with UA: %d", status)
	}
}
