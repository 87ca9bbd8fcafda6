package waf

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/memtest"
)

// uploadSize is the body size of issue 8, proof item 4: "a 10 MB upload with
// body inspection on stays within the configured memory limit".
const uploadSize = 10 << 20

// maxAllocPerUpload bounds what one 10 MB upload may allocate in the stage.
// Today it is about 0.3 MiB with the CRS (the rules' own work, Coraza's
// 128 KiB in-memory body buffer and its multipart copy buffer), whatever the
// body's size: the body itself goes to the engine's temporary files and
// streams back from there. One whole-body copy anywhere adds 10 MiB.
const maxAllocPerUpload = 2 << 20

// maxHeapGrowth bounds the live heap after the uploads and a GC, against
// the live heap before them: a body kept past its request would add 10 MiB.
const maxHeapGrowth = 3 << 20

// binaryPattern is upload-like content: every byte value but NUL (binary
// content as an octet-stream is not what the CRS case is about).
var binaryPattern = func() []byte {
	b := make([]byte, 4093) // prime: the pattern does not line up with buffers
	for i := range b {
		b[i] = byte(1 + (i*7919+i*i*31)%255)
	}
	return b
}()

// upload is one kind of request body.
type upload struct {
	contentType string
	head, tail  string // around the pattern bytes (multipart framing)
}

func (u upload) reader() io.Reader {
	return io.MultiReader(strings.NewReader(u.head), memtest.Repeat(binaryPattern, uploadSize), strings.NewReader(u.tail))
}

func (u upload) size() int64 { return int64(len(u.head)+len(u.tail)) + uploadSize }

var (
	rawUpload       = upload{contentType: "application/octet-stream"}
	multipartUpload = upload{
		contentType: "multipart/form-data; boundary=portcullis-upload",
		head:        "--portcullis-upload\r\nContent-Disposition: form-data; name=\"file\"; filename=\"backup.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n",
		tail:        "\r\n--portcullis-upload--\r\n",
	}
)

// hashingUpstream records the length and SHA-256 of each body it receives,
// through a buffer of its own so that it allocates nothing per request.
type hashingUpstream struct {
	buf  []byte
	n    int64
	sum  [sha256.Size]byte
	hash interface {
		io.Writer
		Sum([]byte) []byte
		Reset()
	}
}

func newHashingUpstream() *hashingUpstream {
	return &hashingUpstream{buf: make([]byte, 64<<10), hash: sha256.New()}
}

func (u *hashingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.hash.Reset()
	u.n, _ = io.CopyBuffer(u.hash, struct{ io.Reader }{r.Body}, u.buf)
	u.hash.Sum(u.sum[:0])
}

// Issue 8, proof item 4: with body inspection on, a 10 MB upload that needs
// no parsing is never held whole in memory, reaches the upstream intact, and
// leaves nothing behind. (Bodies the engine parses into variables are
// another matter: see bench/FAST.md, "Bodies".)
func TestUploadsAreNotHeldInMemory(t *testing.T) {
	ownRulesOnly := stockCRS()
	ownRulesOnly.CRS = false // no body processor for octet-stream: the CRS forces URLENCODED (rule 901340)
	tests := []struct {
		name     string
		settings config.WAFSettings
		method   string
		upload   upload
		chunked  bool // no Content-Length
		refused  bool // 413 at request_body.no_files_limit, nothing forwarded
	}{
		{"octet-stream PUT, own rules", ownRulesOnly, "PUT", rawUpload, false, false},
		{"octet-stream POST chunked, own rules", ownRulesOnly, "POST", rawUpload, true, false},
		{"multipart file, CRS", stockCRS(), "POST", multipartUpload, false, false},
		{"multipart file chunked, CRS", stockCRS(), "POST", multipartUpload, true, false},
		// With the CRS an octet-stream body is parsed (rule 901340: whole
		// into REQUEST_BODY), so the parsed-body limit refuses it, by its
		// declared length or as it is read.
		{"octet-stream POST, CRS", stockCRS(), "POST", rawUpload, false, true},
		{"octet-stream POST chunked, CRS", stockCRS(), "POST", rawUpload, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine, err := Compile(tt.settings)
			if err != nil {
				t.Fatal(err)
			}
			defer engine.Close()
			up := newHashingUpstream()
			stage := NewStage(engine, tt.settings, up, Recording{Redactor: audit.NewRedactor(nil, nil)})
			want := sha256.New()
			if _, err := io.Copy(want, tt.upload.reader()); err != nil {
				t.Fatal(err)
			}
			wantSum := want.Sum(nil)
			send := func() {
				t.Helper()
				r := uploadRequest(tt.method, tt.upload, tt.chunked)
				w := httptest.NewRecorder()
				stage.ServeHTTP(w, r)
				e := audit.FromContext(r.Context())
				if tt.refused {
					if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(e.Reason, "request_body.no_files_limit (1048576 bytes)") {
						t.Fatalf("status %d, reason %q; want 413 at request_body.no_files_limit", w.Code, e.Reason)
					}
					return
				}
				if w.Code != http.StatusOK {
					t.Fatalf("status %d, rules %v, reason %q", w.Code, e.Rules, e.Reason)
				}
				if up.n != tt.upload.size() || !bytes.Equal(up.sum[:], wantSum) {
					t.Fatalf("upstream received %d bytes (sha256 %x), want %d (sha256 %x)", up.n, up.sum, tt.upload.size(), wantSum)
				}
			}
			send() // warm-up: pooled transactions, lazily built rule automata

			const uploads = 3
			perUpload, before, after := memtest.Measure(uploads, send)
			t.Logf("%d B allocated per %d-byte upload; live heap %d -> %d B", perUpload, tt.upload.size(), before, after)
			if perUpload > maxAllocPerUpload {
				t.Errorf("%d bytes allocated per %d MiB upload, want at most %d: is the body copied into memory?", perUpload, uploadSize>>20, maxAllocPerUpload)
			}
			if after > before+maxHeapGrowth {
				t.Errorf("live heap %d bytes after %d uploads, %d before: something keeps bodies", after, uploads, before)
			}
		})
	}
}

