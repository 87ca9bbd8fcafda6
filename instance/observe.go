package instance

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullis-waf/portcullis/alerts"
	"github.com/portcullis-waf/portcullis/gateway"
	"github.com/portcullis-waf/portcullis/metrics"
)

// alertsStopWait bounds sending the held-back ban summaries and queued
// messages at exit.
const alertsStopWait = 5 * time.Second

// newMetrics creates the Prometheus metrics when an admin listener will
// serve them. First of the parts that report to it, so that none of them
// ever sees it change.
func (i *Instance) newMetrics() error {
	if i.cfg.Admin != nil {
		i.metrics = metrics.New(i.build)
	}
	return nil
}

// newAlerter builds the alerter from the alerts block. It closes after the
// pipeline has retired, so a ban set by the last requests is still sent.
func (i *Instance) newAlerter() error {
	ac := i.cfg.Alerts
	if ac == nil {
		return nil
	}
	cfg := alerts.Config{
		AttackSpike: alerts.AttackSpike{BlocksPerMinute: ac.BlocksPerMinute},
		CertExpiry:  alerts.CertExpiry{Within: ac.CertExpiryWithin},
		FeedStale:   alerts.FeedStale{After: ac.FeedStaleAfter},
		MaxPerHour:  ac.MaxPerHour,
		Cooldown:    ac.Cooldown,
		Log:         i.log.With("component", "alerts"),
	}
	for _, w := range ac.Webhooks {
		cfg.Webhooks = append(cfg.Webhooks, alerts.Webhook{URL: w.URL, Format: w.Format, Headers: w.Headers})
	}
	a, err := alerts.New(cfg)
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	i.alerts = a
	return i.add(Component{Name: "alerts", Stop: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), alertsStopWait)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			// Not a failed shutdown: the records are what must be kept,
			// and an unreachable webhook must not change the exit status.
			i.log.Warn("alerts not all sent at exit", "err", err)
		}
		return nil
	}})
}

// observe connects the scrape-time metrics and the periodic alert checks
// to whatever pipeline is current: they run across reloads. It comes
// after the listeners, whose admission counts the metrics read.
func (i *Instance) observe() error {
	lists := func() map[string]gateway.ListStat { return i.pipeline().ListStats() }
	certs := func() map[string]time.Time {
		if i.certs != nil {
			return i.certs.Expiry()
		}
		return nil
	}
	if i.metrics != nil {
		i.metrics.SetSources(metrics.Sources{
			Lists: func() []metrics.ListStat {
				var out []metrics.ListStat
				for name, st := range lists() {
					out = append(out, metrics.ListStat{Name: name, Entries: st.Entries, LastSuccess: st.LastSuccess, Failures: st.Failures})
				}
				return out
			},
			Audit: func() metrics.AuditStat { return auditStat(i.records.Stats()) },
			Certs: certs,
			ActiveBans: func() int {
				if b := i.pipeline().Bans(); b != nil {
					return b.Len()
				}
				return 0
			},
			Alerts: func() metrics.AlertStat {
				if i.alerts == nil {
					return metrics.AlertStat{}
				}
				st := i.alerts.Stats()
				return metrics.AlertStat{Sent: st.Sent, Failed: st.Failed, Dropped: st.Dropped}
			},
			Inspections: func() metrics.InspectionStat {
				g := i.pipeline().Gate()
				inside, waiting := g.Busy()
				return metrics.InspectionStat{Slots: g.Slots(), Inside: inside, Waiting: waiting}
			},
			Connections: func() metrics.ConnectionStat {
				st := i.server.Limits().Stats()
				return metrics.ConnectionStat{Open: st.Open, Refused: st.Refused, Paused: st.Paused, Pauses: st.Pauses,
					DescriptorsInUse: st.OpenFiles, DescriptorLimit: st.MaxFiles, DescriptorReserve: st.Reserve}
			},
		})
	}
	if i.alerts != nil {
		i.alerts.Start(func() alerts.State {
			st := alerts.State{Certs: map[string]alerts.CertState{}, Feeds: map[string]alerts.FeedState{}}
			for host, exp := range certs() {
				st.Certs[host] = alerts.CertState{Expiry: exp}
			}
			if i.certs != nil {
				for host, msg := range i.certs.RenewErrors() {
					cs := st.Certs[host]
					cs.RenewError = msg
					st.Certs[host] = cs
				}
			}
			for name, ls := range lists() {
				if ls.Feed {
					st.Feeds[name] = alerts.FeedState{LastSuccess: ls.LastSuccess, LastError: ls.LastError}
				}
			}
			st.AuditDropped = i.records.Stats().Dropped()
			return st
		})
	}
	return nil
}
