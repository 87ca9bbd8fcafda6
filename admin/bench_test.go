package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit/store"
)

// BenchmarkPages renders dashboard pages against a SQLite store of
// PORTCULLIS_ADMIN_BENCH_RECORDS records (default 1,000,000) spread over the last
// 24 hours, the worst case for the default overview range. Generating the
// store takes a while; PORTCULLIS_ADMIN_BENCH_DB keeps it between runs:
//
//	PORTCULLIS_ADMIN_BENCH_DB=/tmp/audit-1m.db go test ./admin -run '^$' -bench Pages -benchtime 20x
func BenchmarkPages(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("PORTCULLIS_ADMIN_BENCH_RECORDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	path := os.Getenv("PORTCULLIS_ADMIN_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "audit.db")
	}
	_, statErr := os.Stat(path)
	clock := &testClock{t: testNow}
	st, err := store.OpenSQLite(path, store.SQLiteOptions{Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	if statErr != nil {
		start := time.Now()
		const chunk = 50_000
		for i := 0; i < n; i += chunk {
			insertAll(b, st, genEntries(min(chunk, n-i), testNow, 24*time.Hour, uint64(i)+1))
		}
		if err := st.Analyze(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %d records in %s", n, time.Since(start).Round(time.Second))
	}
	// Serve at a time that is not on the hour, as in real use: the store
	// answers whole hours from its rollups and reads the records of the
	// partial hours at either end.
	clock.Add(-29*time.Minute - 17*time.Second)
	env := newEnv(b, func(o *Options) { o.Store = st; o.Now = clock.Now })
	s := env.login(b)

	for _, p := range []struct{ name, path string }{
		{"overview-24h", "/"},
		{"overview-7d", "/?range=7d"},
		{"overview-24h-host", "/?host=api.example.com"},
		{"overview-24h-rule", "/?rule=930120"},
		{"events", "/events"},
		{"events-rule", "/events?rule=933160"},
		{"events-ip", "/events?ip=203.0.113.1"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, p.path, nil)
				r.RemoteAddr, r.Host = "127.0.0.1:40000", "localhost:9090"
				for _, c := range s.cookies {
					r.AddCookie(c)
				}
				w := httptest.NewRecorder()
				env.srv.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: status %d: %s", p.path, w.Code, w.Body.String())
				}
			}
		})
	}
}
