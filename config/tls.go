package config

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/tlsmgr"
)

// DefaultStateDir keeps ACME and self-signed material, bans and the audit
// database when tls.state_dir is unset and StateDirEnv is not set: beside
// the configuration file (in the working directory without one).
const DefaultStateDir = "portcullis-state"

// StateDirEnv names the environment variable that moves the defaults of
// what Portcullis writes (tls.state_dir itself, and the audit file into
// it) out of the configuration file's directory, which is often read-only
// (a container's config mount, /etc under systemd's ProtectSystem). It never
// overrides a path the file sets. The container image sets it.
const StateDirEnv = "PORTCULLIS_STATE_DIR"

// stateDirFromEnv returns StateDirEnv as an absolute path, or "".
var stateDirFromEnv = func() string {
	d := os.Getenv(StateDirEnv)
	if d == "" {
		return ""
	}
	if abs, err := filepath.Abs(d); err == nil {
		return abs
	}
	return d
}

// siteTLS resolves and checks one site's tls block. Certificate files are
// loaded now, so `portcullis check` reports a missing file, an unreadable
// key, a key that does not match or a host the certificate does not cover.
func (c *checker) siteTLS(t *SiteTLS, hosts []string, p string) *SiteTLSConfig {
	out := &SiteTLSConfig{Source: t.Certificate, RedirectHTTP: t.RedirectHTTP == nil || *t.RedirectHTTP}
	for _, h := range hosts {
		if h == "*" {
			c.errorf(p, "a site for any host (\"*\") cannot have a certificate; name its hosts")
			return out
		}
	}
	switch t.Certificate {
	case CertACME:
		for _, h := range hosts {
			if strings.HasPrefix(h, "*.") {
				c.errorf(p+".certificate", "ACME cannot issue %q: wildcard names need the DNS-01 challenge, which Portcullis does not answer; use files", h)
			}
		}
	case CertSelfSigned:
	case CertFiles:
		if t.CertFile == "" || t.KeyFile == "" {
			c.errorf(p, "certificate: files needs cert_file and key_file")
			break
		}
		out.CertFile, out.KeyFile = c.relative(t.CertFile), c.relative(t.KeyFile)
		certPEM, err := readLimited(out.CertFile)
		if err != nil {
			c.errorf(p+".cert_file", "%v", err)
			break
		}
		keyPEM, err := readLimited(out.KeyFile)
		if err != nil {
			c.errorf(p+".key_file", "%v", err)
			break
		}
		if _, err := tlsmgr.ParseKeyPair(certPEM, keyPEM, hosts, time.Now()); err != nil {
			c.errorf(p+".cert_file", "%v", err)
		}
	case "":
		c.errorf(p+".certificate", "is required: acme, files or self-signed")
	default:
		c.errorf(p+".certificate", "must be acme, files or self-signed, got %q", t.Certificate)
	}
	if h := t.HSTS; h != nil {
		switch {
		case h.MaxAge == nil:
			c.errorf(p+".hsts.max_age", "is required (e.g. 8760h)")
		case h.Preload && (!h.IncludeSubdomains || time.Duration(*h.MaxAge) < 365*24*time.Hour):
			c.errorf(p+".hsts.preload", "needs include_subdomains and a max_age of at least 8760h")
		default:
			v := "max-age=" + strconv.FormatInt(int64(time.Duration(*h.MaxAge)/time.Second), 10)
			if h.IncludeSubdomains {
				v += "; includeSubDomains"
			}
			if h.Preload {
				v += "; preload"
			}
			out.HSTS = v
		}
	}
	return out
}

// relative resolves a path relative to the configuration file's directory
// (the working directory without a file). This is the one rule for every
// path in the configuration, so the server (started from anywhere by an
// init system) and the CLI (started from anywhere by a person) read and
// write the same files.
func (c *checker) relative(path string) string {
	if filepath.IsAbs(path) || c.file == "" {
		return path
	}
	return filepath.Join(filepath.Dir(c.file), path)
}

