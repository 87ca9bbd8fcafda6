package instance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/gateway"
	"github.com/portcullis-waf/portcullis/tlsmgr"
)

// retireWait is how long requests that outlived the listeners (hijacked
// WebSockets, handlers past the grace period) may still run at exit to
// write their audit records, before the writer closes.
const retireWait = 5 * time.Second

// buildPipeline builds the pipeline: every stage from clientip to the
// proxy, rule sets compiled, lists loaded. Its Start begins list feeds and
// GeoIP file watching.
func (i *Instance) buildPipeline() error {
	p, err := gateway.BuildShared(i.cfg, nil, i.records, i.log, i.redis)
	if err != nil {
		return err
	}
	p.Observe(gateway.Observers{Metrics: i.metrics, Alerts: i.alerts})
	i.first = p
	return i.add(Component{Name: "pipeline", Start: func() error { p.Start(); return nil }, Stop: i.retirePipeline})
}

// retirePipeline closes the current pipeline (a reload may have replaced
// the first) once its last request is done, or after retireWait.
func (i *Instance) retirePipeline() error {
	ctx, cancel := context.WithTimeout(context.Background(), retireWait)
	defer cancel()
	if n := i.pipeline().Retire(ctx); n > 0 {
		i.log.Warn("requests still running at exit; their audit records are lost", "requests", n)
	}
	return nil
}

// buildCertificates creates the certificate sources of the sites with TLS
// (tlsmgr); Start orders missing certificates, renews and watches files.
func (i *Instance) buildCertificates() error {
	plan := i.cfg.Certificates()
	if i.redis != nil {
		// One instance orders each certificate, every instance answers its
		// challenges and serves it (sealed in Redis with the storage key).
		plan.Shared = &tlsmgr.SharedStorage{Client: i.redis.Client, Prefix: i.cfg.Cluster.Redis.KeyPrefix + "acme:"}
	}
	certs, err := tlsmgr.Build(plan, i.log)
	if err != nil || certs == nil {
		return err
	}
	i.certs = certs
	return i.add(Component{
		Name:  "certificates",
		Start: func() error { certs.Start(); return nil },
		Stop:  func() error { certs.Stop(); return nil },
		Ready: i.certificateReadiness,
	})
}

// certificateReadiness fails while a TLS host has no certificate yet (an
// ACME order in progress, including a wildcard ordered over DNS-01). The
// manager keys hosts in lower case, as the configuration may not.
func (i *Instance) certificateReadiness() admin.Readiness {
	have := i.certs.Expiry()
	var missing []string
	for _, s := range i.cfg.Sites { // sites with TLS cannot change on reload
		if s.TLS == nil {
			continue
		}
		for _, h := range s.Hosts {
			if _, ok := have[strings.ToLower(h)]; !ok {
				missing = append(missing, h)
			}
		}
	}
	if len(missing) == 0 {
		return admin.Readiness{}
	}
	slices.Sort(missing)
	return admin.Readiness{NotReady: []string{"hosts without a certificate: " + strings.Join(missing, ", ")}}
}

// newServer prepares the traffic server for the pipeline; it listens in
// serveTraffic.
func (i *Instance) newServer() error {
	i.server = gateway.NewServer(i.first, i.certs, i.log)
	return nil
}

// serveTraffic opens every listener of the configuration and serves on
// them. At shutdown they stop accepting and requests in flight get
// server.shutdown_grace to finish; pipelines a reload replaced are retired
// by then too.
func (i *Instance) serveTraffic() error {
	return i.add(Component{
		Name: "listeners",
		Start: func() error {
			lns, err := i.server.Listen() // closes what it opened when one fails
			if err != nil {
				return err
			}
			i.server.Serve(lns)
			return nil
		},
		Stop: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), i.cfg.Server.ShutdownGrace)
			defer cancel()
			err := i.server.Shutdown(ctx)
			i.server.WaitRetired()
			return err
		},
		Ready: i.listenerReadiness,
	})
}

// listenerReadiness fails while the listeners do not accept: a balancer
// should send new clients elsewhere, they would wait in the backlog until
// file descriptors are free again.
func (i *Instance) listenerReadiness() admin.Readiness {
	if st := i.server.Limits().Stats(); st.Paused {
		return admin.Readiness{NotReady: []string{fmt.Sprintf("not accepting connections, file descriptors short (%d in use of %d, %d reserved)", st.OpenFiles, st.MaxFiles, st.Reserve)}}
	}
	if len(i.server.Addrs()) == 0 {
		return admin.Readiness{NotReady: []string{"no listener is serving"}}
	}
	return admin.Readiness{}
}

// PurgeCache removes entries from the current pipeline's response cache
// (admin.CachePurger).
func (i *Instance) PurgeCache(key string, prefix bool) int {
	return i.pipeline().PurgeCache(key, prefix)
}
