package gateway

import (
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/waf"
)

// Check builds cfg's stages as Build does, without side effects (see
// checking): it compiles every rule set, validates every rate limit and the
// trusted proxies, parses inline and file lists and opens the GeoIP
// databases. It fetches no feed and does not touch the ban state file. It
// returns the number of distinct rule sets, or every problem found
// (config.Errors), not only the first.
func Check(cfg *config.Config) (int, error) {
	engines := waf.NewCache()
	defer engines.Close()
	st := buildStages(cfg, engines, checking, buildOptions{})
	st.close()
	if err := st.err(); err != nil {
		return 0, err
	}
	return engines.Len(), nil
}