func uploadRequest(method string, u upload, chunked bool) *http.Request {
	r := httptest.NewRequest(method, "/files/backup.bin", u.reader())
	r.Host = "files.example"
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
	r.Header.Set("Accept", "*/*")
	r.Header.Set("Content-Type", u.contentType)
	if chunked {
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
	} else {
		r.ContentLength = u.size()
		r.Header.Set("Content-Length", strconv.FormatInt(u.size(), 10))
	}
	return r.WithContext(audit.WithEntry(r.Context(), &audit.Entry{ID: "upload", ClientIP: "192.0.2.1"}))
}

// The body is read into the engine through a pooled buffer (feedBody), not
// with ReadRequestBodyFrom; the limits must behave exactly as before, with
// and without a declared length: reject answers 413, inspect_partial
// inspects the start and forwards every byte, and bytes the engine did not
// take are forwarded, not lost.
func TestRequestBodyLimitsWhenFedInChunks(t *testing.T) {
	const limit = 1 << 10
	evil := config.RuleText{Origin: "test", Text: `SecRule ARGS "@contains evil" "id:10001,phase:2,deny,status:403,log"`}
	off := config.RuleText{Origin: "test", Text: `SecRule REQUEST_URI "@beginsWith /engine-off" "id:10002,phase:1,pass,nolog,ctl:ruleEngine=Off"`}
	settings := func(overLimit string) config.WAFSettings {
		s := stockCRS()
		s.CRS = false
		s.BodyLimit = limit
		s.BodyOverLimit = overLimit
		s.RulesBefore = []config.RuleText{off}
		s.RulesAfter = []config.RuleText{evil}
		return s
	}
	filler := "a=" + strings.Repeat("b", 100<<10) // past the limit, and past one read buffer
	exact := "a=" + strings.Repeat("b", limit-2)
	tests := []struct {
		name, overLimit, target, body string
		want                          int
		chunkedOnly                   bool // a declared length past the limit is refused unread
	}{
		{"reject: at the limit", config.OverLimitReject, "/", exact, 200, false},
		{"reject: over the limit", config.OverLimitReject, "/", exact + "b", 413, false},
		{"reject: far over the limit", config.OverLimitReject, "/", filler, 413, false},
		{"reject: attack within the limit", config.OverLimitReject, "/", "q=evil", 403, false},
		{"partial: over the limit passes whole", config.OverLimitPartial, "/", filler + "&q=evil", 200, false},
		{"partial: attack within the limit", config.OverLimitPartial, "/", "q=evil&" + filler, 403, false},
		{"engine turned off by a rule", config.OverLimitReject, "/engine-off", "q=evil&" + exact[:limit/2], 200, false},
		{"engine turned off by a rule, long body", config.OverLimitReject, "/engine-off", filler + "&q=evil", 200, true},
	}
	engines := map[string]*Engine{}
	for _, tt := range tests {
		for _, chunked := range []bool{false, true} {
			if tt.chunkedOnly && !chunked {
				continue
			}
			name := tt.name
			if chunked {
				name += ", chunked"
			}
			t.Run(name, func(t *testing.T) {
				s := settings(tt.overLimit)
				e := engines[tt.overLimit]
				if e == nil {
					var err error
					if e, err = Compile(s); err != nil {
						t.Fatal(err)
					}
					engines[tt.overLimit] = e
				}
				var got []byte
				next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = io.ReadAll(r.Body) })
				stage := NewStage(e, s, next, Recording{Redactor: audit.NewRedactor(nil, nil)})
				r := httptest.NewRequest("POST", tt.target, strings.NewReader(tt.body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if chunked {
					r.ContentLength = -1
					r.TransferEncoding = []string{"chunked"}
				}
				r = r.WithContext(audit.WithEntry(r.Context(), &audit.Entry{ID: "limit"}))
				w := httptest.NewRecorder()
				stage.ServeHTTP(w, r)
				if w.Code != tt.want {
					t.Fatalf("status %d, want %d", w.Code, tt.want)
				}
				if tt.want == 200 && string(got) != tt.body {
					t.Errorf("upstream received %d bytes, want the %d sent", len(got), len(tt.body))
				}
			})
		}
	}
	for _, e := range engines {
		_ = e.Close()
	}
}

// failingReader yields some bytes, then fails as a client that went away.
type failingReader struct{ sent bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.sent {
		return 0, errors.New("connection reset by peer")
	}
	f.sent = true
	return copy(p, "a=b&c="), nil
}

// A body the client fails to deliver is the client's error (400), told apart
// from an engine failure (500).
func TestClientBodyFailureIs400(t *testing.T) {
	s := stockCRS()
	s.CRS = false
	e, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	reached := false
	stage := NewStage(e, s, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }), Recording{Redactor: audit.NewRedactor(nil, nil)})
	r := httptest.NewRequest("POST", "/", &failingReader{})
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	entry := &audit.Entry{ID: "broken"}
	r = r.WithContext(audit.WithEntry(r.Context(), entry))
	w := httptest.NewRecorder()
	stage.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest || reached {
		t.Fatalf("status %d, upstream reached %v; want 400 and not reached", w.Code, reached)
	}
	if entry.Stage != audit.StageProtocol || !strings.Contains(entry.Reason, "connection reset by peer") {
		t.Errorf("record stage %q reason %q", entry.Stage, entry.Reason)
	}
}
