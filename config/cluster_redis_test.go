package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClusterRedisResolved(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "redis.pw"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORTCULLIS_TEST_REDIS_PW", "from-env")
	base := "upstreams: [{name: app, targets: [\"http://127.0.0.1:8081\"]}]\nsites: [{name: shop, hosts: [\"*\"], routes: [{path: /, upstream: app}]}]\n"
	tests := []struct {
		name, yaml string
		want       RedisConfig
		tls        bool
	}{
		{"defaults", "cluster: {name: eu-1, redis: {url: \"redis://10.0.0.5\"}}",
			RedisConfig{Network: "tcp", Addr: "10.0.0.5:6379", Timeout: 50 * time.Millisecond, Dial: time.Second, KeyPrefix: "portcullis:eu-1:"}, false},
		{"file password, user and db from the url, tls", "cluster: {name: eu, redis: {url: \"rediss://pc@[::1]:6380/3\", password_file: redis.pw, timeout: 20ms, key_prefix: \"x:\"}}",
			RedisConfig{Network: "tcp", Addr: "[::1]:6380", Username: "pc", Password: "s3cret", DB: 3, Timeout: 20 * time.Millisecond, Dial: time.Second, KeyPrefix: "x:"}, true},
		{"env password, db field wins", "cluster: {name: eu, redis: {url: \"redis://h:1/2\", password_env: PORTCULLIS_TEST_REDIS_PW, db: 5, pool_size: 4}}",
			RedisConfig{Network: "tcp", Addr: "h:1", Password: "from-env", DB: 5, Timeout: 50 * time.Millisecond, Dial: time.Second, KeyPrefix: "portcullis:eu:", PoolSize: 4}, false},
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
			got := *cfg.Cluster.Redis
			if (got.TLS != nil) != tt.tls {
				t.Errorf("tls %+v, want on=%v", got.TLS, tt.tls)
			}
			got.TLS = nil
			if got != tt.want {
				t.Errorf("resolved %+v\nwant %+v", got, tt.want)
			}
			// The password never prints.
			for _, s := range []string{fmt.Sprintf("%v", got), fmt.Sprintf("%+v", got), fmt.Sprintf("%#v", got), fmt.Sprint(got.Password)} {
				if got.Password != "" && strings.Contains(s, got.Password.Reveal()) {
					t.Errorf("password printed: %s", s)
				}
			}
		})
	}
	// No cluster block: nothing.
	path := filepath.Join(dir, "none.yaml")
	os.WriteFile(path, []byte(base), 0o600)
	if cfg, err := Load(path); err != nil || cfg.Cluster != nil {
		t.Errorf("without a cluster block: %v %+v", err, cfg.Cluster)
	}
}
