package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// printSizes prints how many requests each part holds, per benign kind,
// attack class, placement, source and class × placement. Sizes only: no
// request is sent and nothing about a held-out request's content or
// verdict is shown.
func printSizes(w io.Writer, benign, attacks []Item) {
	type count struct{ tuning, seen, heldout int }
	tally := func(items []Item, key func(*Item) string) (map[string]*count, []string) {
		m := map[string]*count{}
		for i := range items {
			k := key(&items[i])
			c := m[k]
			if c == nil {
				c = &count{}
				m[k] = c
			}
			switch {
			case items[i].Heldout():
				c.heldout++
			case items[i].seenBefore():
				c.seen++
				c.tuning++
			default:
				c.tuning++
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return m, keys
	}
	table := func(title string, items []Item, key func(*Item) string) {
		m, keys := tally(items, key)
		fmt.Fprintf(w, "\n%-34s %8s %8s %8s\n", title, "held-out", "tuning", "(seen v1)")
		var tot count
		for _, k := range keys {
			c := m[k]
			fmt.Fprintf(w, "%-34s %8d %8d %8d\n", k, c.heldout, c.tuning, c.seen)
			tot.heldout, tot.tuning, tot.seen = tot.heldout+c.heldout, tot.tuning+c.tuning, tot.seen+c.seen
		}
		fmt.Fprintf(w, "%-34s %8d %8d %8d\n", "total", tot.heldout, tot.tuning, tot.seen)
	}
	source := func(it *Item) string {
		s, _, _ := strings.Cut(it.Source, ":")
		if strings.HasPrefix(it.Source, "crs:") {
			return "crs"
		}
		return s
	}
	fmt.Fprintf(w, "corpus v2 (genVersion %d, split %q): held-out = not in corpus v1 and drawn by the split; (seen v1) = tuning requests that were in corpus v1\n", genVersion, splitSalt)
	table("benign kind", benign, func(it *Item) string { return it.Kind })
	table("benign source", benign, source)
	table("attack class", attacks, func(it *Item) string { return it.Class })
	table("attack placement", attacks, func(it *Item) string { return it.Placement })
	table("attack source", attacks, source)
	table("attack class/placement", attacks, func(it *Item) string { return it.Class + "/" + it.Placement })
}
