package gateway

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/internal/upstreamtest"
	"github.com/portcullis-waf/portcullis/proxy"
)

// newBackend is a loopback upstream that can be killed and restarted on
// the same address (the proxy's own tests use the same one).
func newBackend(t *testing.T, name string) *upstreamtest.Backend {
	t.Helper()
	return upstreamtest.New(t, name)
}

// pool returns the running pipeline's pool for upstream name.
func (tp *testProxy) pool(name string) *proxy.Pool {
	return tp.server.Pipeline().pools[name]
}

// get sends a GET through the proxy with the test host name and returns
// status and body; transport errors are reported as status 0.
func get(client *http.Client, url string, header http.Header) (int, string) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	req.Host = "portcullis.test"
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// poolConfig is a one-site configuration with upstream "app" over targets.
func poolConfig(upstream string, targets ...*upstreamtest.Backend) string {
	var urls []string
	for _, b := range targets {
		urls = append(urls, `"`+b.URL()+`"`)
	}
	text := strings.ReplaceAll(upstream, "TARGETS", "["+strings.Join(urls, ", ")+"]")
	return "upstreams:\n" + text + `
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
`
}
