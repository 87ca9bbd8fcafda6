package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkPipelineWAFOff is the plain-proxy path: gateway, stages with the
// WAF off, and ReverseProxy to a loopback upstream; the client side is a
// recorder, so only the proxy's own work and the upstream round trip count.
func BenchmarkPipelineWAFOff(b *testing.B) {
	body := make([]byte, 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write(body)
	}))
	defer up.Close()
	tp := startProxy(&testing.T{}, basicConfig+"waf:\n  mode: off\n", up.URL)
	p := tp.server.Pipeline()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest("GET", "/products?category=shoes&page=2&sort=price", nil)
		r.Host = "shop.example"
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
