package fastop

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// stubTx is the little of a transaction the operator touches.
type stubTx struct {
	plugintypes.TransactionState
	id        string
	capturing bool
	captured  int
}

func (t *stubTx) ID() string               { return t.id }
func (t *stubTx) Capturing() bool          { return t.capturing }
func (t *stubTx) CaptureField(int, string) { t.captured++ }

// benchRules are the CRS rules that cost Coraza's stock @rx most on the
// bench/ form post (the message field, 3.8 KB of English, lower-cased as
// most CRS rules see it), plus typical cheap ones.
var benchRules = []string{"931130", "942200", "932235", "932260", "942360", "941110", "920470"}

// BenchmarkOperator compares, per pattern, Go's regexp as Coraza's stock
// @rx calls it (MatchString; FindStringSubmatchIndex with capture) with this
// package's operator, and shows what each of its two filters costs alone.
func BenchmarkOperator(b *testing.B) {
	body, err := os.ReadFile("../../bench/workloads/post-body.txt")
	if err != nil {
		b.Fatal(err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		b.Fatal(err)
	}
	message := strings.ToLower(form.Get("message"))
	byID := map[string]rxRule{}
	for _, p := range crsPatterns(b) {
		if _, ok := byID[p.ID]; !ok {
			byID[p.ID] = p
		}
	}
	for _, id := range benchRules {
		p, ok := byID[id]
		if !ok {
			b.Fatalf("no @rx rule %s in the CRS", id)
		}
		re := regexp.MustCompile(flags + p.Pattern)
		op, err := NewRx(plugintypes.OperatorOptions{Arguments: p.Pattern})
		if err != nil {
			b.Fatal(err)
		}
		c := op.(*rxOperator).rxCompiled
		tx := &stubTx{id: "warm", capturing: true}
		op.Evaluate(tx, message) // warm the DFA, as a running server has
		b.Run(id+"/stock-regexp", func(b *testing.B) {
			b.SetBytes(int64(len(message)))
			b.ReportAllocs()
			for b.Loop() {
				re.FindStringSubmatchIndex(message)
			}
		})
		// The first rule of a transaction to see a value pays for the
		// atom scan; the rules after it find the scan done.
		ids := make([]string, 1024)
		for i := range ids {
			ids[i] = fmt.Sprint("tx-", i)
		}
		b.Run(id+"/fastop-first-rule", func(b *testing.B) {
			b.SetBytes(int64(len(message)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tx.id = ids[i%len(ids)]
				i++
				op.Evaluate(tx, message)
			}
		})
		b.Run(id+"/fastop-later-rule", func(b *testing.B) {
			b.SetBytes(int64(len(message)))
			b.ReportAllocs()
			tx.id = "same"
			for b.Loop() {
				op.Evaluate(tx, message)
			}
		})
		if c.automaton() != nil {
			b.Run(id+"/dfa-only", func(b *testing.B) {
				b.SetBytes(int64(len(message)))
				b.ReportAllocs()
				for b.Loop() {
					c.dfa.mayMatch(message)
				}
			})
		}
	}
}

// BenchmarkCombinedScan measures one scan of the form's message for the
// atoms of every CRS pattern at once.
func BenchmarkCombinedScan(b *testing.B) {
	body, err := os.ReadFile("../../bench/workloads/post-body.txt")
	if err != nil {
		b.Fatal(err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		b.Fatal(err)
	}
	message := strings.ToLower(form.Get("message"))
	for _, p := range crsPatterns(b) {
		if _, err := NewRx(plugintypes.OperatorOptions{Arguments: p.Pattern}); err != nil {
			b.Fatal(err)
		}
	}
	atoms.mu.Lock()
	last := uint32(len(atoms.atoms) - 1)
	atoms.mu.Unlock()
	a := atoms.automatonFor(last)
	b.Logf("%d atoms, %d states, %d classes, table %d KiB", a.n, len(a.sc.out), a.sc.classes, a.sc.tableBytes()/1024)
	b.SetBytes(int64(len(message)))
	b.ReportAllocs()
	for b.Loop() {
		a.sc.scanAll(message)
	}
}
