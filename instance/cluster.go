package instance

import (
	"context"
	"fmt"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
)

// connectRedis builds the process's Redis connection (cluster.redis), which
// outlives reloads: rate limits, bans and strikes, admin sessions and ACME
// state go through it. It tries the connection once: an instance starts
// even when Redis is down, degraded (local limits, bans and sessions), and
// catches up when Redis answers. It closes after the pipeline has retired,
// so the last bans made go out first.
func (i *Instance) connectRedis() error {
	cc := i.cfg.Cluster
	if cc == nil || cc.Redis == nil {
		return nil
	}
	conn, err := redisconn.New(cc.Redis, redisconn.Options{Log: i.log.With("component", "redis")})
	if err != nil {
		return fmt.Errorf("cluster.redis: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(cc.Redis.Dial, cc.Redis.Timeout))
	defer cancel()
	if err := conn.Ping(ctx); err == nil {
		i.log.Info("cluster: redis connected", "cluster", cc.Name, "address", cc.Redis.Addr, "tls", cc.Redis.TLS != nil)
	}
	if i.metrics != nil {
		i.metrics.Registry().MustRegister(conn.Collectors()...)
	}
	i.redis = conn
	return i.add(Component{Name: "redis", Stop: conn.Close, Ready: i.redisReadiness})
}

// redisReadiness reports Redis unreachable as degraded, never as not ready:
// every instance failing its check at once would be an outage, and limits,
// bans and sessions are local until Redis answers.
func (i *Instance) redisReadiness() admin.Readiness {
	if down, why := i.redis.Degraded(); down {
		return admin.Readiness{Degraded: []string{why}}
	}
	return admin.Readiness{}
}
