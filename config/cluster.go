package config

import (
	"fmt"
	"regexp"
)

// Cluster makes several instances share state (issue 16). Without this
// block an instance needs no service at all, as before. Default: off.
type Cluster struct {
	// Name identifies the cluster: instances with the same name share rate
	// limits, bans and admin sessions (and their keys in Redis start with
	// it). Required with any shared service. Letters, digits, '.', '_' and
	// '-', at most 64.
	Name string `yaml:"name"`
	// Redis holds state that must be shared within milliseconds: rate-limit
	// counters, bans and strikes, admin sessions. Default: none.
	Redis *Redis `yaml:"redis"`
	// Postgres is the shared audit store: every instance's records in one
	// place, searched from any instance's dashboard. Default: none.
	Postgres *Postgres `yaml:"postgres"`
}

// ClusterConfig is the resolved cluster block; nil without one.
type ClusterConfig struct {
	Name     string
	Redis    *RedisConfig    // nil: no Redis
	Postgres *PostgresConfig // nil: no shared audit store
}

var clusterName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (c *checker) resolveCluster(f *File, cfg *Config) {
	cl := f.Cluster
	if cl == nil {
		return
	}
	out := &ClusterConfig{Name: cl.Name}
	if !clusterName.MatchString(cl.Name) {
		c.errorf("cluster.name", "must be 1 to 64 letters, digits, '.', '_' or '-', got %q", cl.Name)
	}
	if cl.Redis != nil {
		out.Redis = c.resolveRedis(cl.Redis, cl.Name)
	}
	if cl.Postgres != nil {
		out.Postgres = c.resolvePostgres(cl.Postgres, cfg)
	}
	cfg.Cluster = out
}

// String names the cluster for messages.
func (cc *ClusterConfig) String() string {
	if cc == nil {
		return "no cluster"
	}
	return fmt.Sprintf("cluster %q", cc.Name)
}