// resolveTLS checks the global tls block against the sites and listeners.
func (c *checker) resolveTLS(f *File, cfg *Config) {
	t := f.TLS
	// Relative to the config file, like every other path, so the server
	// (started from /) and the CLI (started anywhere) find the same files.
	cfg.TLS = TLSConfig{Policy: string(tlsmgr.Intermediate), StateDir: c.relative(DefaultStateDir), DefaultHost: strings.ToLower(t.DefaultHost)}
	if env := stateDirFromEnv(); env != "" {
		cfg.TLS.StateDir = env
	}
	switch t.Policy {
	case "", string(tlsmgr.Intermediate):
	case string(tlsmgr.Modern):
		cfg.TLS.Policy = t.Policy
	default:
		c.errorf("tls.policy", "must be intermediate or modern, got %q", t.Policy)
	}
	if t.StateDir != "" {
		cfg.TLS.StateDir = c.relative(t.StateDir)
	}
	var tlsHosts []string
	acmeUsed := false
	for i, s := range cfg.Sites {
		if s.TLS == nil {
			continue
		}
		tlsHosts = append(tlsHosts, s.Hosts...)
		acmeUsed = acmeUsed || s.TLS.Source == CertACME
		if !hasListener(cfg.Listeners, true) {
			c.errorf(fmt.Sprintf("sites[%d].tls", i), "no https listener serves this site (add a listener with protocol: https)")
		}
	}
	if hasListener(cfg.Listeners, true) && len(tlsHosts) == 0 {
		c.errorf("listeners", "an https listener needs at least one site with tls")
	}
	if cfg.TLS.DefaultHost != "" && !contains(tlsHosts, cfg.TLS.DefaultHost) {
		c.errorf("tls.default_host", "%q is not a host of a site with tls", t.DefaultHost)
	}
	cfg.TLS.ACME = c.acme(t.ACME, acmeUsed)
}

func (c *checker) acme(a ACME, used bool) ACMESettings {
	out := ACMESettings{
		Directory: a.Directory, Email: a.Email, AcceptTerms: a.AcceptTerms,
		EABKeyID: a.EABKeyID, EABHMACKey: a.EABHMACKey, KeyType: a.KeyType,
		RenewBefore: durationOr(a.RenewBefore, 0), Challenges: a.Challenges,
	}
	if out.Directory == "" {
		out.Directory = LetsEncrypt
	}
	if out.KeyType == "" {
		out.KeyType = string(tlsmgr.ECDSAP256)
	}
	if len(out.Challenges) == 0 {
		out.Challenges = []string{tlsmgr.ChallengeTLSALPN01, tlsmgr.ChallengeHTTP01}
	}
	if !used {
		return out
	}
	if _, err := parseHTTPURL(out.Directory, "https"); err != nil {
		c.errorf("tls.acme.directory", "%v", err)
	}
	if !out.AcceptTerms {
		c.errorf("tls.acme.accept_terms", "must be true to register with the CA (it accepts the CA's terms of service)")
	}
	if out.KeyType != string(tlsmgr.ECDSAP256) && out.KeyType != string(tlsmgr.RSA2048) {
		c.errorf("tls.acme.key_type", "must be ecdsa-p256 or rsa-2048, got %q", out.KeyType)
	}
	for i, ch := range out.Challenges {
		if ch != tlsmgr.ChallengeHTTP01 && ch != tlsmgr.ChallengeTLSALPN01 {
			c.errorf(fmt.Sprintf("tls.acme.challenges[%d]", i), "must be http-01 or tls-alpn-01, got %q", ch)
		}
	}
	if (out.EABKeyID == "") != (out.EABHMACKey == "") {
		c.errorf("tls.acme", "eab_key_id and eab_hmac_key go together")
	}
	// CAs known to refuse accounts without these; others say so at run time.
	if strings.Contains(out.Directory, "zerossl.com") {
		if out.Email == "" {
			c.errorf("tls.acme.email", "ZeroSSL requires an account e-mail address")
		}
		if out.EABKeyID == "" {
			c.errorf("tls.acme.eab_key_id", "ZeroSSL requires External Account Binding credentials (from its dashboard)")
		}
	}
	if a.CARoots != "" {
		path := c.relative(a.CARoots)
		data, err := readLimited(path)
		if err != nil {
			c.errorf("tls.acme.ca_roots", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(data) {
			c.errorf("tls.acme.ca_roots", "%s contains no PEM certificate", path)
		} else {
			out.CARootsPEM = data
		}
	}
	return out
}

func hasListener(ls []ListenerConfig, https bool) bool {
	for _, l := range ls {
		if l.HTTPS == https {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
