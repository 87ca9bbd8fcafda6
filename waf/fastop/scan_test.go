package fastop

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveFound is what scanAll must return: atom i is found when it occurs
// in the folded input.
func naiveFound(atoms []string, input string) []uint64 {
	found := make([]uint64, (len(atoms)+63)/64)
	f := fold(input)
	for i, a := range atoms {
		if strings.Contains(f, a) {
			found[i/64] |= 1 << (i % 64)
		}
	}
	return found
}

var scanAtoms = []string{"select", "union", "sel", "lect", "<", "<script", "k", "ks", "sk", "é", "\x00", "ab", "b", "bab", "/etc/", "%2f"}

func checkScan(t *testing.T, sc *scanner, input string) {
	t.Helper()
	got, want := sc.scanAll(input), naiveFound(scanAtoms, input)
	for i := range scanAtoms {
		g, w := got[i/64]&(1<<(i%64)) != 0, want[i/64]&(1<<(i%64)) != 0
		if g != w {
			t.Errorf("input %q: atom %q found %v, want %v", input, scanAtoms[i], g, w)
		}
	}
}

func TestScanner(t *testing.T) {
	for _, compact := range []bool{false, true} {
		sc := buildScanner(scanAtoms)
		if compact {
			sc.compact()
		}
		if (sc.trans16 != nil) != compact {
			t.Fatalf("compact %v: 16-bit table %v", compact, sc.trans16 != nil)
		}
		testScanner(t, sc)
	}
}

func testScanner(t *testing.T, sc *scanner) {
	for _, in := range []string{
		"", "SELECT * FROM t", "UnIoN sElEcT", "<SCRIPT>", "ÉCOLE école", "\u212as", "\u017fk",
		"\xe2\x84", "\xe2\x84\xaa\xe2\x84\xaa", "\xc5\xbf\xc5", "ababab", "x%2F..%2fetc", "/ETC/passwd", "a\x00b",
	} {
		checkScan(t, sc, in)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"s", "e", "l", "c", "t", "S", "E", "<", "k", "K", "\u212a", "\u017f", "\xe2", "\x84", "\xaa", "\xc5", "\xbf", "a", "b", "é", "É", "/", "%2f", "\x00", " "}
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(16) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		checkScan(t, sc, b.String())
	}
}

func FuzzScanner(f *testing.F) {
	f.Add("SELECT \u212aill <script>")
	sc := newScanner(scanAtoms)
	f.Fuzz(func(t *testing.T, input string) { checkScan(t, sc, input) })
}
