package gateway

import (
	"fmt"

	"github.com/portcullis-waf/portcullis/clientip"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/reputation"
	"github.com/portcullis-waf/portcullis/waf"
)

// Check does what Build does that can fail on a valid-looking configuration,
// without side effects: it compiles every rule set, validates every rate
// limit and the trusted proxies, parses inline and file lists and opens the
// GeoIP databases. It
// fetches no feed and does not touch the ban state file. It returns the
// number of distinct rule sets.
func Check(cfg *config.Config) (int, error) {
	if _, err := clientip.New(cfg.ClientIP.Trusted, cfg.ClientIP.Header); err != nil {
		return 0, &config.FieldError{File: cfg.Source, Path: "client_ip", Msg: err.Error()}
	}
	engines := waf.NewCache()
	defer engines.Close()
	for i, sc := range cfg.Sites {
		if _, err := newRouteLimits(sc.Name, "", sc.RateLimits, nil, nil, nil); err != nil {
			return 0, &config.FieldError{File: cfg.Source, Path: fmt.Sprintf("sites[%d].filters.rate_limits", i), Msg: err.Error()}
		}
		for j, rc := range sc.Routes {
			if _, err := engines.Get(rc.WAF); err != nil {
				return 0, &config.FieldError{File: cfg.Source, Path: fmt.Sprintf("sites[%d].routes[%d].waf", i, j), Msg: err.Error()}
			}
			if _, err := newRouteLimits(sc.Name, rc.Path, rc.RateLimits, nil, nil, nil); err != nil {
				return 0, &config.FieldError{File: cfg.Source, Path: fmt.Sprintf("sites[%d].routes[%d].rate_limits", i, j), Msg: err.Error()}
			}
		}
	}
	for i, lc := range cfg.Lists {
		if len(lc.Inline) == 0 && lc.File == "" {
			continue // a feed only: fetched at run time, not by check
		}
		l, err := reputation.NewList(reputation.Config{Name: lc.Name, Inline: lc.Inline, File: lc.File, Refresh: lc.Refresh, MaxShrink: lc.MaxShrink})
		if err != nil {
			return 0, &config.FieldError{File: cfg.Source, Path: fmt.Sprintf("reputation.lists[%d]", i), Msg: err.Error()}
		}
		l.Stop()
	}
	if cfg.GeoIP.CountryDB != "" || cfg.GeoIP.ASNDB != "" {
		g, err := reputation.OpenGeoIP(cfg.GeoIP.CountryDB, cfg.GeoIP.ASNDB, nil)
		if err != nil {
			return 0, &config.FieldError{File: cfg.Source, Path: "reputation.geoip", Msg: err.Error()}
		}
		g.Stop()
	}
	return engines.Len(), nil
}
