package admin

import (
	"strings"
	"testing"
)

// configManager records what was posted; text "bad" is refused.
type configManager struct {
	posted  []string
	persist []bool
	by      []string
}

func (m *configManager) EffectiveConfig() (map[string]any, string) {
	return map[string]any{"admin": map[string]any{"auth": map[string]any{"tokens": []any{map[string]any{"name": "ci", "sha256": "[masked]"}}}}}, "/etc/portcullis.yaml"
}

func (m *configManager) ApplyConfig(text []byte, persist bool, by string) ConfigApplyResult {
	m.posted, m.persist, m.by = append(m.posted, string(text)), append(m.persist, persist), append(m.by, by)
	if string(text) == "bad" {
		return ConfigApplyResult{Problems: []string{"p.yaml:1: sites: at least one site is required", "p.yaml:2: waf.paranoia: must be 1..4, got 9"}}
	}
	return ConfigApplyResult{OK: true, Applied: true, Persisted: persist, Duration: "1ms"}
}

// TestConfigAPI: GET and POST /api/config go through the same
// authentication and CSRF checks as every admin change, and map the
// manager's answer to 200, 400 (every problem) and the request's shape
// errors to 400 and 415.
func TestConfigAPI(t *testing.T) {
	m := &configManager{}
	env := newEnv(t, func(o *Options) { o.Config = m })
	s := env.login(t)
	tokenJSON := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testToken}
	tokenYAML := map[string]string{"Content-Type": "application/yaml", "Authorization": "Bearer " + testToken}
	tests := []struct {
		name   string
		r      req
		status int
		body   string // substring
	}{
		{"get needs authentication", req{path: "/api/config"}, 401, "authentication required"},
		{"get", req{path: "/api/config", header: bearer()}, 200, `"source": "/etc/portcullis.yaml"`},
		{"post needs authentication", req{method: "POST", path: "/api/config", body: `{"config": "x"}`, header: map[string]string{"Content-Type": "application/json"}}, 401, ""},
		{"session without CSRF token", req{method: "POST", path: "/api/config", body: `{"config": "x"}`, cookies: s.cookies, header: map[string]string{"Content-Type": "application/json"}}, 403, "CSRF"},
		{"session with CSRF token", req{method: "POST", path: "/api/config", body: `{"config": "ok"}`, cookies: s.cookies, header: map[string]string{"Content-Type": "application/json", csrfHeader: s.csrf}}, 200, `"applied": true`},
		{"token, JSON", req{method: "POST", path: "/api/config", body: `{"config": "ok", "persist": true}`, header: tokenJSON}, 200, `"persisted": true`},
		{"token, YAML", req{method: "POST", path: "/api/config?persist=true", body: "ok", header: tokenYAML}, 200, `"persisted": true`},
		{"refused config lists every problem", req{method: "POST", path: "/api/config", body: `{"config": "bad"}`, header: tokenJSON}, 400, `"p.yaml:2: waf.paranoia: must be 1..4, got 9"`},
		{"unknown JSON field", req{method: "POST", path: "/api/config", body: `{"config": "ok", "force": true}`, header: tokenJSON}, 400, "body must be JSON"},
		{"empty config", req{method: "POST", path: "/api/config", body: `{}`, header: tokenJSON}, 400, "body must be JSON"},
		{"other type", req{method: "POST", path: "/api/config", body: "ok", header: map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + testToken}}, 415, "application/yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := env.do(t, tt.r)
			body := readBody(t, resp)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.body) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
	if len(m.posted) != 4 || m.posted[0] != "ok" || m.persist[0] || !m.persist[1] || !m.persist[2] || !strings.HasPrefix(m.by[0], "admin API (") {
		t.Errorf("manager saw %q %v %q", m.posted, m.persist, m.by)
	}
	if resp := newEnv(t).do(t, req{path: "/api/config", header: bearer()}); resp.StatusCode != 404 {
		t.Errorf("without a manager: %d", resp.StatusCode)
	}
}
