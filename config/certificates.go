package config

import (
	"crypto/x509"

	"github.com/portcullis-waf/portcullis/tlsmgr"
)

// Certificates is c's certificate plan for tlsmgr.Build: every site with
// TLS, and the policy, state directory and ACME account they share. Only
// the translation lives here; which source serves which host is decided
// by tlsmgr.
func (c *Config) Certificates() tlsmgr.Plan {
	a := c.TLS.ACME
	var roots *x509.CertPool
	if a.CARootsPEM != nil {
		roots = x509.NewCertPool()
		roots.AppendCertsFromPEM(a.CARootsPEM)
	}
	plan := tlsmgr.Plan{
		Policy:      tlsmgr.Policy(c.TLS.Policy),
		DefaultHost: c.TLS.DefaultHost,
		StateDir:    c.TLS.StateDir,
		ACME: tlsmgr.ACMEConfig{
			DirectoryURL: a.Directory, Email: a.Email, AcceptTOS: a.AcceptTerms,
			EABKeyID: a.EABKeyID, EABHMACKey: a.EABHMACKey, RootCAs: roots,
			KeyType: tlsmgr.KeyType(a.KeyType), RenewBefore: a.RenewBefore, Challenges: a.Challenges,
		},
	}
	plan.StorageKey = a.StorageKey
	if d := a.DNS01; d != nil {
		plan.DNS01 = &tlsmgr.DNS01Plan{Provider: d.Provider, RFC2136: d.RFC2136, Exec: d.Exec,
			Nameservers: d.Nameservers, PropagationTimeout: d.PropagationTimeout}
	}
	for _, s := range c.Sites {
		if s.TLS == nil {
			continue
		}
		plan.Sites = append(plan.Sites, tlsmgr.SitePlan{
			Hosts: s.Hosts, Source: tlsmgr.SourceKind(s.TLS.Source), CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile,
		})
	}
	return plan
}
