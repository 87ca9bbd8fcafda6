package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
)

// TestDeployClusterConfig: the configuration of the compose example
// (deploy/cluster) is valid, with its secrets where compose mounts them
// (here a temporary directory), and describes what README says: a cluster
// with Redis and PostgreSQL, credentials from files only.
func TestDeployClusterConfig(t *testing.T) {
	data, err := os.ReadFile("../../deploy/cluster/portcullis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"redis_password": "r3dis", "postgres_password": "p0stgres", "storage_key": strings.Repeat("ab", 32)} {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.ReplaceAll(string(data), "/run/secrets/", secrets+"/")
	text = strings.ReplaceAll(text, "/var/lib/portcullis", filepath.Join(dir, "state"))
	path := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.Check(cfg); err != nil {
		t.Fatal(err)
	}
	cc := cfg.Cluster
	if cc == nil || cc.Redis == nil || cc.Postgres == nil {
		t.Fatalf("cluster block: %+v", cc)
	}
	if cc.Redis.Password.Reveal() != "r3dis" || cc.Postgres.Password.Reveal() != "p0stgres" {
		t.Error("passwords not read from the secret files")
	}
	if strings.Contains(string(data), "p0stgres") || strings.Contains(cc.Postgres.ConnString, "p0stgres") {
		t.Error("a password in the configuration text or the connection string")
	}
	if want := filepath.Join(dir, "state", "audit-spool"); cc.Postgres.SpoolDir != want {
		t.Errorf("spool in %s, want %s (the instance's state volume)", cc.Postgres.SpoolDir, want)
	}
}
