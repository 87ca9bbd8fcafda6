package tlsmgr

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"
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
	// Hosts, CacheDir, Log, DNS01 and Storage.
	ACME ACMEConfig
	// DNS01 is the DNS-01 provider's settings; nil: no DNS-01 (and no
	// wildcard ACME names).
	DNS01 *DNS01Plan
	// StorageKey (32 bytes) seals what ACME keeps in shared storage
	// (tls.acme.storage_key_file/env); required with Shared.
	StorageKey []byte
	// Shared, when set, makes ACME state shared by the cluster: challenge
	// answers, issuance locks, the account key and certificates go to
	// Redis, sealed with StorageKey, and the state directory keeps a local
	// copy. nil: the state directory alone, as for a single instance. The
	// caller builds it from the process's Redis connection (cluster.redis).
	Shared *SharedStorage
	Sites  []SitePlan
}

// DNS01Plan says which DNS provider publishes DNS-01 records and how
// propagation is checked.
type DNS01Plan struct {
	Provider           string // "rfc2136" or "exec"
	RFC2136            RFC2136Config
	Exec               ExecHookConfig
	Nameservers        []string
	PropagationTimeout time.Duration
}

// SharedStorage is the cluster's Redis, for ACME state.
type SharedStorage struct {
	Client redis.UniversalClient
	// Prefix starts the keys, e.g. "portcullis:<cluster name>:acme:".
	Prefix string
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
		if plan.DNS01 != nil {
			d, err := plan.DNS01.build()
			if err != nil {
				return nil, err
			}
			a.DNS01 = d
		}
		if sh := plan.Shared; sh != nil {
			if plan.StorageKey == nil {
				return nil, errors.New("tls.acme.storage_key_file or storage_key_env is required when certificates are shared through Redis: private keys are stored there encrypted")
			}
			store, err := NewRedisStorage(RedisOptions{Client: sh.Client, Prefix: sh.Prefix, Key: plan.StorageKey})
			if err != nil {
				return nil, err
			}
			a.Storage = store
		}
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

// build makes the configured DNS provider.
func (d *DNS01Plan) build() (*DNS01Config, error) {
	out := &DNS01Config{Nameservers: d.Nameservers, PropagationTimeout: d.PropagationTimeout}
	var err error
	switch d.Provider {
	case "rfc2136":
		out.Provider, err = NewRFC2136(d.RFC2136)
	case "exec":
		out.Provider, err = NewExecHook(d.Exec)
	default:
		err = fmt.Errorf("tls.acme.dns01.provider: unknown provider %q", d.Provider)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
