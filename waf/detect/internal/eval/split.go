package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/portcullis-waf/portcullis/bench/detection/seenfile"
)

// The tuning/held-out split of bench/detection's corpus v2, byte for byte
// (bench/detection/corpus.go Item.Heldout and seen.go):
// TestSplitMatchesScoreboard and bench/detection's TestSplitGolden hold
// both to the same table. A request of corpus v1 (its content, or an
// attack's payload in the same placement and encoding, is in
// bench/detection/testdata/seen-v3.ids.gz) is always tuning; any other is
// held out when the salted hash of its content is odd.

const splitSalt = "portcullis-detection-split-v2"

// seenFile is the seen-before set, relative to the repository root.
const seenFile = "bench/detection/testdata/seen-v3.ids.gz"

type seenSet map[uint64]struct{}

func writeContent(w io.Writer, it *item) {
	io.WriteString(w, it.Method+"\x00"+it.Target+"\x00")
	for _, kv := range it.Headers {
		io.WriteString(w, kv[0]+":"+kv[1]+"\x00")
	}
	io.WriteString(w, it.Body)
}

func first8(h interface{ Sum([]byte) []byte }) uint64 {
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// heldout reports whether bench/detection's scoreboard reports on it.
func (it *item) heldout(seen seenSet) bool {
	c := sha256.New()
	io.WriteString(c, "portcullis-detection-content\x00")
	writeContent(c, it)
	if _, ok := seen[first8(c)]; ok {
		return false
	}
	if it.Set == "attack" && it.Payload != "" {
		p := sha256.New()
		io.WriteString(p, "portcullis-detection-payload\x00"+it.Placement+"\x00"+it.Encoding+"\x00"+it.Payload)
		if _, ok := seen[first8(p)]; ok {
			return false
		}
	}
	h := sha256.New()
	io.WriteString(h, splitSalt+"\x00")
	writeContent(h, it)
	return first8(h)%2 == 1
}

// loadSeen reads the seen-before set of the repository at root.
func loadSeen(root string) (seenSet, error) {
	path := filepath.Join(root, seenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seen-before set: %w", err)
	}
	ids, err := seenfile.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("seen-before set %s: %w", path, err)
	}
	s := make(seenSet, len(ids))
	for _, id := range ids {
		s[id] = struct{}{}
	}
	return s, nil
}
