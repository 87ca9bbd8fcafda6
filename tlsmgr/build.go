package tlsmgr

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// SourceKind names where a site's certificate comes from.
type SourceKind string

// The certificate sources a site can choose (sites[].tls.certificate).
const (
	SourceACME       SourceKind = "acme"
	SourceFiles      SourceKind = "files"
	SourceSelfSigned SourceKind = "self-signed"
)

// Plan says which certificates to serve: every site with TLS and what they
// share. It is tlsmgr's own view of the configuration;
// config.Config.Certificates builds it from a validated file (config uses
// this package to check certificate files, so tlsmgr cannot read config).
type Plan struct {
	Policy Policy
	// DefaultHost answers a handshake for a name no site has; "" refuses it.
	DefaultHost string
	// StateDir holds the ACME account and cache (acme/) and the
	// self-signed certificates (self-signed/).
	StateDir string
	// ACME is the CA account shared by every ACME site. Build sets its
	// Hosts, CacheDir and Log.
	ACME  ACMEConfig
	Sites []SitePlan
}

// SitePlan is one site's certificate.
type SitePlan struct {
	Hosts  []string
	Source SourceKind
	// CertFile and KeyFile are the PEM files of a SourceFiles site.
	CertFile, KeyFile string
}

// fileCheckInterval is how often certificate files are checked for a
// replacement (renewed by certbot or a secret mount).
const fileCheckInterval = 10 * time.Second

// Build creates the certificate sources of plan: one ACME source for all
// ACME hosts (one account, one cache), one file source per files site, one
// self-signed certificate per self-signed site. It returns nil when no site
// has TLS. Call Start on the result to begin ordering, renewing and
// watching files.
func Build(plan Plan, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.Default()
	}
	hosts := map[string]Source{}
	var acmeHosts []string
	for _, s := range plan.Sites {
		switch s.Source {
		case SourceACME:
			acmeHosts = append(acmeHosts, s.Hosts...)
		case SourceFiles:
			src, err := NewFileSource(s.CertFile, s.KeyFile, s.Hosts, fileCheckInterval, log)
			if err != nil {
				return nil, err
			}
			for _, h := range s.Hosts {
				hosts[h] = src
			}
		case SourceSelfSigned:
			src, err := NewSelfSigned(filepath.Join(plan.StateDir, "self-signed"), s.Hosts)
			if err != nil {
				return nil, err
			}
			for _, h := range s.Hosts {
				hosts[h] = src
			}
		default:
			return nil, fmt.Errorf("hosts %v: unknown certificate source %q", s.Hosts, s.Source)
		}
	}
	if len(acmeHosts) > 0 {
		a := plan.ACME
		a.Hosts, a.CacheDir, a.Log = acmeHosts, filepath.Join(plan.StateDir, "acme"), log
		src, err := NewACME(a)
		if err != nil {
			return nil, err
		}
		for _, h := range acmeHosts {
			hosts[h] = src
		}
	}
	if len(hosts) == 0 {
		return nil, nil
	}
	return NewManager(plan.Policy, hosts, plan.DefaultHost, log)
}
