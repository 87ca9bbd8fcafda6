//go:build portcullis_stock_operators

package fastop

// Name says which operators serve: with the build tag
// portcullis_stock_operators, Coraza's own.
const Name = "stock Coraza operators (built with portcullis_stock_operators)"

// Register does nothing in this build: Coraza's own operators stay.
func Register() {}

// Registered reports whether Register has replaced Coraza's operators:
// never, in this build.
func Registered() bool { return false }
