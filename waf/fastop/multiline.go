//go:build coraza.rule.no_regex_multiline

package fastop

// flags is what Coraza prepends to every @rx pattern when built with
// coraza.rule.no_regex_multiline: dot matches newline, ^ and $ match only
// at the ends of the input.
const flags = "(?s)"
