package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRelativePaths: every relative path in a configuration file is
// resolved against the file's directory, whatever the working directory
// (#13: tls.state_dir followed the file but audit.file the working
// directory, so the server and the CLI could use different files).
func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	cfgDir := filepath.Join(dir, "etc")
	if err := os.MkdirAll(filepath.Join(cfgDir, "rules"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"rules/local.conf": "# nothing\n", "office.txt": "203.0.113.0/24\n"} {
		if err := os.WriteFile(filepath.Join(cfgDir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(cfgDir, "portcullis.yaml")
	write := func(extra string) {
		t.Helper()
		text := `upstreams: [{name: app, targets: ["http://127.0.0.1:3000"]}]
sites: [{hosts: ["*"], routes: [{path: /, upstream: app}]}]
waf: {rules_before: [{file: rules/local.conf}]}
reputation: {lists: [{name: office, action: allow, file: office.txt}]}
` + extra
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Another working directory than the file's.
	t.Chdir(dir)
	in := func(rel string) string { return filepath.Join(cfgDir, rel) }

	write("tls: {state_dir: state}\naudit: {file: logs/audit.jsonl, rule_log: logs/rules.log, store: {path: db/audit.db}}\nbans: {state_file: bans/b.json}\n")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ field, got, want string }{
		{"tls.state_dir", cfg.TLS.StateDir, in("state")},
		{"audit.file", cfg.Audit.File, in("logs/audit.jsonl")},
		{"audit.rule_log", cfg.Audit.RuleLog, in("logs/rules.log")},
		{"audit.store.path", cfg.Audit.Store.Path, in("db/audit.db")},
		{"bans.state_file", cfg.Bans.StateFile, in("bans/b.json")},
		{"reputation.lists[0].file", cfg.Lists[0].File, in("office.txt")},
		{"waf.rules_before[0].file", cfg.Sites[0].Routes[0].WAF.RulesBefore[0].Origin, in("rules/local.conf")},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.field, tc.got, tc.want)
		}
	}

	// Defaults: beside the file, or in PORTCULLIS_STATE_DIR when set; an
	// explicit path always wins over the variable.
	write("")
	for _, tc := range []struct {
		env                        string
		stateDir, auditFile, store string
	}{
		{"", in("portcullis-state"), in("portcullis-audit.jsonl"), in("portcullis-state/audit.db")},
		{filepath.Join(dir, "var"), filepath.Join(dir, "var"), filepath.Join(dir, "var", "portcullis-audit.jsonl"), filepath.Join(dir, "var", "audit.db")},
	} {
		t.Setenv(StateDirEnv, tc.env)
		cfg, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TLS.StateDir != tc.stateDir || cfg.Audit.File != tc.auditFile || cfg.Audit.Store.Path != tc.store || cfg.Bans.StateFile != filepath.Join(tc.stateDir, "bans.json") {
			t.Errorf("env %q: state %q audit %q store %q bans %q", tc.env, cfg.TLS.StateDir, cfg.Audit.File, cfg.Audit.Store.Path, cfg.Bans.StateFile)
		}
	}
	t.Setenv(StateDirEnv, filepath.Join(dir, "var"))
	write("tls: {state_dir: mine}\naudit: {file: a.jsonl}\n")
	if cfg, err := Load(path); err != nil || cfg.TLS.StateDir != in("mine") || cfg.Audit.File != in("a.jsonl") {
		t.Errorf("explicit paths lost to %s: %+v %v", StateDirEnv, cfg.TLS, err)
	}
}
