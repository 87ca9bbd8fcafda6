package admin

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// readiness is a fixed answer of a ReadinessReporter.
type readiness Readiness

func (r readiness) Readiness() Readiness { return Readiness(r) }

// TestReadyz: /readyz renders what the reporter says, one line per reason,
// 503 when anything is not ready, without authentication.
func TestReadyz(t *testing.T) {
	tests := []struct {
		name   string
		state  Readiness
		status int
		body   string
	}{
		{"ready", Readiness{}, 200, "ready\n"},
		{"degraded", Readiness{Degraded: []string{"audit records cannot be written, serving without them"}}, 200,
			"ready\ndegraded: audit records cannot be written, serving without them\n"},
		{"not ready", Readiness{NotReady: []string{"hosts without a certificate: a.example"}}, 503,
			"not ready: hosts without a certificate: a.example\n"},
		{"several", Readiness{NotReady: []string{"not accepting connections", "degraded: audit records cannot be written"}, Degraded: []string{"x"}}, 503,
			"not ready: not accepting connections\nnot ready: degraded: audit records cannot be written\ndegraded: x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t, func(o *Options) { o.Ready = readiness(tt.state) })
			resp := env.do(t, req{path: "/readyz"})
			if body := readBody(t, resp); resp.StatusCode != tt.status || body != tt.body {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}

// reloader keeps the history of the reloads it was asked for; a trigger
// of "bad" fails like a refused file.
type reloader struct {
	mu      sync.Mutex
	history ReloadHistory
}

func (r *reloader) Reload(trigger string) ReloadResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := ReloadResult{Time: testNow, Trigger: trigger, OK: r.history.OK == 0, Duration: "1ms"}
	if res.OK {
		r.history.OK++
	} else {
		res.Error = "portcullis.yaml:3: waf.paranoia: must be 1 to 4"
		r.history.Failed++
	}
	r.history.Last = &res
	return res
}

func (r *reloader) Reloads() ReloadHistory {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.history
}

// purger removes keys from a set.
type purger struct{ keys map[string]bool }

func (p *purger) PurgeCache(key string, prefix bool) int {
	n := 0
	for k := range p.keys {
		if k == key || (prefix && strings.HasPrefix(k, key)) {
			delete(p.keys, k)
			n++
		}
	}
	return n
}

// TestProcessEndpoints: reload, purge and metrics need a token like the
// rest of the API and answer compact JSON; health and readiness are open;
// endpoints whose interface is not given do not exist.
func TestProcessEndpoints(t *testing.T) {
	rl := &reloader{}
	pg := &purger{keys: map[string]bool{"https://shop.example/a": true, "https://shop.example/b": true, "https://other.example/a": true}}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("portcullis_up 1\n")) })
	env := newEnv(t, func(o *Options) { o.Reload, o.Cache, o.Ready, o.Metrics = rl, pg, readiness{}, metrics })
	bare := newEnv(t)
	json := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testToken}
	tests := []struct {
		name   string
		env    *testEnv
		r      req
		status int
		body   string // exact, or a prefix ending in "…"
	}{
		{"healthz open", env, req{path: "/healthz"}, 200, "ok\n"},
		{"healthz without a reporter", bare, req{path: "/healthz"}, 404, "…"},
		{"readyz without a reporter", bare, req{path: "/readyz"}, 404, "…"},
		{"reload needs a token", env, req{method: "POST", path: "/api/reload", body: "{}"}, 401, "…"},
		{"reload", env, req{method: "POST", path: "/api/reload", body: "{}", header: json}, 200,
			`{"time":"2026-11-26T12:00:00Z","trigger":"admin API","ok":true,"duration":"1ms"}` + "\n"},
		{"refused reload", env, req{method: "POST", path: "/api/reload", body: "{}", header: json}, 422,
			`{"time":"2026-11-26T12:00:00Z","trigger":"admin API","ok":false,"duration":"1ms","error":"portcullis.yaml:3: waf.paranoia: must be 1 to 4"}` + "\n"},
		{"history", env, req{path: "/api/reload", header: bearer()}, 200, `{"succeeded":1,"failed":1,"last":{"time":"2026-11-26T12:00:00Z","trigger":"admin API","ok":false,…`},
		{"reload without a reloader", bare, req{method: "POST", path: "/api/reload", body: "{}", header: json}, 404, "…"},
		{"purge a prefix", env, req{method: "POST", path: "/api/cache/purge", body: `{"key":"https://shop.example/","prefix":true}`, header: json}, 200, "{\"removed\":2}\n"},
		{"purge one key", env, req{method: "POST", path: "/api/cache/purge", body: `{"key":"https://other.example/a"}`, header: json}, 200, "{\"removed\":1}\n"},
		{"purge without a key", env, req{method: "POST", path: "/api/cache/purge", body: `{"prefix":true}`, header: json}, 400, "body must be …"},
		{"purge needs a token", env, req{method: "POST", path: "/api/cache/purge", body: `{"key":"x"}`}, 401, "…"},
		{"metrics", env, req{path: "/metrics", header: bearer()}, 200, "portcullis_up 1\n"},
		{"metrics need a token", env, req{path: "/metrics"}, 401, "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.env.do(t, tt.r)
			body := readBody(t, resp)
			ok := body == tt.body
			if prefix, cut := strings.CutSuffix(tt.body, "…"); cut {
				ok = strings.HasPrefix(body, prefix)
			}
			if resp.StatusCode != tt.status || !ok {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}
