package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type report struct {
	opts                      options
	meta                      corpusMeta
	profiles                  []Profile
	items                     []Item
	verdicts                  [][]Verdict
	rates                     []float64
	totalBenign, totalAttacks int
	partBenign, partAttacks   int
}

// tally counts blocked items per key for every profile.
type tally struct {
	n       map[string]int
	blocked []map[string]int
}

func newTally(profiles int) *tally {
	t := &tally{n: map[string]int{}, blocked: make([]map[string]int, profiles)}
	for i := range t.blocked {
		t.blocked[i] = map[string]int{}
	}
	return t
}

func (r *report) tally(set string, key func(*Item) []string) *tally {
	t := newTally(len(r.profiles))
	for i := range r.items {
		it := &r.items[i]
		if it.Set != set {
			continue
		}
		for _, k := range key(it) {
			t.n[k]++
			for p := range r.profiles {
				if r.verdicts[p][i].Blocked {
					t.blocked[p][k]++
				}
			}
		}
	}
	return t
}

func pct(a, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(n))
}

func (r *report) section(w io.Writer, title string, t *tally, order []string) {
	fmt.Fprintf(w, "\n%s\n", title)
	if order == nil {
		order = sortedKeys(t.n)
	}
	for _, k := range order {
		if t.n[k] == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-34s %7d", k, t.n[k])
		for p := range r.profiles {
			fmt.Fprintf(w, " %14s", pct(t.blocked[p][k], t.n[k]))
		}
		fmt.Fprintln(w)
	}
}

func (r *report) header(w io.Writer, title string) {
	fmt.Fprintf(w, "\n%-36s %7s", title, "n")
	for _, p := range r.profiles {
		fmt.Fprintf(w, " %14s", p.Name)
	}
	fmt.Fprintln(w)
}

func one(s string) []string { return []string{s} }

func (r *report) print(w io.Writer) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	part := map[string]string{"heldout": "HELD-OUT part (never used for tuning)", "tuning": "TUNING part (the only part detectors may be tuned on)", "all": "whole corpus (tuning and held-out parts together)"}[r.opts.part]
	fmt.Fprintf(bw, "Portcullis detection scoreboard: %s\n", part)
	fmt.Fprintf(bw, "corpus v%d, sources %s: benign %d (this part %d, run %d), attacks %d (this part %d, run %d)\n",
		r.meta.GenVersion, r.meta.Fingerprint, r.totalBenign, r.partBenign, r.count(setBenign), r.totalAttacks, r.partAttacks, r.count(setAttack))

	totB := r.tally(setBenign, func(*Item) []string { return one("benign blocked (lower is better)") })
	totA := r.tally(setAttack, func(*Item) []string { return one("attacks blocked (higher is better)") })
	ev := r.tally(setAttack, func(it *Item) []string {
		if it.Evasion {
			return one("generated evasions blocked")
		}
		return nil
	})
	// Blocks that rest on policy rules alone (method, content type,
	// protocol, body parse errors) say nothing about detection: shown apart.
	policyB := r.tallyVerdict(setBenign, "benign blocked by policy rules only", func(v Verdict) bool { return v.Blocked && policyOnly(v) })
	evidA := r.tallyVerdict(setAttack, "attacks blocked on attack evidence", func(v Verdict) bool { return v.Blocked && !policyOnly(v) })
	r.header(bw, "summary")
	for _, t := range []*tally{totB, policyB, totA, evidA, ev} {
		for k := range t.n {
			fmt.Fprintf(bw, "  %-34s %7d", k, t.n[k])
			for p := range r.profiles {
				fmt.Fprintf(bw, " %14s", pct(t.blocked[p][k], t.n[k]))
			}
			fmt.Fprintln(bw)
		}
	}
	fmt.Fprintf(bw, "  %-34s %7s", "requests/s", "")
	for p := range r.profiles {
		fmt.Fprintf(bw, " %14.0f", r.rates[p])
	}
	fmt.Fprintln(bw)

	r.header(bw, "benign blocked, by kind")
	r.section(bw, "", r.tally(setBenign, func(it *Item) []string { return one(it.Kind) }), nil)
	r.header(bw, "attacks blocked, by class")
	r.section(bw, "", r.tally(setAttack, func(it *Item) []string { return one(it.Class) }), nil)
	r.header(bw, "attacks blocked, by placement")
	r.section(bw, "", r.tally(setAttack, func(it *Item) []string { return one(it.Placement) }), nil)
	r.header(bw, "attacks blocked, by encoding")
	r.section(bw, "", r.tally(setAttack, func(it *Item) []string { return strings.Split(it.Encoding, "+") }), nil)
	r.header(bw, "attacks blocked, by source")
	r.section(bw, "", r.tally(setAttack, func(it *Item) []string { return one(strings.SplitN(it.Source, ":", 2)[0]) }), nil)
	r.header(bw, "generated evasions blocked, by class")
	r.section(bw, "", r.tally(setAttack, func(it *Item) []string {
		if it.Evasion {
			return one(it.Class)
		}
		return nil
	}), nil)
	r.header(bw, "attacks blocked, class x placement")
	r.section(bw, "", r.tally(setAttack, func(it *Item) []string { return one(it.Class + " / " + it.Placement) }), sortedPairs(r.items))

	errs := 0
	for p := range r.profiles {
		for i := range r.items {
			if r.verdicts[p][i].Err != "" {
				errs++
			}
		}
	}
	if errs > 0 {
		fmt.Fprintf(bw, "\n%d requests (over all profiles) are refused by Go's HTTP server with 400 before any stage, counted as blocked; see -list\n", errs)
	}
	for _, l := range strings.Split(r.opts.list, ",") {
		switch strings.TrimSpace(l) {
		case "fp":
			r.listing(bw, setBenign, true, "false positives (benign blocked)")
		case "miss":
			r.listing(bw, setAttack, false, "misses (attacks passed)")
		}
	}
}

