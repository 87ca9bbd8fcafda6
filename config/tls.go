package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
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
		// Wildcard hosts are checked in resolveTLS, against tls.acme.dns01.
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
		if s.TLS.Source == CertACME {
			for _, h := range s.Hosts {
				if !strings.Contains(h, "*") || h == "*" {
					continue // "*" is refused above, with its own reason
				}
				switch rest, _ := strings.CutPrefix(h, "*."); {
				case t.ACME.DNS01 == nil:
					c.errorf(fmt.Sprintf("sites[%d].tls.certificate", i), "ACME can issue %q only through the DNS-01 challenge: configure tls.acme.dns01", h)
				case !strings.HasPrefix(h, "*.") || !strings.Contains(rest, ".") || strings.Contains(rest, "*"):
					c.errorf(fmt.Sprintf("sites[%d].tls.certificate", i), "ACME cannot issue %q: a wildcard is one leftmost label over a name of two or more labels, as in *.example.com", h)
				}
			}
		}
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
		if a.DNS01 != nil {
			out.Challenges = []string{tlsmgr.ChallengeDNS01}
		}
	}
	// Checked even when no site uses ACME yet: a secret that cannot be
	// read should be found by check, not by the first wildcard site.
	if a.DNS01 != nil {
		out.DNS01 = c.dns01(a.DNS01)
	}
	out.StorageKey = c.storageKey(a)
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
		switch ch {
		case tlsmgr.ChallengeHTTP01, tlsmgr.ChallengeTLSALPN01:
		case tlsmgr.ChallengeDNS01:
			if a.DNS01 == nil {
				c.errorf(fmt.Sprintf("tls.acme.challenges[%d]", i), "dns-01 needs tls.acme.dns01 (a DNS provider)")
			}
		default:
			c.errorf(fmt.Sprintf("tls.acme.challenges[%d]", i), "must be http-01, tls-alpn-01 or dns-01, got %q", ch)
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

// DNS01 configures the DNS-01 challenge: how the TXT records under
// _acme-challenge.<name> are published and where their arrival is checked.
type DNS01 struct {
	// Provider is rfc2136 (dynamic updates with TSIG: BIND, Knot DNS,
	// PowerDNS) or exec (a command of your own). Required.
	Provider string `yaml:"provider"`
	// RFC2136 configures provider rfc2136.
	RFC2136 *DNSRFC2136 `yaml:"rfc2136"`
	// Exec configures provider exec.
	Exec *DNSExec `yaml:"exec"`
	// Nameservers ("host" or "host:port") are asked for the record before
	// the CA is told to look. Default: the zone's authoritative servers,
	// found through the system resolver.
	Nameservers []string `yaml:"nameservers"`
	// PropagationTimeout bounds that wait. Default: 2m.
	PropagationTimeout *Duration `yaml:"propagation_timeout"`
}

// DNSRFC2136 configures TSIG-signed dynamic updates (RFC 2136).
type DNSRFC2136 struct {
	// Server is the primary that accepts updates, host or host:port
	// (default port 53). Required.
	Server string `yaml:"server"`
	// Zone to update. Default: found by asking the server for the SOA.
	Zone string `yaml:"zone"`
	// TSIGKey is the key's name as the server knows it. Required.
	TSIGKey string `yaml:"tsig_key"`
	// TSIGAlgorithm: hmac-sha256 (default), hmac-sha384 or hmac-sha512.
	TSIGAlgorithm string `yaml:"tsig_algorithm"`
	// TSIGSecretFile is a file holding the base64 secret, alone or as the
	// key statement tsig-keygen prints; TSIGSecretEnv names an environment
	// variable holding it. Exactly one; the secret never goes in this file.
	TSIGSecretFile string `yaml:"tsig_secret_file"`
	TSIGSecretEnv  string `yaml:"tsig_secret_env"`
	// TTL of the challenge records. Default: 60s.
	TTL *Duration `yaml:"ttl"`
}

// DNSExec configures a command that publishes and removes the records.
type DNSExec struct {
	// Command is the program and its first arguments (no shell); it gets
	// "present" or "cleanup", the record's name and its value appended.
	// Required.
	Command []string `yaml:"command"`
	// Timeout bounds each run. Default: 1m.
	Timeout *Duration `yaml:"timeout"`
	// PassEnv names environment variables handed to the command (API
	// tokens); nothing else of Portcullis's environment is, except PATH.
	PassEnv []string `yaml:"pass_env"`
}

// DNS01Settings is the resolved DNS-01 configuration, secrets loaded.
type DNS01Settings struct {
	Provider           string // rfc2136 or exec
	RFC2136            tlsmgr.RFC2136Config
	Exec               tlsmgr.ExecHookConfig
	Nameservers        []string
	PropagationTimeout time.Duration
}

// dns01 checks tls.acme.dns01 and loads the TSIG secret.
func (c *checker) dns01(d *DNS01) *DNS01Settings {
	const p = "tls.acme.dns01"
	out := &DNS01Settings{Provider: d.Provider, PropagationTimeout: durationOr(d.PropagationTimeout, 0)}
	if d.PropagationTimeout != nil && out.PropagationTimeout <= 0 {
		c.errorf(p+".propagation_timeout", "must be positive")
	}
	for i, ns := range d.Nameservers {
		if !validDNSServer(ns) {
			c.errorf(fmt.Sprintf("%s.nameservers[%d]", p, i), "must be host or host:port, got %q", ns)
		}
		out.Nameservers = append(out.Nameservers, withDNSPort(ns))
	}
	switch d.Provider {
	case "rfc2136":
		if d.Exec != nil {
			c.errorf(p+".exec", "is set, but provider is rfc2136")
		}
		if d.RFC2136 == nil {
			c.errorf(p+".rfc2136", "is required for provider rfc2136 (server, tsig_key and the secret)")
			return out
		}
		out.RFC2136 = c.rfc2136(d.RFC2136, p+".rfc2136")
	case "exec":
		if d.RFC2136 != nil {
			c.errorf(p+".rfc2136", "is set, but provider is exec")
		}
		if d.Exec == nil {
			c.errorf(p+".exec", "is required for provider exec (command)")
			return out
		}
		out.Exec = c.dnsExec(d.Exec, p+".exec")
	case "":
		c.errorf(p+".provider", "is required: rfc2136 or exec")
	default:
		c.errorf(p+".provider", "must be rfc2136 or exec, got %q", d.Provider)
	}
	return out
}

func (c *checker) rfc2136(r *DNSRFC2136, p string) tlsmgr.RFC2136Config {
	out := tlsmgr.RFC2136Config{Server: r.Server, Zone: r.Zone, TSIGKey: r.TSIGKey, TSIGAlgorithm: r.TSIGAlgorithm, TTL: durationOr(r.TTL, 0)}
	switch {
	case r.Server == "":
		c.errorf(p+".server", "is required (the primary that accepts updates)")
	case !validDNSServer(r.Server):
		c.errorf(p+".server", "must be host or host:port, got %q", r.Server)
	}
	if r.Zone != "" {
		if !validZoneName(r.Zone) {
			c.errorf(p+".zone", "%q is not a zone name", r.Zone)
		}
	}
	if r.TSIGKey == "" {
		c.errorf(p+".tsig_key", "is required: updates are only sent signed")
	}
	if a := strings.ToLower(r.TSIGAlgorithm); a != "" && a != "hmac-sha256" && a != "hmac-sha384" && a != "hmac-sha512" {
		c.errorf(p+".tsig_algorithm", "must be %s, got %q", tlsmgr.TSIGAlgorithms, r.TSIGAlgorithm)
	}
	if r.TTL != nil && out.TTL < time.Second {
		c.errorf(p+".ttl", "must be at least 1s")
	}
	secret, ok := c.secret(p, "tsig_secret", r.TSIGSecretFile, r.TSIGSecretEnv, true)
	if ok {
		secret = tsigSecretFrom(secret)
		if _, err := tlsmgr.ParseTSIGSecret(secret); err != nil {
			field := ".tsig_secret_file"
			if r.TSIGSecretEnv != "" {
				field = ".tsig_secret_env"
			}
			c.errorf(p+field, "%v", err)
		}
		out.TSIGSecret = secret
	}
	return out
}

// secret reads a secret given as <name>_file or <name>_env: exactly one of
// them when required, at most one otherwise. ok is false when none was set
// or it could not be read (reported).
func (c *checker) secret(p, name, file, env string, required bool) (string, bool) {
	switch {
	case file != "" && env != "":
		c.errorf(p, "set %s_file or %s_env, not both", name, name)
	case file != "":
		data, err := readLimited(c.relative(file))
		if err != nil {
			c.errorf(p+"."+name+"_file", "%v", err)
			return "", false
		}
		return string(data), true
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || strings.TrimSpace(v) == "" {
			c.errorf(p+"."+name+"_env", "environment variable %s is not set", env)
			return "", false
		}
		return v, true
	case required:
		c.errorf(p, "%s_file or %s_env is required (the secret never goes into this file)", name, name)
	}
	return "", false
}

// tsigSecretFrom accepts a bare base64 secret or the key statement that
// tsig-keygen and rndc-confgen print (key "name" { ...; secret "…"; };).
func tsigSecretFrom(text string) string {
	if _, rest, ok := strings.Cut(text, `secret "`); ok {
		if v, _, ok := strings.Cut(rest, `"`); ok {
			return v
		}
	}
	return strings.TrimSpace(text)
}

func (c *checker) dnsExec(e *DNSExec, p string) tlsmgr.ExecHookConfig {
	out := tlsmgr.ExecHookConfig{Command: slices.Clone(e.Command), Timeout: durationOr(e.Timeout, 0), PassEnv: e.PassEnv}
	if len(e.Command) == 0 || e.Command[0] == "" {
		c.errorf(p+".command", "is required: the program and its arguments, as a list")
	} else {
		if strings.Contains(out.Command[0], "/") {
			out.Command[0] = c.relative(out.Command[0])
		}
		if _, err := exec.LookPath(out.Command[0]); err != nil {
			c.errorf(p+".command", "%v", err)
		}
	}
	if e.Timeout != nil && out.Timeout <= 0 {
		c.errorf(p+".timeout", "must be positive")
	}
	for i, name := range e.PassEnv {
		if name == "" || strings.ContainsAny(name, "= ") {
			c.errorf(fmt.Sprintf("%s.pass_env[%d]", p, i), "%q is not an environment variable name", name)
		}
	}
	return out
}

// validZoneName accepts a DNS name of letters, digits, '-' and '_' labels,
// with or without the trailing dot.
func validZoneName(z string) bool {
	if _, ok := dns.IsDomainName(z); !ok {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(z, "."), ".") {
		if label == "" {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// validDNSServer accepts "host" or "host:port" (IPv6 in brackets with a
// port).
func validDNSServer(s string) bool {
	if s == "" || strings.ContainsAny(s, " /") {
		return false
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(port)
		return host != "" && err == nil && n > 0 && n < 65536
	}
	return !strings.Contains(s, ":") || net.ParseIP(s) != nil
}

func withDNSPort(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(s, "53")
}

// storageKey reads tls.acme.storage_key_file or storage_key_env.
func (c *checker) storageKey(a ACME) []byte {
	text, ok := c.secret("tls.acme", "storage_key", a.StorageKeyFile, a.StorageKeyEnv, false)
	if !ok {
		return nil
	}
	k, err := tlsmgr.ParseStorageKey([]byte(text))
	if err != nil {
		field := "tls.acme.storage_key_file"
		if a.StorageKeyEnv != "" {
			field = "tls.acme.storage_key_env"
		}
		c.errorf(field, "%v", err)
	}
	return k
}
