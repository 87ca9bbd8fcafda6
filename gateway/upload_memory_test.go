package gateway

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/internal/memtest"
)

// uploadConfig inspects multipart uploads with the CRS under / and raw
// octet-stream bodies with the operator's rules only under /raw/ (the CRS
// would parse those as a form, see bench/FAST.md, "Bodies").
const uploadConfig = `
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /raw/
        upstream: app
        waf:
          crs: false
      - path: /
        upstream: app
`

// Issue 8, proof item 4, end to end: 10 MB uploads through the whole pipeline
// (filters, rule engine with body inspection on, proxy) reach the upstream
// byte for byte, cost the process far less than their size, and leave the
// heap where it was. The client, the proxy and the upstream share this
// process, so every allocation of all three counts.
func TestUploadsThroughThePipeline(t *testing.T) {
	const size = 10 << 20
	pattern := make([]byte, 4093)
	for i := range pattern {
		pattern[i] = byte(1 + (i*7919+i*i*31)%255)
	}
	const boundary = "portcullis-upload"
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"backup.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--" + boundary + "--\r\n"

	var mu sync.Mutex
	var gotN int64
	var gotSum [sha256.Size]byte
	upBuf := make([]byte, 64<<10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		h := sha256.New()
		gotN, _ = io.CopyBuffer(h, struct{ io.Reader }{r.Body}, upBuf)
		h.Sum(gotSum[:0])
	}))
	defer up.Close()
	tp := startProxy(t, uploadConfig, up.URL)
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	tests := []struct {
		name, method, path, contentType string
		head, tail                      string
		chunked                         bool
	}{
		{"octet-stream PUT, own rules", "PUT", "/raw/backup.bin", "application/octet-stream", "", "", false},
		{"octet-stream POST chunked, own rules", "POST", "/raw/backup.bin", "application/octet-stream", "", "", true},
		{"multipart file, CRS", "POST", "/upload", "multipart/form-data; boundary=" + boundary, head, tail, false},
		{"multipart file chunked, CRS", "POST", "/upload", "multipart/form-data; boundary=" + boundary, head, tail, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := func() io.Reader {
				return io.MultiReader(strings.NewReader(tt.head), memtest.Repeat(pattern, size), strings.NewReader(tt.tail))
			}
			want := sha256.New()
			wantN, _ := io.Copy(want, body())
			wantSum := want.Sum(nil)
			send := func() {
				t.Helper()
				rd := body()
				if !tt.chunked {
					rd = io.LimitReader(rd, wantN) // a type net/http cannot size
				}
				req, err := http.NewRequest(tt.method, tp.URL+tt.path, rd)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = "files.portcullis.test"
				req.Header.Set("Content-Type", tt.contentType)
				req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
				req.Header.Set("Accept", "*/*")
				if !tt.chunked {
					req.ContentLength = wantN
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					e := tp.entryFor(t, resp.Header.Get("X-Request-Id"))
					t.Fatalf("status %d, rules %v, reason %q", resp.StatusCode, ruleIDs(e), e.Reason)
				}
				mu.Lock()
				defer mu.Unlock()
				if gotN != wantN || !bytes.Equal(gotSum[:], wantSum) {
					t.Fatalf("upstream received %d bytes (sha256 %x), want %d (sha256 %x)", gotN, gotSum, wantN, wantSum)
				}
			}
			send() // warm-up: connections, pooled transactions, rule automata

			const uploads = 3
			perUpload, before, after := memtest.Measure(uploads, send)
			t.Logf("%d B allocated per %d-byte upload (client, proxy and upstream); live heap %d -> %d B", perUpload, wantN, before, after)
			// One whole-body copy anywhere on the way adds 10 MiB.
			if perUpload > 2<<20 && !raceEnabled {
				t.Errorf("%d bytes allocated per 10 MiB upload, want at most 2 MiB: is the body copied into memory?", perUpload)
			}
			if after > before+3<<20 {
				t.Errorf("live heap %d bytes after %d uploads, %d before: something keeps bodies", after, uploads, before)
			}
		})
	}
}