func sortedPairs(items []Item) []string {
	seen := map[string]bool{}
	var out []string
	for _, it := range items {
		if it.Set == setAttack {
			k := it.Class + " / " + it.Placement
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (r *report) count(set string) int {
	n := 0
	for _, it := range r.items {
		if it.Set == set {
			n++
		}
	}
	return n
}

// listing prints, per benign kind or attack class, the first items of set
// whose verdict is blocked (or not), with what fired, so that tuning has
// concrete requests to look at.
func (r *report) listing(w io.Writer, set string, blocked bool, title string) {
	for p, prof := range r.profiles {
		fmt.Fprintf(w, "\n%s — %s (at most %d per %s)\n", title, prof.Name, r.opts.listMax, map[string]string{setBenign: "kind", setAttack: "class"}[set])
		shown, total := map[string]int{}, map[string]int{}
		for i := range r.items {
			it := &r.items[i]
			v := r.verdicts[p][i]
			if it.Set != set || v.Blocked != blocked {
				continue
			}
			g := it.Group()
			total[g]++
			if shown[g] >= r.opts.listMax {
				continue
			}
			shown[g]++
			label := it.Kind
			if set == setAttack {
				label = it.Class + " " + it.Placement + " " + it.Encoding
			}
			fmt.Fprintf(w, "  %-24s %-40s %s %s\n", it.ID, label, it.Method, clipList(it.Target, 90))
			if set == setAttack {
				fmt.Fprintf(w, "      payload: %s\n", clipList(it.Payload, 160))
			} else if it.Body != "" && !it.BodyB64 {
				fmt.Fprintf(w, "      body: %s\n", clipList(it.Body, 160))
			}
			if f := v.firing(); f != "" {
				fmt.Fprintf(w, "      %s\n", f)
			}
		}
		for _, g := range sortedKeys(total) {
			if total[g] > shown[g] {
				fmt.Fprintf(w, "  %s: %d more (-list-max)\n", g, total[g]-shown[g])
			}
		}
	}
}

func clipList(s string, n int) string {
	s = strings.NewReplacer("\r", `\r`, "\n", `\n`, "\t", `\t`).Replace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// writeVerdicts writes one JSON line per item and profile.
func (r *report) writeVerdicts(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for p, prof := range r.profiles {
		for i := range r.items {
			it := &r.items[i]
			v := r.verdicts[p][i]
			_ = enc.Encode(map[string]any{"id": it.ID, "profile": prof.Name, "set": it.Set, "group": it.Group(), "placement": it.Placement, "encoding": it.Encoding,
				"blocked": v.Blocked, "status": v.Status, "us": v.Micros, "bytes": len(it.Body), "stage": v.Stage, "rules": v.Rules, "score": v.Score, "error": v.Err})
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// tallyVerdict counts the items of set whose verdict satisfies pred.
func (r *report) tallyVerdict(set, key string, pred func(Verdict) bool) *tally {
	t := newTally(len(r.profiles))
	for i := range r.items {
		if r.items[i].Set != set {
			continue
		}
		t.n[key]++
		for p := range r.profiles {
			if pred(r.verdicts[p][i]) {
				t.blocked[p][key]++
			}
		}
	}
	return t
}

// policyOnly reports whether every rule behind a block is a policy or
// protocol rule (CRS 911 methods, 920 protocol enforcement and content
// types, 922 multipart, the body processor's 2000xx errors) rather than
// attack detection (921 protocol attacks, 930-944 application attacks, or
// anything that is not a CRS rule, such as Portcullis's own detectors).
func policyOnly(v Verdict) bool {
	policy := 0
	for _, id := range v.Rules {
		switch {
		case id >= 949000 && id < 950000, id >= 959000 && id < 960000, id >= 980000 && id < 981000:
			// scoring and reporting rules
		case id >= 911000 && id < 921000, id >= 922000 && id < 923000, id >= 200000 && id < 201000:
			policy++
		default:
			return false
		}
	}
	return policy > 0
}
