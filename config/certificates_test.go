package config

import (
	"slices"
	"testing"

	"github.com/portcullis-waf/portcullis/tlsmgr"
)

// TestCertificates: the plan handed to tlsmgr.Build lists the sites with
// TLS, their sources, and the account and directory they share.
func TestCertificates(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(`listeners: [{address: ":8443", protocol: https}, {address: ":8080"}]
tls:
  policy: modern
  state_dir: /var/lib/p
  default_host: dev.test
  acme: {accept_terms: true, email: ops@shop.test, key_type: rsa-2048}
upstreams: [{name: a, targets: ["http://127.0.0.1:1"]}]
sites:
  - {name: shop, hosts: [shop.test, www.shop.test], tls: {certificate: acme}, routes: [{path: /, upstream: a}]}
  - {name: dev, hosts: [dev.test], tls: {certificate: self-signed}, routes: [{path: /, upstream: a}]}
  - {name: plain, hosts: ["*"], routes: [{path: /, upstream: a}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Certificates()
	if p.Policy != tlsmgr.Modern || p.StateDir != "/var/lib/p" || p.DefaultHost != "dev.test" {
		t.Errorf("plan %+v", p)
	}
	a := p.ACME
	if a.DirectoryURL != LetsEncrypt || !a.AcceptTOS || a.Email != "ops@shop.test" || a.KeyType != tlsmgr.RSA2048 || a.RootCAs != nil ||
		!slices.Equal(a.Challenges, []string{tlsmgr.ChallengeTLSALPN01, tlsmgr.ChallengeHTTP01}) {
		t.Errorf("acme %+v", a)
	}
	want := []tlsmgr.SitePlan{
		{Hosts: []string{"shop.test", "www.shop.test"}, Source: tlsmgr.SourceACME},
		{Hosts: []string{"dev.test"}, Source: tlsmgr.SourceSelfSigned},
	}
	if !slices.EqualFunc(p.Sites, want, func(a, b tlsmgr.SitePlan) bool {
		return slices.Equal(a.Hosts, b.Hosts) && a.Source == b.Source && a.CertFile == b.CertFile && a.KeyFile == b.KeyFile
	}) {
		t.Errorf("sites %+v, want %+v", p.Sites, want)
	}
}
