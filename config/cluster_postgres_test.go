package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClusterPostgresResolved(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pg.pw"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORTCULLIS_TEST_PG_PW", "from-env")
	base := "tls: {state_dir: /var/lib/pc}\nupstreams: [{name: app, targets: [\"http://127.0.0.1:8081\"]}]\nsites: [{name: shop, hosts: [\"*\"], routes: [{path: /, upstream: app}]}]\n"
	tests := []struct {
		name, yaml string
		want       PostgresConfig
	}{
		{"loopback defaults", `cluster: {name: eu, postgres: {url: "postgres://pc@127.0.0.1/audit", instance: a1}}`,
			PostgresConfig{ConnString: "postgres://pc@127.0.0.1/audit?sslmode=disable", Addr: "127.0.0.1:5432", Database: "audit", SSLMode: "disable",
				Schema: "portcullis", Instance: "a1", Timeout: 10 * time.Second, Dial: 5 * time.Second, SpoolDir: "/var/lib/pc/audit-spool", SpoolMax: 1 << 30}},
		{"remote: verified TLS, file password", `cluster: {name: eu, postgres: {url: "postgres://pc@db.example:6432/audit", password_file: pg.pw, tls: {ca_file: ca.pem}, schema: waf_eu, instance: a2, max_age: 720h, spool_max_size: 64MiB, spool_dir: spool}}`,
			PostgresConfig{ConnString: "postgres://pc@db.example:6432/audit?sslmode=verify-full&sslrootcert=" + strings.ReplaceAll(filepath.Join(dir, "ca.pem"), "/", "%2F"), Addr: "db.example:6432", Database: "audit", Password: "s3cret",
				SSLMode: "verify-full", Schema: "waf_eu", Instance: "a2", MaxAge: 720 * time.Hour, Timeout: 10 * time.Second, Dial: 5 * time.Second, SpoolDir: filepath.Join(dir, "spool"), SpoolMax: 64 << 20}},
		{"env password, explicit mode", `cluster: {name: eu, postgres: {url: "postgresql://pc@10.0.0.6/a", password_env: PORTCULLIS_TEST_PG_PW, ssl_mode: require, instance: "a:3", timeout: 2s}}`,
			PostgresConfig{ConnString: "postgresql://pc@10.0.0.6/a?sslmode=require", Addr: "10.0.0.6:5432", Database: "a", Password: "from-env", SSLMode: "require",
				Schema: "portcullis", Instance: "a:3", Timeout: 2 * time.Second, Dial: 5 * time.Second, SpoolDir: "/var/lib/pc/audit-spool", SpoolMax: 1 << 30}},
		{"placeholder password", `cluster: {name: eu, postgres: {url: "postgres://pc@127.0.0.1/audit", password: "{env.PORTCULLIS_TEST_PG_PW}", instance: a4}}`,
			PostgresConfig{ConnString: "postgres://pc@127.0.0.1/audit?sslmode=disable", Addr: "127.0.0.1:5432", Database: "audit", Password: "from-env", SSLMode: "disable",
				Schema: "portcullis", Instance: "a4", Timeout: 10 * time.Second, Dial: 5 * time.Second, SpoolDir: "/var/lib/pc/audit-spool", SpoolMax: 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(path, []byte(base+tt.yaml+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			got := *cfg.Cluster.Postgres
			if got != tt.want {
				t.Errorf("resolved %+v\nwant     %+v", got, tt.want)
			}
			for _, s := range []string{fmt.Sprintf("%v", got), fmt.Sprintf("%+v", got), fmt.Sprintf("%#v", got), got.ConnString} {
				if got.Password != "" && strings.Contains(s, got.Password.Reveal()) {
					t.Errorf("password printed: %s", s)
				}
			}
		})
	}
}

// Bad settings are refused with the file, line, field and reason.
func TestClusterPostgresErrors(t *testing.T) {
	dir := t.TempDir()
	base := "upstreams: [{name: app, targets: [\"http://127.0.0.1:8081\"]}]\nsites: [{name: shop, hosts: [\"*\"], routes: [{path: /, upstream: app}]}]\ncluster:\n  name: eu\n  postgres:\n"
	tests := []struct{ yaml, want string }{
		{"    url: \"postgres://pc:hunter2@h/audit\"", `c.yaml:6: cluster.postgres.url: must not hold a password; use password_file or password_env`},
		{"    url: \"postgres://h/audit\"", `c.yaml:6: cluster.postgres.url: must name a user`},
		{"    url: \"postgres://pc@h/\"", `c.yaml:6: cluster.postgres.url: must name one database`},
		{"    url: \"mysql://pc@h/a\"", `c.yaml:6: cluster.postgres.url: must start with postgres://, got "mysql://"`},
		{"    url: \"postgres://pc@h/a?sslmode=disable\"", `c.yaml:6: cluster.postgres.url: must not have a query or fragment`},
		{"    url: \"postgres://pc@h/a\"\n    password: x", `c.yaml:7: cluster.postgres.password: inline passwords are not accepted`},
		{"    url: \"postgres://pc@h/a\"\n    password_env: PORTCULLIS_TEST_UNSET_PW", `c.yaml:7: cluster.postgres.password_env: environment variable PORTCULLIS_TEST_UNSET_PW is not set or empty`},
		{"    url: \"postgres://pc@h/a\"\n    ssl_mode: prefer", `c.yaml:7: cluster.postgres.ssl_mode: must be disable, require, verify-ca or verify-full, got "prefer"`},
		{"    url: \"postgres://pc@127.0.0.1/a\"\n    tls: {ca_file: ca.pem}", `c.yaml:7: cluster.postgres.tls: needs ssl_mode require`},
		{"    url: \"postgres://pc@h/a\"\n    schema: Bad-Name", `c.yaml:7: cluster.postgres.schema: must be a lower-case SQL name`},
		{"    url: \"postgres://pc@h/a\"\n    instance: \"a b\"", `c.yaml:7: cluster.postgres.instance: must be 1 to 128`},
		{"    url: \"postgres://pc@h/a\"\n    max_age: 1h", `c.yaml:7: cluster.postgres.max_age: must be 0 (keep everything) or at least 24h`},
		{"    url: \"postgres://pc@h/a\"\n    spool_max_size: 1000", `c.yaml:7: cluster.postgres.spool_max_size: must be at least 1MiB`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			path := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(path, []byte(base+tt.yaml+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}
