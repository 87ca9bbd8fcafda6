package main

import (
	"fmt"
	"os"
	"reflect"
	"testing"
)

// splitGolden pins the v2 split of requests that were not in corpus v1:
// waf/detect/internal/eval holds its own copy of the split to the same
// table, so the detectors' evaluation reads only the tuning part. (The
// values were computed independently: SHA-256 of
// "portcullis-detection-split-v2\x00" + method + "\x00" + target + "\x00"
// + "name:value\x00" per header + body, first 8 bytes big-endian, odd.)
var splitGolden = []struct {
	it      Item
	heldout bool
}{
	{Item{Method: "GET", Target: "/search?q=hello", Headers: [][2]string{{"Host", "example.com"}}}, true},
	{Item{Method: "POST", Target: "/login", Headers: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}, Body: "user=admin%27--&pw=x"}, true},
	{Item{Method: "GET", Target: "/a"}, true},
	{Item{Method: "PUT", Target: "/b", Body: "x"}, false},
	{Item{Method: "GET", Target: "/c"}, false},
	{Item{Method: "GET", Target: "/d"}, true},
	{Item{Method: "POST", Target: "/e", Body: "y"}, false},
	{Item{Method: "GET", Target: "/f"}, false},
}

func TestSplitGolden(t *testing.T) {
	for _, g := range splitGolden {
		if g.it.seenBefore() {
			t.Fatalf("%s %s: golden request is in the seen-before set", g.it.Method, g.it.Target)
		}
		if got := g.it.Heldout(); got != g.heldout {
			t.Errorf("%s %s: Heldout %v, want %v", g.it.Method, g.it.Target, got, g.heldout)
		}
	}
}

// TestSeenBeforeIsTuning: every request of corpus v1 the generators still
// produce unchanged (the CRS regression tests take no seed) is known to
// the seen-before set and goes to the tuning part, whatever the v2 hash
// says.
func TestSeenBeforeIsTuning(t *testing.T) {
	items, err := crsAttacks()
	if err != nil {
		t.Fatal(err)
	}
	numberIDs("a-crs", items)
	if len(items) < 500 {
		t.Fatalf("only %d CRS attacks", len(items))
	}
	hashOdd := 0
	for i := range items {
		it := &items[i]
		if !it.seenBefore() {
			t.Fatalf("%s (%s) was in corpus v1 but is not in the seen-before set", it.ID, it.Source)
		}
		if it.Heldout() {
			t.Fatalf("%s was in corpus v1 and is held out", it.ID)
		}
		if splitHash(it.Method, it.Target, it.Headers, it.Body)%2 == 1 {
			hashOdd++
		}
	}
	if hashOdd == 0 {
		t.Error("no CRS request would be held out by the hash alone: the test proves nothing")
	}
}

// TestNoHeldoutItemWasSeen generates the v2 corpus's attacks and benign
// requests (generated kinds, with the small text pool) and checks that
// no held-out request has an identity of corpus v1. It reports sizes
// only.
func TestNoHeldoutItemWasSeen(t *testing.T) {
	var items []Item
	for i, c := range classes {
		items = append(items, genAttacks(c, genPerClass, seed+uint64(i))...)
	}
	items = append(items, genBenign(testTexts(), 0.1, seed)...)
	// the set read independently of Item.Heldout's copy
	ids, err := decodeSeen(seenV3File)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	check := func(what string, items []Item) int {
		held := 0
		for i := range items {
			if !items[i].Heldout() {
				continue
			}
			held++
			if seen[contentID(items[i].Method, items[i].Target, items[i].Headers, items[i].Body)] ||
				items[i].Set == setAttack && seen[payloadID(items[i].Placement, items[i].Encoding, items[i].Payload)] {
				t.Fatalf("%s: a held-out request has a seen-before identity", what)
			}
		}
		return held
	}
	if held := check("generated", items); held < len(items)/4 {
		t.Errorf("only %d of %d requests held out", held, len(items))
	}
	// the cached corpus, when it has been generated (sizes only)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := fmt.Sprintf("%s/bench/.cache/detection-v%d-scale1", root, genVersion)
	for _, name := range []string{"benign.jsonl.gz", "browser.jsonl.gz", "attacks.jsonl.gz"} {
		items, err := readCorpus(dir + "/" + name)
		if err != nil {
			t.Logf("%s: not cached (%v)", name, err)
			continue
		}
		labelBrowser(items)
		t.Logf("%s: %d of %d held out", name, check(name, items), len(items))
	}
}

func TestSeenFileRoundTrip(t *testing.T) {
	ids := []uint64{5, 1, 1 << 63, 77, 5, 0}
	got, err := decodeSeen(encodeSeen(ids))
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{0, 1, 5, 77, 1 << 63}; !reflect.DeepEqual(got, want) {
		t.Errorf("round trip: %v, want %v", got, want)
	}
	for _, bad := range [][]byte{nil, []byte("x"), encodeSeen(nil)[:10]} {
		if _, err := decodeSeen(bad); err == nil {
			t.Errorf("decodeSeen(%q) accepted", bad)
		}
	}
	all, err := decodeSeen(seenV3File)
	if err != nil {
		t.Fatalf("embedded seen-before file: %v", err)
	}
	if len(all) < 80000 {
		t.Errorf("embedded seen-before file holds %d identities: not the whole of corpus v1", len(all))
	}
}

// TestSplitSurvivesCache: the part of a request is the same before and
// after the corpus cache (JSON lines) round trip, binary payloads too.
func TestSplitSurvivesCache(t *testing.T) {
	var items []Item
	for _, c := range []string{"deserialization", "xss", "crlf"} {
		items = append(items, genAttacks(c, 300, 5)...)
	}
	path := t.TempDir() + "/a.jsonl.gz"
	if err := writeCorpus(path, items); err != nil {
		t.Fatal(err)
	}
	back, err := readCorpus(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		if !reflect.DeepEqual(items[i].identities(), back[i].identities()) || items[i].Heldout() != back[i].Heldout() {
			t.Fatalf("%d (%s/%s): identity or part changes through the cache", i, items[i].Class, items[i].Placement)
		}
	}
	_ = os.Remove(path)
	if _, err := os.Stat(wfuzzDir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("wfuzz is not installed, and CI is set: apt-get install -y wfuzz")
		}
		t.Skip("wfuzz is not installed: the whole attack corpus is not checked")
	}
	all, err := genAllAttacks(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeCorpus(path, all); err != nil {
		t.Fatal(err)
	}
	if back, err = readCorpus(path); err != nil {
		t.Fatal(err)
	}
	for i := range all {
		if !reflect.DeepEqual(all[i].identities(), back[i].identities()) {
			t.Fatalf("%s (%s): identity changes through the cache", all[i].ID, all[i].Source)
		}
	}
}
