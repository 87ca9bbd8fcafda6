// Command eval measures the attack-class detectors alone, without the waf
// stage, the CRS or the policy checks: for every request of the tuning part
// of the detection corpora (bench/detection), it extracts the values an
// application reads (path, query names and values, cookies, headers, form,
// JSON, XML, multipart fields and file names, raw bodies), expands each
// through waf/decode and runs every detector on every variant. It prints
// the share of benign requests flagged per benign kind and the share of
// attacks found per class, placement and encoding, and lists misses and
// false positives on request.
//
//	go run ./bench/detection -part tuning -benign 1 -attacks 1   # generate the cache once
//	go run ./waf/detect/internal/eval                            # tuning part, summary
//	go run ./waf/detect/internal/eval -list fp,miss -class sqli  # what to look at
//
// Only the tuning part is ever read: the held-out part is for the
// scoreboard's report, and this command refuses to look at it.
//
// Place in the request path: none; it is a measuring tool for waf/detect.
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/portcullis-waf/portcullis/waf/decode"
	"github.com/portcullis-waf/portcullis/waf/detect"
)

// item is the subset of bench/detection's Item this command reads; the
// JSON names are that file format's.
type item struct {
	ID        string      `json:"id"`
	Set       string      `json:"set"`
	Kind      string      `json:"kind"`
	Class     string      `json:"class"`
	Placement string      `json:"placement"`
	Encoding  string      `json:"encoding"`
	Evasion   bool        `json:"evasion"`
	Source    string      `json:"source"`
	Payload   string      `json:"payload"`
	Method    string      `json:"method"`
	Target    string      `json:"target"`
	Headers   [][2]string `json:"headers"`
	Body      string      `json:"body"`
	BodyB64   bool        `json:"body_b64"`
}

func (it *item) body() []byte {
	if !it.BodyB64 {
		return []byte(it.Body)
	}
	b, err := base64.StdEncoding.DecodeString(it.Body)
	if err != nil {
		return []byte(it.Body)
	}
	return b
}

func (it *item) header(name string) string {
	for _, h := range it.Headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

func readCorpus(path string) ([]item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var items []item
	dec := json.NewDecoder(bufio.NewReader(zr))
	for {
		var it item
		if err := dec.Decode(&it); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read %s: item %d: %w", path, len(items), err)
		}
		items = append(items, it)
	}
	return items, nil
}

// findCache returns the newest detection corpus directory under dir.
func findCache(dir string) (string, error) {
	ms, _ := filepath.Glob(filepath.Join(dir, "detection-v*-scale1"))
	if len(ms) == 0 {
		return "", fmt.Errorf("no detection corpus under %s: generate it with `go run ./bench/detection -part tuning -benign 1 -attacks 1` (or pass -cache)", dir)
	}
	sort.Strings(ms)
	return ms[len(ms)-1], nil
}

// loadTuning reads the tuning part of the corpora in dir: the requests
// that are not held out under bench/detection's split (split.go).
func loadTuning(dir string, seen seenSet) (benign, attacks []item, err error) {
	for _, name := range []string{"benign.jsonl.gz", "browser.jsonl.gz", "attacks.jsonl.gz"} {
		items, err := readCorpus(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) && name == "browser.jsonl.gz" {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		for _, it := range items {
			if it.heldout(seen) {
				continue
			}
			if name == "browser.jsonl.gz" && it.Set == "" {
				it.Set = "benign"
			}
			if it.Set == "attack" {
				attacks = append(attacks, it)
			} else {
				benign = append(benign, it)
			}
		}
	}
	return benign, attacks, nil
}

// hit is the strongest finding on one request.
type hit struct {
	f       detect.Finding
	value   string // the variant judged
	name    string // where it came from
	chain   string
	flagged bool
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("eval: ")
	var (
		cache   = flag.String("cache", "", "corpus directory (default: the newest bench/.cache/detection-v*-scale1 of the repository)")
		list    = flag.String("list", "", "list items: fp, miss or fp,miss")
		listMax = flag.Int("list-max", 20, "list at most this many items per group")
		class   = flag.String("class", "", "only attacks of this class (and only false positives of this detector class)")
		thresh  = flag.Int("threshold", 70, "confidence at or above which a finding counts as an attack")
		workers = flag.Int("workers", runtime.GOMAXPROCS(0), "parallel workers")
		one     = flag.String("value", "", "judge this one value with every detector on every decoding, print the findings and exit")
		where   = flag.String("where", "query", "placement of -value: query, form, json, header, cookie, path, body, xml, arg_name, file_name")
	)
	flag.Parse()
	if *one != "" {
		w := detect.WhereQuery
		for i := detect.Where(0); i <= detect.WhereFileName; i++ {
			if i.String() == *where {
				w = i
			}
		}
		newEvaluator(*thresh).explain(os.Stdout, *one, w)
		return
	}
	root, err := repoRoot()
	if err != nil {
		log.Fatal(err)
	}
	seen, err := loadSeen(root)
	if err != nil {
		log.Fatal(err)
	}
	dir := *cache
	if dir == "" {
		if dir, err = findCache(filepath.Join(root, "bench", ".cache")); err != nil {
			log.Fatal(err)
		}
	}
	benign, attacks, err := loadTuning(dir, seen)
	if err != nil {
		log.Fatal(err)
	}
	if *class != "" {
		var keep []item
		for _, it := range attacks {
			if it.Class == *class {
				keep = append(keep, it)
			}
		}
		attacks = keep
	}
	ev := newEvaluator(*thresh)
	bh := ev.run(benign, *workers)
	ah := ev.run(attacks, *workers)
	fmt.Printf("corpus %s, tuning part only: %d benign, %d attacks; threshold %d\n\n", dir, len(benign), len(attacks), *thresh)
	printBenign(os.Stdout, benign, bh)
	printAttacks(os.Stdout, attacks, ah)
	if strings.Contains(*list, "fp") {
		listFP(os.Stdout, benign, bh, *listMax, *class)
	}
	if strings.Contains(*list, "miss") {
		listMiss(os.Stdout, attacks, ah, *listMax)
	}
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run inside the repository (no go.mod above the working directory)")
		}
		dir = parent
	}
}

