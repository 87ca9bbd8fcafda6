package fastop

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"unicode/utf8"

	ahocorasick "github.com/petar-dambovaliev/aho-corasick"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// pmOperator is @pm, @pmFromFile and @pmf: the dictionary matcher built
// with the Aho-Corasick library and options Coraza v3.8.1 uses, so that
// matches and captures (its leftmost-longest iteration, up to ten) are
// Coraza's own; in front of it, the shared atom scan (atoms.go), which
// says whether any word of the dictionary occurs at all. Without one, the
// matcher (which also copies the value into a byte slice on every call) is
// not run.
type pmOperator struct {
	*pmCompiled
}

type pmCompiled struct {
	matcher ahocorasick.AhoCorasick
	minLen  int        // shortest word: shorter values cannot match
	pf      *prefilter // nil: some word makes a prefilter unsound or useless
}

// NewPm is the @pm operator factory: the argument is a space-separated list
// of words, matched case-insensitively (ASCII).
func NewPm(options plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	data := strings.ToLower(options.Arguments)
	words := strings.Split(data, " ")
	v, _ := memoize(options.Memoizer, memoKey+"pm:"+data, func() (any, error) {
		return newPmCompiled(words, true), nil
	})
	return &pmOperator{v.(*pmCompiled)}, nil
}

// NewPmFromFile is the @pmFromFile (and @pmf) operator factory: the words
// are the lines of a file (blank lines and # comments skipped), looked up
// as Coraza looks it up.
func NewPmFromFile(options plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	file := options.Arguments
	data, err := readDataFile(file, options.Path, options.Root)
	if err != nil {
		return nil, err
	}
	var words []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		words = append(words, strings.ToLower(l))
	}
	v, _ := memoize(options.Memoizer, memoKey+"pmf:"+strings.Join(options.Path, ",")+file, func() (any, error) {
		return newPmCompiled(words, false), nil
	})
	return &pmOperator{v.(*pmCompiled)}, nil
}

func newPmCompiled(words []string, dfa bool) *pmCompiled {
	b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{
		AsciiCaseInsensitive: true,
		MatchOnlyWholeWords:  false,
		MatchKind:            ahocorasick.LeftMostLongestMatch,
		DFA:                  dfa,
	})
	c := &pmCompiled{matcher: b.Build(words), minLen: shortest(words)}
	c.pf = pmPrefilter(words)
	return c
}

// pmPrefilter is "one of the words occurs", in the terms of the atom scan,
// or nil when that would be unsound or useless:
//   - an empty word matches everywhere;
//   - a word that is not valid UTF-8 could start inside a multi-byte
//     sequence that the scan folds to one letter (see fold.go), and be
//     missed; the library compares bytes, folding ASCII letters only, which
//     the scan's folding covers for valid UTF-8;
//   - a word of one letter, digit or white space occurs in nearly any text.
//
// Words longer than maxAtomLen are cut, as prune does.
func pmPrefilter(words []string) *prefilter {
	c := &cond{op: condOr}
	for _, w := range words {
		if w == "" || !utf8.ValidString(w) {
			return nil
		}
		c.subs = append(c.subs, &cond{op: condAtom, atom: fold(w)})
	}
	if len(c.subs) == 0 {
		return nil
	}
	pruned := prune(c)
	if pruned.op == condAll {
		return nil
	}
	return newPrefilter(pruned)
}

func shortest(words []string) int {
	n := 0
	for _, w := range words {
		if w == "" {
			return 0
		}
		if n == 0 || len(w) < n {
			n = len(w)
		}
	}
	return n
}

// Evaluate answers as Coraza's @pm does: without capture, whether a word
// occurs; with capture, the first ten matches of the library's iteration
// go to TX.0-TX.9.
func (o *pmOperator) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if len(value) < o.minLen {
		return false
	}
	if o.pf != nil && !o.pf.mayMatch(tx.ID(), value) {
		return false
	}
	it := o.matcher.Iter(value)
	if !tx.Capturing() {
		return it.Next() != nil
	}
	n := 0
	for m := it.Next(); m != nil; m = it.Next() {
		tx.CaptureField(n, value[m.Start():m.End()])
		n++
		if n == 10 {
			break
		}
	}
	return n > 0
}

// errNoDirs is Coraza's error for a relative data file with no directory
// to look in.
var errNoDirs = errors.New("empty dirs")

// readDataFile finds a data file as Coraza does: an absolute path in root,
// else the first of dirs (the including file's directory, then the
// working directory) that has it.
func readDataFile(file string, dirs []string, root fs.FS) ([]byte, error) {
	if path.IsAbs(file) {
		return fs.ReadFile(root, file)
	}
	if len(dirs) == 0 {
		return nil, errNoDirs
	}
	var err error
	for _, dir := range dirs {
		var data []byte
		data, err = fs.ReadFile(root, path.Join(dir, file))
		if err == nil {
			return data, nil
		}
		if !os.IsNotExist(err) {
			return nil, err
		}
	}
	return nil, err
}

var (
	_ plugintypes.Operator        = (*pmOperator)(nil)
	_ plugintypes.OperatorFactory = NewPm
	_ plugintypes.OperatorFactory = NewPmFromFile
)
