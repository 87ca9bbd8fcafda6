package waf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// BenchmarkStage measures one request through the waf stage under each
// profile (stock-crs: CRS, paranoia 1, blocking; portcullis: the default)
// with a discarding next handler; compare the pairs of one run.
func BenchmarkStage(b *testing.B) {
	for _, p := range []struct {
		name     string
		settings config.WAFSettings
	}{{"stock-crs", stockCRS()}, {"portcullis", config.DefaultWAF()}} {
		b.Run(p.name, func(b *testing.B) { benchStage(b, p.settings) })
	}
}

func benchStage(b *testing.B, s config.WAFSettings) {
	engine, err := Compile(s)
	if err != nil {
		b.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	stage := NewStage(engine, s, next, Recording{Redactor: audit.NewRedactor(nil, nil)})
	form, err := os.ReadFile("../bench/workloads/post-body.txt")
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name, method, target, body, ctype string
	}{
		{"GET", "GET", "/products?category=shoes&page=2&sort=price", "", ""},
		{"POST-4KB-form", "POST", "/contact", string(form), "application/x-www-form-urlencoded"},
		{"GET-attack", "GET", "/products?id=1%27%20UNION%20SELECT%20password%20FROM%20users--", "", ""},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
				r.Host = "shop.example"
				r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
				r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
				if c.ctype != "" {
					r.Header.Set("Content-Type", c.ctype)
					r.Header.Set("Content-Length", strconv.Itoa(len(c.body)))
				}
				e := &audit.Entry{ID: "bench", ClientIP: "192.0.2.1"}
				r = r.WithContext(audit.WithEntry(r.Context(), e))
				w := httptest.NewRecorder()
				stage.ServeHTTP(w, r)
				if attack := strings.HasSuffix(c.name, "attack"); (w.Code == 200) == attack || !attack && len(e.Rules) > 0 {
					b.Fatalf("status %d rules %v", w.Code, e.Rules)
				}
			}
		})
	}
}
