// Command upstream is the origin server used by bench/run.sh.
//
// It answers every request with 200 and the same fixed 1 KiB HTML body, after
// reading and discarding the request body. It is deliberately trivial so that
// the benchmark measures the proxy in front of it, not the application. The
// body is plain English (no SQL, PHP or Java error strings) so that CRS
// response rules (RESPONSE-95x) never fire on it, and it is served as
// text/html so that WAFs configured with response body inspection for
// text/html actually inspect it, as they would on a real site.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// bodySize is the exact size of every response body; run.sh checks that
// proxied responses carry exactly this many bytes.
const bodySize = 1024

// body is built once at start-up: an HTML page padded to exactly bodySize.
var body = func() []byte {
	const head = "<!DOCTYPE html>\n<html><head><title>Portcullis bench upstream</title></head><body>\n<p>"
	const tail = "</p>\n</body></html>\n"
	const filler = "The quick brown fox jumps over the lazy dog near the quiet river bank. "
	var b strings.Builder
	b.WriteString(head)
	for b.Len()+len(tail) < bodySize {
		b.WriteString(filler)
	}
	s := b.String()[:bodySize-len(tail)] + tail
	return []byte(s)
}()

func handler(w http.ResponseWriter, r *http.Request) {
	// Drain the request body so that POST workloads cost the origin what a
	// real application would pay, and so keep-alive connections stay usable.
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()

	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "address to listen on")
	flag.Parse()

	srv := &http.Server{
		Addr:              *listen,
		Handler:           http.HandlerFunc(handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// The benchmark's own request logging would only add noise.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	log.Printf("upstream listening on %s, body %d bytes", *listen, len(body))
	if err := srv.ListenAndServe(); err != nil {
		log.Fatal(err)
	}
}
