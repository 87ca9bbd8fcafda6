package waf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/corazawaf/coraza/v3"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/rules"
	"github.com/portcullis-waf/portcullis/waf/fastop"
)

// stockAndFast compiles the default rule set twice: first with Coraza's own
// @rx (possible only while fastop is not registered in this process), then
// through Compile, which registers fastop.
var stockAndFast = sync.OnceValues(func() ([2]*Engine, error) {
	s := stockCRS()
	if fastop.Registered() {
		return [2]*Engine{}, errStockGone
	}
	heap0 := heapInUse()
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(rules.FS()).WithDirectives(rules.Text(rules.Build(s))))
	if err != nil {
		return [2]*Engine{}, err
	}
	stock := &Engine{Settings: s, Key: rules.Key(s), waf: w}
	heap1 := heapInUse()
	fast, err := Compile(s)
	heap2 := heapInUse()
	stockHeap, fastHeap = heap1-heap0, heap2-heap1
	return [2]*Engine{stock, fast}, err
})

// Heap in use after compiling each engine (the fast one also holds its own
// copy of every regexp, the atom automaton and the DFAs' first states).
var stockHeap, fastHeap uint64

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// cpuTime is the user and system CPU time this process has used, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

type stockGone struct{}

func (stockGone) Error() string {
	return "fastop was registered before the stock engine was compiled; run this benchmark on its own (-bench Engines)"
}

var errStockGone error = stockGone{}

// BenchmarkEngines measures the rule-engine stage with Coraza's stock @rx
// and with fastop, on the three workloads of bench/run.sh (default settings:
// CRS, paranoia 1, blocking), side by side in one run so that their ratio
// is meaningful on a noisy machine. bench/fast-ratio.sh runs it repeatedly
// and prints the ratios.
func BenchmarkEngines(b *testing.B) {
	engines, err := stockAndFast()
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		b.Logf("heap after compiling: stock %d MiB, fast %d MiB more; DFA state caches now %d KiB",
			stockHeap>>20, fastHeap>>20, fastop.DFAMemory()>>10)
	}()
	form, err := os.ReadFile("../bench/workloads/post-body.txt")
	if err != nil {
		b.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	cases := []struct {
		name, method, target, body, ctype string
		status                            int
	}{
		{"GET", "GET", "/products?category=shoes&page=2&sort=price", "", "", 200},
		{"POST-4KB-form", "POST", "/contact", string(form), "application/x-www-form-urlencoded", 200},
		{"attack-GET", "GET", "/?id=1%27%20OR%20%271%27%3D%271", "", "", 403},
	}
	n := 0
	for _, c := range cases {
		for i, name := range []string{"stock", "fast"} {
			stage := NewStage(engines[i], stockCRS(), next, Recording{Redactor: audit.NewRedactor(nil, nil)})
			serve := func(b *testing.B) {
				r := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
				r.Host = "shop.example"
				r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
				r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
				r.Header.Set("Accept-Language", "en-US,en;q=0.5")
				if c.ctype != "" {
					r.Header.Set("Content-Type", c.ctype)
					r.Header.Set("Content-Length", strconv.Itoa(len(c.body)))
				}
				// Unique IDs, as in production: fastop shares work between
				// the rules of one transaction, by its ID.
				n++
				e := &audit.Entry{ID: "bench-" + strconv.Itoa(n), ClientIP: "192.0.2.1"}
				r = r.WithContext(audit.WithEntry(r.Context(), e))
				w := httptest.NewRecorder()
				stage.ServeHTTP(w, r)
				if w.Code != c.status {
					b.Fatalf("status %d, want %d (rules %v)", w.Code, c.status, e.Rules)
				}
			}
			b.Run(c.name+"/"+name, func(b *testing.B) {
				// Warm up outside the timing: fastop builds its automata
				// lazily, as a running server has long done.
				for range 5 {
					serve(b)
				}
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					serve(b)
				}
				// CPU time of the whole process (GC included) per request:
				// on a shared machine it moves much less than ns/op.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
