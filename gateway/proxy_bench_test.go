package gateway

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkCache compares, through the whole pipeline with the WAF on
// (CRS, paranoia 1, blocking), a request answered from the route's cache
// with one that misses and goes to a loopback upstream (#7). Every request,
// hit or miss, is inspected by the rule engine first; the difference is
// the upstream round trip and ReverseProxy.
func BenchmarkCache(b *testing.B) {
	body := make([]byte, 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Query().Get("nocache") == "" {
			w.Header().Set("Cache-Control", "max-age=3600")
		}
		_, _ = w.Write(body)
	}))
	defer up.Close()
	tp := startProxy(&testing.T{}, cacheConfig, up.URL)
	p := tp.server.Pipeline()
	run := func(b *testing.B, target func(i int) string, want string) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r := httptest.NewRequest("GET", target(i), nil)
			r.Host = "shop.example"
			r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
			r.Header.Set("Accept", "text/html")
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			if w.Code != 200 || w.Header().Get("X-Cache") != want {
				b.Fatalf("status %d X-Cache %q, want %s", w.Code, w.Header().Get("X-Cache"), want)
			}
		}
	}
	b.Run("hit", func(b *testing.B) {
		warm := httptest.NewRequest("GET", "/products?category=shoes&page=2", nil)
		warm.Host = "shop.example"
		warm.Header.Set("Accept", "text/html")
		p.ServeHTTP(httptest.NewRecorder(), warm)
		run(b, func(int) string { return "/products?category=shoes&page=2" }, "HIT")
	})
	b.Run("miss", func(b *testing.B) {
		// Uncacheable answers: every request goes upstream.
		run(b, func(i int) string { return "/products?category=shoes&nocache=" + strconv.Itoa(i) }, "MISS")
	})
}
