package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Item is one corpus request: a raw HTTP/1.1 request and its labels. Items
// are stored as JSON lines.
type Item struct {
	// ID is stable across runs of the same generator version: the corpus,
	// the generator and a sequence number, e.g. "b-search-000123".
	ID string `json:"id"`
	// Set is "benign" or "attack".
	Set string `json:"set"`
	// Kind is the benign kind (search, forum_code, browser_beacon, ...).
	Kind string `json:"kind,omitempty"`
	// Class is the attack class, in waf/detect's strings (sqli, xss, ...).
	Class string `json:"class,omitempty"`
	// Placement is where the attack value sits: query, arg_name, path,
	// cookie, header, form, json, xml, multipart, file_name, body.
	Placement string `json:"placement,omitempty"`
	// Encoding is the decoding an application applies before the value is
	// an attack ("none", "url", "double_url", "base64", "jwt", ...), or an
	// obfuscation of the payload itself ("case", "comment",
	// "quote_split", ...); several are joined with "+".
	Encoding string `json:"encoding,omitempty"`
	// Evasion marks generated evasions: payloads moved to unusual
	// placements, encoded or obfuscated by our own generators.
	Evasion bool `json:"evasion,omitempty"`
	// Source says where the item came from: "chromium", "gen",
	// "debian:manpages-de", "wfuzz:Injections/SQL.txt",
	// "sqlmap:boolean_blind.xml", "crs:942100/3".
	Source string `json:"source"`
	// Payload is the attack value as the application sees it after the
	// decoding in Encoding (for listings; not sent as such).
	Payload string `json:"payload,omitempty"`

	Method  string      `json:"method"`
	Target  string      `json:"target"`
	Headers [][2]string `json:"headers"`
	// Body is the request body; BodyB64 says it is base64 (binary bodies).
	Body    string `json:"body,omitempty"`
	BodyB64 bool   `json:"body_b64,omitempty"`
	// Chunked sends the body with Transfer-Encoding: chunked and no
	// Content-Length, as fetch() with a stream body or curl -T - does.
	Chunked bool `json:"chunked,omitempty"`
}

// Sets.
const (
	setBenign = "benign"
	setAttack = "attack"
)

// BodyBytes returns the decoded body.
func (it *Item) BodyBytes() ([]byte, error) {
	if !it.BodyB64 {
		return []byte(it.Body), nil
	}
	b, err := base64.StdEncoding.DecodeString(it.Body)
	if err != nil {
		return nil, fmt.Errorf("item %s: body: %w", it.ID, err)
	}
	return b, nil
}

// SetBody stores b, as base64 when it is not valid UTF-8 text.
func (it *Item) SetBody(b []byte) {
	if isText(b) {
		it.Body, it.BodyB64 = string(b), false
		return
	}
	it.Body, it.BodyB64 = base64.StdEncoding.EncodeToString(b), true
}

func isText(b []byte) bool {
	s := string(b)
	for i, r := range s {
		if r == 0xFFFD && !strings.HasPrefix(s[i:], "\uFFFD") {
			return false
		}
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}

// Header returns the first value of the named header.
func (it *Item) Header(name string) string {
	for _, h := range it.Headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// Raw returns the request as it goes on the wire (HTTP/1.1). Content-Length
// is computed here, so generators never get it wrong; Chunked items are
// framed with Transfer-Encoding: chunked instead.
func (it *Item) Raw() ([]byte, error) {
	body, err := it.BodyBytes()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", it.Method, it.Target)
	for _, h := range it.Headers {
		if strings.EqualFold(h[0], "Content-Length") || strings.EqualFold(h[0], "Transfer-Encoding") {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	switch {
	case it.Chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 4096)
			fmt.Fprintf(&b, "%x\r\n", n)
			b.Write(rest[:n])
			b.WriteString("\r\n")
			rest = rest[n:]
		}
		b.WriteString("0\r\n\r\n")
	case len(body) > 0 || it.Method == http.MethodPost || it.Method == http.MethodPut || it.Method == http.MethodPatch:
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
		b.Write(body)
	default:
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}

// Request parses Raw with net/http's own request reader, as the server
// would.
func (it *Item) Request() (*http.Request, error) {
	raw, err := it.Raw()
	if err != nil {
		return nil, err
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fmt.Errorf("item %s: parse request: %w", it.ID, err)
	}
	return r, nil
}

// splitSalt keys the split of corpus v2. Corpus v1 used
// "portcullis-detection-split-v1"; its held-out part was looked at while
// tuning, so v2 draws a new split and sends every request of v1 to the
// tuning part (seenBefore).
const splitSalt = "portcullis-detection-split-v2"

// Heldout reports whether the item belongs to the held-out part: a request
// that was not in corpus v1 (neither its content nor, for an attack, its
// payload in the same placement and encoding; see seen.go) and that a
// hash of its content puts there. The hash covers the request's content,
// not its id or labels, so that the same request generated twice lands
// in the same part and the split cannot be steered by relabelling. About
// 50% of the new requests are held out.
func (it *Item) Heldout() bool {
	if it.seenBefore() {
		return false
	}
	return splitHash(it.Method, it.Target, it.Headers, it.Body)%2 == 1
}

// splitHash is the first 8 bytes of the salted SHA-256 of the content.
func splitHash(method, target string, headers [][2]string, body string) uint64 {
	h := sha256.New()
	io.WriteString(h, splitSalt+"\x00")
	writeContent(h, method, target, headers, body)
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// Group is the label results are broken down by: the benign kind or the
// attack class.
func (it *Item) Group() string {
	if it.Set == setBenign {
		return it.Kind
	}
	return it.Class
}

// writeCorpus writes items to path as gzip-compressed JSON lines.
func writeCorpus(path string, items []Item) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create cache dir: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	zw := gzip.NewWriter(f)
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	for i := range items {
		if err := enc.Encode(&items[i]); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", tmp, err)
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

// readCorpus reads a file written by writeCorpus.
func readCorpus(path string) ([]Item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var items []Item
	dec := json.NewDecoder(zr)
	for {
		var it Item
		if err := dec.Decode(&it); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read %s: item %d: %w", path, len(items), err)
		}
		items = append(items, it)
	}
	return items, nil
}

// numberIDs gives every item of a generator its stable id.
func numberIDs(prefix string, items []Item) {
	seq := map[string]int{}
	for i := range items {
		g := items[i].Group()
		seq[g]++
		items[i].ID = prefix + "-" + g + "-" + strconv.Itoa(seq[g])
	}
}

// countBy returns the keys of counts sorted by count, descending.
func sortedKeys(counts map[string]int) []string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