func (ev *evaluator) run(items []item, workers int) []hit {
	out := make([]hit, len(items))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < max(1, workers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []decode.Variant
			for i := range next {
				out[i], buf = ev.judge(&items[i], buf)
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

type tally struct{ n, hit int }

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func printTable(w io.Writer, title string, counts map[string]*tally, rate string) {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "%-34s %7s %7s %8s\n", title, "n", rate, "%")
	for _, k := range keys {
		c := counts[k]
		fmt.Fprintf(w, "  %-32s %7d %7d %7.2f%%\n", k, c.n, c.hit, pct(c.hit, c.n))
	}
	fmt.Fprintln(w)
}

func add(m map[string]*tally, k string, hit bool) {
	c := m[k]
	if c == nil {
		c = &tally{}
		m[k] = c
	}
	c.n++
	if hit {
		c.hit++
	}
}

func printBenign(w io.Writer, items []item, hs []hit) {
	kinds := map[string]*tally{}
	by := map[string]*tally{}
	total := 0
	for i, it := range items {
		add(kinds, it.Kind, hs[i].flagged)
		if hs[i].flagged {
			total++
			add(by, string(hs[i].f.Class), true)
		}
	}
	fmt.Fprintf(w, "BENIGN flagged: %d of %d = %.3f%%\n", total, len(items), pct(total, len(items)))
	printTable(w, "per benign kind", kinds, "flagged")
	if len(by) > 0 {
		fmt.Fprintln(w, "false positives by detector class:")
		for k, c := range by {
			fmt.Fprintf(w, "  %-20s %d\n", k, c.n)
		}
		fmt.Fprintln(w)
	}
}

func printAttacks(w io.Writer, items []item, hs []hit) {
	classes, places, encs, srcs := map[string]*tally{}, map[string]*tally{}, map[string]*tally{}, map[string]*tally{}
	evasions := &tally{}
	total := 0
	for i, it := range items {
		found := hs[i].flagged
		add(classes, it.Class, found)
		add(places, it.Placement, found)
		enc := it.Encoding
		if enc == "" {
			enc = "none"
		}
		add(encs, enc, found)
		add(srcs, sourceFamily(it.Source)+" "+it.Class, found)
		if it.Evasion {
			evasions.n++
			if found {
				evasions.hit++
			}
		}
		if found {
			total++
		}
	}
	fmt.Fprintf(w, "ATTACKS found: %d of %d = %.2f%%; evasions %d of %d = %.2f%%\n", total, len(items), pct(total, len(items)), evasions.hit, evasions.n, pct(evasions.hit, evasions.n))
	printTable(w, "per class", classes, "found")
	printTable(w, "per placement", places, "found")
	printTable(w, "per encoding", encs, "found")
	printTable(w, "per source and class", srcs, "found")
}

// sourceFamily groups sources: "crs:942100/3" → "crs:942".
func sourceFamily(s string) string {
	if strings.HasPrefix(s, "crs:") && len(s) >= 7 {
		return s[:7]
	}
	return s
}

func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func listFP(w io.Writer, items []item, hs []hit, max int, class string) {
	fmt.Fprintln(w, "FALSE POSITIVES")
	per := map[string]int{}
	for i, it := range items {
		h := hs[i]
		if !h.flagged || (class != "" && string(h.f.Class) != class) {
			continue
		}
		if per[it.Kind]++; per[it.Kind] > max {
			continue
		}
		ev := detect.Evidence(h.value, h.f, 120)
		fmt.Fprintf(w, "  %s [%s] %s %d %q at %s via %q: evidence %s\n      value %s\n", it.ID, it.Kind, h.f.Detector, h.f.Confidence, h.f.Reason, h.name, h.chain, clip(ev, 120), clip(h.value, 300))
	}
	fmt.Fprintln(w)
}

func listMiss(w io.Writer, items []item, hs []hit, max int) {
	fmt.Fprintln(w, "MISSES")
	per := map[string]int{}
	for i, it := range items {
		h := hs[i]
		if h.flagged {
			continue
		}
		if per[it.Class]++; per[it.Class] > max {
			continue
		}
		best := ""
		if h.f.Class != "" {
			best = fmt.Sprintf(" (best: %s %d %q)", h.f.Detector, h.f.Confidence, h.f.Reason)
		}
		fmt.Fprintf(w, "  %s [%s/%s/%s] %s%s\n", it.ID, it.Class, it.Placement, it.Encoding, clip(it.Payload, 300), best)
	}
	fmt.Fprintln(w)
}
