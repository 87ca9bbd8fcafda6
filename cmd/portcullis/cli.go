package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// The command tree. Every command parses its flags with parseFlags, so they
// all behave alike: flags may come before, between and after positional
// arguments; -h or --help prints that command's help to stdout and exits 0;
// an unknown flag or a wrong argument prints the error and the command's
// usage to stderr and exits 2. A flag name means the same everywhere:
// -c/--config is always Portcullis's configuration file.
//
// The standard flag package is kept (no CLI library): the audit filters
// bind to a flag.FlagSet (audit/query.BindFlags), and what a library would
// add on top, the tree and interspersed flags, is this file.

// command is one node of the tree: a leaf runs, a group has subcommands.
type command struct {
	name    string
	args    string // positional arguments in the usage line, e.g. "ID"
	summary string // one line, for the parent's list
	help    string // more text for the command's own help, optional
	run     func(c *command, args []string, stdout, stderr io.Writer) int
	subs    []*command
	parent  *command
}

// path is the command line that reaches c, e.g. "portcullis audit search".
func (c *command) path() string {
	if c.parent == nil {
		return c.name
	}
	return c.parent.path() + " " + c.name
}

// usageLine is "portcullis audit show [flags] ID".
func (c *command) usageLine() string {
	if len(c.subs) > 0 {
		return c.path() + " COMMAND [flags]"
	}
	s := c.path() + " [flags]"
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// printHelp writes the help of c: usage, description, subcommands or flags.
func (c *command) printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n", c.usageLine())
	if c.summary != "" {
		fmt.Fprintf(w, "\n%s\n", upperFirst(c.summary))
	}
	if c.help != "" {
		fmt.Fprintf(w, "\n%s", c.help)
		if !strings.HasSuffix(c.help, "\n") {
			fmt.Fprintln(w)
		}
	}
	if len(c.subs) > 0 {
		fmt.Fprintln(w, "\nCommands:")
		// Every leaf, with the path below c: "audit search", not "audit".
		var rows [][2]string
		var walk func(s *command, prefix string)
		walk = func(s *command, prefix string) {
			if len(s.subs) == 0 {
				rows = append(rows, [2]string{prefix + s.name, s.summary})
				return
			}
			for _, sub := range s.subs {
				walk(sub, prefix+s.name+" ")
			}
		}
		for _, s := range c.subs {
			walk(s, "")
		}
		width := 0
		for _, r := range rows {
			width = max(width, len(r[0]))
		}
		for _, r := range rows {
			fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], r[1])
		}
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for the flags of a command.\n", c.path())
		return
	}
	if fs != nil {
		printFlags(w, fs)
	}
}

// printFlags lists the flags of fs GNU-style (-c, --config FILE), an alias
// ("same as -c") on its flag's line.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	aliases := map[string][]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if primary, ok := strings.CutPrefix(f.Usage, "same as -"); ok {
			aliases[primary] = append(aliases[primary], f.Name)
		}
	})
	dash := func(name string) string {
		if len(name) == 1 {
			return "-" + name
		}
		return "--" + name
	}
	var rows [][2]string
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, "same as -") {
			return
		}
		names := []string{dash(f.Name)}
		for _, a := range aliases[f.Name] {
			names = append(names, dash(a))
		}
		value, usage := flag.UnquoteUsage(f)
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			value = ""
		}
		usage = strings.ReplaceAll(usage, " (also --"+strings.Join(aliases[f.Name], ", --")+")", "")
		left := strings.Join(names, ", ")
		if value != "" {
			left += " " + value
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		rows = append(rows, [2]string{left, usage})
		width = max(width, len(left))
	})
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], r[1])
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// dispatch runs the subcommand named by args[0] of the group c.
func (c *command) dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s: a command is required\n\n", c.path())
		c.printHelp(stderr, nil)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			// "portcullis help audit search": that command's help.
			return c.dispatch(append(args[1:], "--help"), stdout, stderr)
		}
		c.printHelp(stdout, nil)
		return 0
	}
	for _, s := range c.subs {
		if s.name == name {
			if len(s.subs) > 0 {
				return s.dispatch(args[1:], stdout, stderr)
			}
			return s.run(s, args[1:], stdout, stderr)
		}
	}
	msg := fmt.Sprintf("%s: unknown command %q", c.path(), name)
	if strings.HasPrefix(name, "-") {
		msg = fmt.Sprintf("%s: a command must come before flags, got %q", c.path(), name)
	} else if near := c.nearest(name); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	fmt.Fprintf(stderr, "%s\n\n", msg)
	c.printHelp(stderr, nil)
	return 2
}

// nearest names the subcommand closest to a mistyped one.
func (c *command) nearest(name string) string {
	best, bestDist := "", 3
	for _, s := range c.subs {
		if d := levenshtein(name, s.name); d < bestDist {
			best, bestDist = s.name, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// newFlags returns the flag set of the leaf c. Its errors go to stderr;
// parseFlags prints the help.
func (c *command) newFlags(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(c.path(), flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // parseFlags prints the help itself, to the right stream
	return fs
}

// configFlag binds -c and --config, the configuration file, in every command
// that reads one.
func configFlag(fs *flag.FlagSet, p *string, def, usage string) {
	if usage == "" {
		usage = "Portcullis configuration `FILE`"
	}
	fs.StringVar(p, "c", def, usage)
	fs.StringVar(p, "config", def, "same as -c")
}

// parseFlags parses args with flags anywhere among the positional
// arguments (after "--", everything is positional). ok false means the
// command must return code now: 0 after -h/--help (help printed to stdout),
// 2 after a flag error (error and usage printed to stderr).
func (c *command) parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (positional []string, code int, ok bool) {
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.printHelp(stdout, fs)
			return nil, 0, false
		}
		if err != nil {
			fmt.Fprintln(stderr)
			c.printHelp(stderr, fs)
			return nil, 2, false
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), 0, true
		}
		if len(rest) == 0 {
			return positional, 0, true
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usageError prints msg and the usage of c to stderr and returns 2.
func (c *command) usageError(stderr io.Writer, fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s\n\n", c.path(), fmt.Sprintf(format, args...))
	c.printHelp(stderr, fs)
	return 2
}
