package instance

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"testing"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/tlsmgr"
)

// pendingSource is a certificate source whose first certificate has not
// been issued yet, as an ACME order in progress.
type pendingSource struct{}

func (pendingSource) Certificate(context.Context, string) (*tls.Certificate, error) {
	return nil, errors.New("no certificate yet")
}
func (pendingSource) Start() {}
func (pendingSource) Stop()  {}

// TestCertificateReadinessCountsWildcards: a wildcard name is ordered over
// ACME DNS-01 like any other, so the instance is not ready until it has a
// certificate, and ready once it has one.
func TestCertificateReadinessCountsWildcards(t *testing.T) {
	issued, err := tlsmgr.NewSelfSigned(t.TempDir(), []string{"*.example.com", "a.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		sources map[string]tlsmgr.Source
		want    []string
	}{
		{"wildcard pending", map[string]tlsmgr.Source{"*.example.com": pendingSource{}, "a.example.com": issued},
			[]string{"hosts without a certificate: *.example.com"}},
		{"both issued", map[string]tlsmgr.Source{"*.example.com": issued, "a.example.com": issued}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tlsmgr.NewManager("", tt.sources, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			i := &Instance{certs: m, cfg: &config.Config{Sites: []*config.SiteConfig{{
				Name:  "s",
				Hosts: []string{"*.example.com", "a.example.com"},
				TLS:   &config.SiteTLSConfig{},
			}}}}
			if got := i.certificateReadiness().NotReady; !slices.Equal(got, tt.want) {
				t.Errorf("not ready = %q, want %q", got, tt.want)
			}
		})
	}
}
