package gateway

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/tlsmgr"
	"github.com/redis/go-redis/v9"
)

// CertificateOptions are what BuildCertificatesWith needs beyond the
// configuration: process-wide clients built elsewhere.
type CertificateOptions struct {
	// Redis, when set, makes ACME state shared by the cluster: challenge
	// answers, issuance locks, the account key and certificates go to
	// Redis (sealed with tls.acme.storage_key_file/env, which is then
	// required), and the state directory keeps a local copy. nil: the
	// state directory alone, as for a single instance.
	Redis redis.UniversalClient
	// RedisPrefix starts the keys, e.g. "portcullis:<cluster name>:acme:".
	// Default "portcullis:acme:".
	RedisPrefix string
}

// BuildCertificates is BuildCertificatesWith for a single instance.
func BuildCertificates(cfg *config.Config, log *slog.Logger) (*tlsmgr.Manager, error) {
	return BuildCertificatesWith(cfg, log, CertificateOptions{})
}

// BuildCertificatesWith creates the certificate sources of every site with
// TLS: one ACME source for all acme hosts (one account, one cache), one file
// source per files site, one self-signed certificate per self-signed site.
// It returns nil when no site has TLS. Call Start on the result to begin
// ordering, renewing and watching files.
func BuildCertificatesWith(cfg *config.Config, log *slog.Logger, opts CertificateOptions) (*tlsmgr.Manager, error) {
	if log == nil {
		log = slog.Default()
	}
	hosts := map[string]tlsmgr.Source{}
	var acmeHosts []string
	for _, s := range cfg.Sites {
		if s.TLS == nil {
			continue
		}
		switch s.TLS.Source {
		case config.CertACME:
			acmeHosts = append(acmeHosts, s.Hosts...)
		case config.CertFiles:
			src, err := tlsmgr.NewFileSource(s.TLS.CertFile, s.TLS.KeyFile, s.Hosts, 10*time.Second, log)
			if err != nil {
				return nil, err
			}
			for _, h := range s.Hosts {
				hosts[h] = src
			}
		case config.CertSelfSigned:
			src, err := tlsmgr.NewSelfSigned(filepath.Join(cfg.TLS.StateDir, "self-signed"), s.Hosts)
			if err != nil {
				return nil, err
			}
			for _, h := range s.Hosts {
				hosts[h] = src
			}
		}
	}
	if len(acmeHosts) > 0 {
		a := cfg.TLS.ACME
		var roots *x509.CertPool
		if a.CARootsPEM != nil {
			roots = x509.NewCertPool()
			roots.AppendCertsFromPEM(a.CARootsPEM)
		}
		ac := tlsmgr.ACMEConfig{
			DirectoryURL: a.Directory, Email: a.Email, AcceptTOS: a.AcceptTerms,
			EABKeyID: a.EABKeyID, EABHMACKey: a.EABHMACKey, RootCAs: roots,
			KeyType: tlsmgr.KeyType(a.KeyType), RenewBefore: a.RenewBefore,
			CacheDir: filepath.Join(cfg.TLS.StateDir, "acme"), Challenges: a.Challenges,
			Hosts: acmeHosts, Log: log,
		}
		if a.DNS01 != nil {
			d, err := buildDNS01(a.DNS01)
			if err != nil {
				return nil, err
			}
			ac.DNS01 = d
		}
		if opts.Redis != nil {
			if a.StorageKey == nil {
				return nil, errors.New("tls.acme.storage_key_file or storage_key_env is required when certificates are shared through Redis: private keys are stored there encrypted")
			}
			store, err := tlsmgr.NewRedisStorage(tlsmgr.RedisOptions{Client: opts.Redis, Prefix: opts.RedisPrefix, Key: a.StorageKey})
			if err != nil {
				return nil, err
			}
			ac.Storage = store
		}
		src, err := tlsmgr.NewACME(ac)
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
	return tlsmgr.NewManager(tlsmgr.Policy(cfg.TLS.Policy), hosts, cfg.TLS.DefaultHost, log)
}

// buildDNS01 makes the configured DNS provider.
func buildDNS01(d *config.DNS01Settings) (*tlsmgr.DNS01Config, error) {
	out := &tlsmgr.DNS01Config{Nameservers: d.Nameservers, PropagationTimeout: d.PropagationTimeout}
	var err error
	switch d.Provider {
	case "rfc2136":
		out.Provider, err = tlsmgr.NewRFC2136(d.RFC2136)
	case "exec":
		out.Provider, err = tlsmgr.NewExecHook(d.Exec)
	default:
		err = fmt.Errorf("tls.acme.dns01.provider: unknown provider %q", d.Provider)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// httpsPort is the port of the first https listener, for redirects; "" when
// it is 443 (or there is none); "0" until an ephemeral port is bound (tests).
func httpsPort(cfg *config.Config) string {
	for _, l := range cfg.Listeners {
		if l.HTTPS {
			if _, port, err := net.SplitHostPort(l.Address); err == nil && port != "443" {
				return port
			}
			return ""
		}
	}
	return ""
}

// useBoundHTTPSPort replaces an ephemeral ("0") https port by the port that
// was actually bound, before the pipeline serves anything.
func (p *Pipeline) useBoundHTTPSPort(addr net.Addr) {
	if p.https != "0" {
		return
	}
	if _, port, err := net.SplitHostPort(addr.String()); err == nil {
		p.https = port
	}
}
