//go:build !portcullis_stock_operators

package fastop

import (
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
)

// Name says which operators Register installs, for version output.
const Name = "fastop (@rx: literal prefilter + DFA + Go regexp; @pm: literal prefilter)"

var (
	once       sync.Once
	registered atomic.Bool
)

// Register makes Coraza use this package's operators for every WAF compiled
// from now on. It is safe to call more than once and from several
// goroutines, but not while a WAF is being compiled on another goroutine
// (Coraza's registry is a plain map).
func Register() {
	once.Do(func() {
		plugins.RegisterOperator("rx", NewRx)
		plugins.RegisterOperator("pm", NewPm)
		plugins.RegisterOperator("pmFromFile", NewPmFromFile)
		plugins.RegisterOperator("pmf", NewPmFromFile)
		registered.Store(true)
	})
}

// Registered reports whether Register has run: from then on, Coraza's own
// operators can no longer be compiled in this process (benchmarks that
// compare the two need to know).
func Registered() bool { return registered.Load() }
