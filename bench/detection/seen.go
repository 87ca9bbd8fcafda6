package main

import (
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/portcullis-waf/portcullis/bench/detection/seenfile"
)

// The seen-before set. Corpus v1 (genVersion 3, split salt
// "portcullis-detection-split-v1") had its held-out part looked at while
// detectors were tuned, so none of its requests may be reported as
// untouched again. testdata/seen-v3.ids.gz records, for every request of
// that corpus (benign, browser and attacks, both parts), its content
// identity and, for attacks, its payload identity. Item.Heldout puts
// every request whose identity is in the set into the tuning part.
//
// The file was produced by generating the v3 corpus at commit 45f654b
// (go run ./bench/detection -cache DIR -part tuning -benign 1 -attacks 1
// -profiles default -browser on) and then, with this code,
// go run ./bench/detection -record-seen DIR/detection-v3-scale1
// -record-out bench/detection/testdata/seen-v3.ids.gz.
//
// The file format is package seenfile's.

//go:embed testdata/seen-v3.ids.gz
var seenV3File []byte

// contentID is a request's content identity: the first 8 bytes of the
// SHA-256 of the fields the split hashes (method, target, headers in
// order, body as stored), under their own prefix.
func contentID(method, target string, headers [][2]string, body string) uint64 {
	h := sha256.New()
	io.WriteString(h, "portcullis-detection-content\x00")
	writeContent(h, method, target, headers, body)
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// writeContent writes the content fields as the split and the identity
// hash them.
func writeContent(w io.Writer, method, target string, headers [][2]string, body string) {
	io.WriteString(w, method+"\x00"+target+"\x00")
	for _, kv := range headers {
		io.WriteString(w, kv[0]+":"+kv[1]+"\x00")
	}
	io.WriteString(w, body)
}

// payloadID is an attack's payload identity: the value the application
// sees, where it sits and how it is encoded. The same attack string in
// the same placement and encoding is the same test, whatever host,
// headers or parameter order surround it.
func payloadID(placement, encoding, payload string) uint64 {
	h := sha256.New()
	io.WriteString(h, "portcullis-detection-payload\x00"+placement+"\x00"+encoding+"\x00"+payload)
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// identities returns the identities an item is known by.
func (it *Item) identities() []uint64 {
	ids := []uint64{contentID(it.Method, it.Target, it.Headers, it.Body)}
	if it.Set == setAttack && it.Payload != "" {
		ids = append(ids, payloadID(it.Placement, it.Encoding, it.Payload))
	}
	return ids
}

var (
	seenOnce sync.Once
	seenSet  map[uint64]struct{}
	seenErr  error
)

// seenBefore reports whether the item, or its attack payload in the same
// placement and encoding, was in corpus v1.
func (it *Item) seenBefore() bool {
	seenOnce.Do(func() {
		ids, err := decodeSeen(seenV3File)
		if err != nil {
			seenErr = fmt.Errorf("testdata/seen-v3.ids.gz: %w", err)
			return
		}
		seenSet = make(map[uint64]struct{}, len(ids))
		for _, id := range ids {
			seenSet[id] = struct{}{}
		}
	})
	if seenErr != nil {
		// embedded at build time: a corrupt file is a broken build
		panic(seenErr)
	}
	for _, id := range it.identities() {
		if _, ok := seenSet[id]; ok {
			return true
		}
	}
	return false
}

// encodeSeen and decodeSeen are the file format (package seenfile).
var encodeSeen, decodeSeen = seenfile.Encode, seenfile.Decode

// recordSeen writes the identities of every request of the cached corpus
// in dir (benign, browser, attacks) to out.
func recordSeen(dir, out string) error {
	var ids []uint64
	n := 0
	for _, name := range []string{"benign.jsonl.gz", "browser.jsonl.gz", "attacks.jsonl.gz"} {
		items, err := readCorpus(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("record seen-before identities: %w", err)
		}
		for i := range items {
			ids = append(ids, items[i].identities()...)
		}
		n += len(items)
	}
	b := encodeSeen(ids)
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("record seen-before identities: %w", err)
	}
	fmt.Fprintf(os.Stderr, "detection: %d requests, %d identities, %d bytes written to %s\n", n, len(ids), len(b), out)
	return nil
}
