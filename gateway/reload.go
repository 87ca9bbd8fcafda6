package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/config"
)

// Reload builds the pipeline for cfg beside prev, which keeps serving: rule
// sets, lists, GeoIP databases, the ban table and rate-limit counters that
// cfg leaves unchanged are taken over rather than built again. It returns
// an error — and changes nothing — when cfg cannot be built or changes
// something only a restart can apply (listeners, certificates, audit
// destinations, the admin listener). Server.Reload does the whole switch.
func Reload(cfg *config.Config, prev *Pipeline, log *slog.Logger) (*Pipeline, error) {
	if problems := restartOnly(prev.Config, cfg); len(problems) > 0 {
		return nil, fmt.Errorf("%s: %w: %s changed (the running configuration is unchanged)", cfg.Source, ErrRestartRequired, strings.Join(problems, "; "))
	}
	if log == nil {
		log = prev.log
	}
	engines := prev.engines.Next()
	p, err := build(cfg, engines, prev.records, log, prev, prev.redis)
	if err != nil {
		_ = engines.Discard()
		return nil, err
	}
	p.https = prev.https // the bound https port, for redirects
	p.Observe(*prev.observe)
	return p, nil
}

// commit makes p the owner of what it took over from prev, which from
// then on only finishes the requests it has.
func (p *Pipeline) commit(prev *Pipeline) {
	p.bans.TakeOver(prev.bans) // stops prev's ban upkeep at once
	p.sources.TakeOver(prev.sources)
}

// Reload switches the server to a pipeline for cfg in one atomic step (see
// the package function Reload for what is rebuilt and what is refused).
// Requests already running finish on the old pipeline, which is retired in
// the background within grace. A failed reload changes nothing.
func (s *Server) Reload(cfg *config.Config, grace time.Duration) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	prev := s.current.Load()
	next, err := Reload(cfg, prev, s.log)
	if err != nil {
		return err
	}
	next.commit(prev) // stops prev's ban upkeep before next starts its own
	next.Start()
	s.current.Store(next)
	s.retiring.Add(1)
	go func() {
		defer s.retiring.Done()
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if n := prev.Retire(ctx); n > 0 {
			s.log.Warn("previous configuration retired with requests still running after the grace period", "requests", n, "grace", grace)
		}
	}()
	return nil
}

// WaitRetired waits until every pipeline replaced by Reload is retired.
func (s *Server) WaitRetired() { s.retiring.Wait() }

// Retire waits until p has no request in flight (requests started before
// the swap finish on the pipeline they started with), at most until ctx
// ends, then closes what no successor took over. It reports how many
// requests were still running when it gave up waiting.
func (p *Pipeline) Retire(ctx context.Context) (abandoned int64) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for p.active.Load() > 0 {
		select {
		case <-ctx.Done():
			abandoned = p.active.Load()
			p.close()
			return abandoned
		case <-t.C:
		}
	}
	p.close()
	return 0
}

// close releases p's own resources after a reload (Close is for shutdown).
func (p *Pipeline) close() {
	p.Close()
	_ = p.engines.Release()
}

// ErrRestartRequired marks a reload refused because of restartOnly changes.
var ErrRestartRequired = errors.New("restart required")

// restartOnly lists the settings that differ between the running and the
// new configuration but are bound to process resources a pipeline swap
// does not replace: open sockets, the certificate manager, audit files and
// the admin listener.
func restartOnly(old, cfg *config.Config) []string {
	var out []string
	check := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, name)
		}
	}
	check("listeners", old.Listeners, cfg.Listeners)
	check("server", old.Server, cfg.Server)
	check("log.format", old.Log.Format, cfg.Log.Format)
	check("tls", old.TLS, cfg.TLS)
	check("audit.file, rule_log, queue_size, store, on_failure or aggregate", [6]any{old.Audit.File, old.Audit.RuleLog, old.Audit.QueueSize, old.Audit.Store, old.Audit.OnFailure, old.Audit.Aggregate}, [6]any{cfg.Audit.File, cfg.Audit.RuleLog, cfg.Audit.QueueSize, cfg.Audit.Store, cfg.Audit.OnFailure, cfg.Audit.Aggregate})
	check("admin", old.Admin, cfg.Admin)
	check("cluster", old.Cluster, cfg.Cluster)
	check("alerts", old.Alerts, cfg.Alerts)
	check("client_ip", old.ClientIP, cfg.ClientIP)
	// The admin listener holds the ban table for the process's life.
	check("bans.enabled, state_file or max_entries", [3]any{old.Bans.Enabled, old.Bans.StateFile, old.Bans.MaxEntries}, [3]any{cfg.Bans.Enabled, cfg.Bans.StateFile, cfg.Bans.MaxEntries})
	// Certificates are bound to the certificate manager the listeners use.
	tlsSites := func(c *config.Config) map[string]any {
		m := map[string]any{}
		for _, s := range c.Sites {
			if s.TLS != nil {
				m[s.Name] = [2]any{s.Hosts, *s.TLS}
			}
		}
		return m
	}
	check("sites with tls (their hosts and certificates)", tlsSites(old), tlsSites(cfg))
	return out
}
