package fastop

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"testing"
)

func compileDFA(t testing.TB, pattern string) (*dfa, *regexp.Regexp) {
	t.Helper()
	re := regexp.MustCompile(pattern)
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		t.Fatal(err)
	}
	return newDFA(prog), re
}

// TestDFASmallBudget drives the cache past a tiny budget again and again,
// from several goroutines: every answer given must still be the regexp's,
// and some scans must have been answered (the cache restarts empty).
func TestDFASmallBudget(t *testing.T) {
	d, re := compileDFA(t, flags+`(?i)(?:a|b)[^x]{0,6}c\b|\bend$|(?:select|union)\s+\w+`)
	d.budget = 4 * int(d.stride) * 16 // a dozen states or so
	d.charge(-d.cache.Load().bytes)
	d.cache.Store(d.newCache())
	alphabet := []string{"a", "b", "c", "x", " ", "\n", "end", "select ", "union", "é", "\xff", "C"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered, unknown := 0, 0
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range 3000 {
				var b strings.Builder
				for range rng.IntN(20) {
					b.WriteString(alphabet[rng.IntN(len(alphabet))])
				}
				in := b.String()
				got, ok := d.mayMatch(in)
				mu.Lock()
				if ok {
					answered++
					if got != re.MatchString(in) {
						t.Errorf("input %q: DFA %v, regexp %v", in, got, !got)
					}
				} else {
					unknown++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if answered == 0 || unknown == 0 {
		t.Errorf("answered %d, gave up %d: the budget should make it do both", answered, unknown)
	}
}

// TestDFAEdges compares the DFA with the regexp on the cases where Go's
// regexp has rules of its own: empty-width assertions at the edges and at
// line breaks, invalid UTF-8 read as U+FFFD one byte at a time, case
// folding beyond ASCII, the empty input.
func TestDFAEdges(t *testing.T) {
	patterns := []string{
		`^`, `$`, `^$`, `\b`, `\B`, `^a`, `a$`, `(?m)^a$`, `(?-m)^a$`, `\Aa`, `a\z`, `\bab\b`, `\Bb`,
		`.`, `(?-s).`, `\x{fffd}`, `[^a]`, `a.b`, `(?i)k`, `(?i)s`, `(?i)é`, `\pL`, `[\x80-\x{10ffff}]`,
		`a*`, `(a|ab)(c|bcd)`, `x{3}`, `[^\n]+$`,
	}
	inputs := []string{
		"", "a", "ab", "ba", "a\nb", "\n", "a\n", "\na", "aab", "b", "\xff", "a\xffb", "\xe2\x84", "\xe2\x84\xaa",
		"K", "\u212a", "\u017f", "S", "É", "é", "xxx", "abcd", "日本", "\xc3", "a\x00b",
	}
	for _, p := range patterns {
		for _, fl := range []string{"", flags} {
			d, re := compileDFA(t, fl+p)
			for _, in := range inputs {
				got, ok := d.mayMatch(in)
				if !ok {
					t.Fatalf("%q on %q: cache full", fl+p, in)
				}
				if want := re.MatchString(in); got != want {
					t.Errorf("%q on %q: DFA %v, regexp %v", fl+p, in, got, want)
				}
			}
		}
	}
}
