package instance

import (
	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/crowdsec"
)

// crowdsecSignals returns the audit sink that publishes blocks to the
// CrowdSec Local API (crowdsec.signals), or nil without one. The audit
// writer owns it: its Close sends what is queued.
func (i *Instance) crowdsecSignals() (audit.Sink, error) {
	cs := i.cfg.CrowdSec
	if cs == nil || cs.Signals == nil {
		return nil, nil
	}
	sc := cs.Signals
	i.warnPlainLAPI()
	return crowdsec.NewSignals(crowdsec.SignalsOptions{
		URL: cs.LAPIURL, MachineID: sc.MachineID, Password: sc.Password.Reveal(), FlushInterval: sc.FlushInterval,
		Timeout: cs.Timeout, BatchSize: sc.BatchSize, QueueSize: sc.QueueSize, Remediation: sc.Remediation,
		Log: i.log.With("component", "crowdsec"),
	})
}

// startBouncer mirrors the Local API's decisions into the ban table
// (crowdsec.bouncer). The table lives as long as the process (it survives
// reloads), so the bouncer does too.
func (i *Instance) startBouncer() error {
	cs := i.cfg.CrowdSec
	if cs == nil || cs.Bouncer == nil {
		return nil
	}
	store := i.first.Bans()
	if store == nil { // config rejects a bouncer without bans; belt and braces
		i.log.Warn("crowdsec.bouncer needs bans.enabled; decisions are not applied")
		return nil
	}
	i.warnPlainLAPI()
	b, err := crowdsec.NewBouncer(crowdsec.BouncerOptions{
		URL: cs.LAPIURL, APIKey: cs.Bouncer.APIKey.Reveal(), Interval: cs.Bouncer.PollInterval, Timeout: cs.Timeout,
		Store: store, Log: i.log.With("component", "crowdsec"),
	})
	if err != nil {
		return err
	}
	return i.add(Component{
		Name:  "crowdsec bouncer",
		Start: func() error { b.Start(); return nil },
		Stop:  func() error { b.Close(); return nil },
		Ready: func() admin.Readiness {
			if st := b.Stats(); st.LastError != "" {
				// Degraded, not unready: every other defence still works,
				// and failing every instance at once would be an outage.
				return admin.Readiness{Degraded: []string{"CrowdSec decisions are stale: " + st.LastError}}
			}
			return admin.Readiness{}
		},
	})
}

// warnPlainLAPI warns once when secrets go to a remote LAPI in clear text.
func (i *Instance) warnPlainLAPI() {
	cs := i.cfg.CrowdSec
	if len(cs.LAPIURL) > 7 && cs.LAPIURL[:7] == "http://" && !cs.Loopback() {
		i.lapiWarn.Do(func() {
			i.log.Warn("crowdsec.lapi_url is plain http to another machine: the bouncer key and machine password cross the network in clear text; use https", "lapi", cs.LAPIURL)
		})
	}
}
