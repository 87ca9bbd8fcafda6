//go:build !coraza.rule.no_regex_multiline

package fastop

// flags is what Coraza prepends to every @rx pattern in a default build:
// dot matches newline, and ^ and $ match at line breaks. Coraza's
// coraza.rule.no_regex_multiline build tag drops the m; so does ours.
const flags = "(?sm)"
