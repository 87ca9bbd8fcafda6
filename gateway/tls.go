package gateway

import (
	"net"

	"github.com/portcullis-waf/portcullis/config"
)

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
