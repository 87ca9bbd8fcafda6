package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const placeholderBase = `upstreams:
  - name: app
    targets: ["http://127.0.0.1:9000"]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
`

func TestPlaceholdersExpand(t *testing.T) {
	t.Setenv("PC_TEST_TOKEN", "s3cr3t-env-value")
	t.Setenv("PC_TEST_INSPECTIONS", "7")
	dir := writeFiles(t, map[string]string{
		"secrets/hook.url": "https://hooks.example.com/T000/B000/s3cr3t-file-value\n",
		"portcullis.yaml": placeholderBase + `server:
  inspections: "{env.PC_TEST_INSPECTIONS}"
alerts:
  webhooks:
    - url: "{file.secrets/hook.url}"
      headers:
        Authorization: "Bearer {env.PC_TEST_TOKEN}"
`,
	})
	cfg, err := Load(filepath.Join(dir, "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Inspections != 7 {
		t.Errorf("inspections = %d, want 7 (an integer field from the environment)", cfg.Server.Inspections)
	}
	wh := cfg.Alerts.Webhooks[0]
	if wh.URL != "https://hooks.example.com/T000/B000/s3cr3t-file-value" {
		t.Errorf("webhook url = %q (file relative to the config, trailing newline dropped)", wh.URL)
	}
	if wh.Headers["Authorization"] != "Bearer s3cr3t-env-value" {
		t.Errorf("header = %q", wh.Headers["Authorization"])
	}
}

func TestPlaceholderProblemsNameFileLineAndFieldNotValue(t *testing.T) {
	t.Setenv("PC_TEST_BAD_SIZE", "lots-of-s3cr3t")
	os.Unsetenv("PC_TEST_UNSET")
	dir := writeFiles(t, map[string]string{
		"portcullis.yaml": placeholderBase + `server:
  max_header_bytes: "{env.PC_TEST_BAD_SIZE}"
alerts:
  webhooks:
    - url: "{env.PC_TEST_UNSET}"
    - url: "https://x/{file.missing.txt}"
    - url: "{env.not-a-name}"
`,
	})
	path := filepath.Join(dir, "portcullis.yaml")
	_, err := Load(path)
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		path + `:10: server.max_header_bytes: must be a size like 65536, 512KiB or 10MiB, got "{env.PC_TEST_BAD_SIZE}"`,
		path + `:13: alerts.webhooks[0].url: {env.PC_TEST_UNSET}: environment variable PC_TEST_UNSET is not set`,
		path + `:14: alerts.webhooks[1].url: {file.missing.txt}: cannot read file: open ` + filepath.Join(dir, "missing.txt") + `: no such file or directory`,
		path + `:15: alerts.webhooks[2].url: {env.not-a-name}: "not-a-name" is not an environment variable name`,
	}
	got := strings.Split(err.Error(), "\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("a problem shows the secret: %v", err)
	}
}

func TestEffectiveMasksEverySecret(t *testing.T) {
	t.Setenv("PC_TEST_REDIS_PW", "s3cr3t-redis")
	t.Setenv("PC_TEST_LISTEN", "127.0.0.1:9191")
	dir := writeFiles(t, map[string]string{
		"hmac.key": "s3cr3t-hmac-from-file",
		"portcullis.yaml": `upstreams:
  - name: app
    targets: ["http://127.0.0.1:9000"]
reputation:
  lists:
    - {name: feed, action: deny, url: "https://user:s3cr3t-feed@feeds.example.com/drop.txt"}
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
        request_headers:
          set: {X-Api-Key: s3cr3t-apikey, X-Plain: visible-value}
tls:
  acme:
    email: ops@example.com
    eab_key_id: kid-1
    eab_hmac_key: "{file.hmac.key}"
admin:
  listen: "{env.PC_TEST_LISTEN}"
  auth:
    users: [{name: alice, password_hash: "$2a$10$NEMDVikuVi8S9LW7ENkxRuWpIG70icCUCMgTuDg42td2YQNEV0lpW"}]
    tokens: [{name: ci, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}]
alerts:
  webhooks:
    - url: https://hooks.example.com/services/s3cr3t-hook
      headers: {Authorization: Bearer s3cr3t-bearer, X-Team: ops}
cluster:
  name: test
  redis:
    url: redis://127.0.0.1:6379/0
    password: "{env.PC_TEST_REDIS_PW}"
`,
	})
	cfg, err := Load(filepath.Join(dir, "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cfg.Effective())
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, secret := range []string{"s3cr3t", "NEMDVikuVi8S9LW7", "9f86d081884c", "127.0.0.1:9191"} {
		if strings.Contains(out, secret) {
			t.Errorf("effective configuration shows %q:\n%s", secret, out)
		}
	}
	for _, shown := range []string{`"visible-value"`, `"ops@example.com"`, `"kid-1"`, `"X-Team":"ops"`, `"name":"alice"`, `"https://user:[masked]@feeds.example.com/drop.txt"`, `"redis://127.0.0.1:6379/0"`} {
		if !strings.Contains(out, shown) {
			t.Errorf("effective configuration lacks %s:\n%s", shown, out)
		}
	}
	if n := strings.Count(out, Masked); n != 9 {
		t.Errorf("%d masked values, want 9:\n%s", n, out)
	}
}

// TestSecretFieldsAreTagged: a field whose name says it holds a credential
// must carry a secret tag, so that GET /api/config masks it. A new field
// named like a secret fails here until it is tagged (or listed as a name
// or a path, which is not a secret).
func TestSecretFieldsAreTagged(t *testing.T) {
	secretName := regexp.MustCompile(`(?i)pass|secret|token|hmac|sha256|hash$|dsn|credential|private|api_?key`)
	notSecret := regexp.MustCompile(`(_file|_env|_prefix|_type|_id|^tokens|^hash_on|^pass_env|^passive_check)$`)
	var walk func(t reflect.Type, path string, seen map[reflect.Type]bool)
	walk = func(rt reflect.Type, path string, seen map[reflect.Type]bool) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] {
			return
		}
		seen[rt] = true
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			if secretName.MatchString(name) && !notSecret.MatchString(name) && f.Tag.Get("secret") == "" {
				t.Errorf("%s.%s looks like a secret but has no secret tag", path, name)
			}
			walk(f.Type, path+"."+name, seen)
		}
	}
	walk(reflect.TypeOf(File{}), "", map[reflect.Type]bool{})
}
