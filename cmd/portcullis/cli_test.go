package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestCommandLine: every command parses alike (#13): -h/--help at any level
// prints that command's help to stdout and exits 0; an unknown flag exits 2
// with the error and the usage on stderr; flags may follow arguments.
func TestCommandLine(t *testing.T) {
	cases := []struct {
		args       []string
		code       int
		stdout     string // must contain
		stderr     string // must contain
		notStdout  string // must not contain
		emptyOther bool   // the stream not named stays empty
	}{
		{args: []string{"--help"}, code: 0, stdout: "Usage: portcullis COMMAND [flags]", notStdout: "Usage of run", emptyOther: true},
		{args: []string{"-h"}, code: 0, stdout: "\n  audit replay ", emptyOther: true},
		{args: []string{"help"}, code: 0, stdout: "\n  health ", emptyOther: true},
		{args: []string{}, code: 2, stderr: "portcullis: a command is required"},
		{args: []string{"frobnicate"}, code: 2, stderr: `portcullis: unknown command "frobnicate"`},
		{args: []string{"chek"}, code: 2, stderr: `(did you mean "check"?)`},
		{args: []string{"run", "--help"}, code: 0, stdout: "Usage: portcullis run [flags]", emptyOther: true},
		{args: []string{"run", "-h"}, code: 0, stdout: "--upstream URL", emptyOther: true},
		{args: []string{"check", "--help"}, code: 0, stdout: "-c, --config FILE", emptyOther: true},
		{args: []string{"demo", "--help"}, code: 0, stdout: "--listen ADDRESS", emptyOther: true},
		{args: []string{"version", "--help"}, code: 0, stdout: "Usage: portcullis version", emptyOther: true},
		{args: []string{"health", "--help"}, code: 0, stdout: "--timeout", emptyOther: true},
		{args: []string{"reload", "--help"}, code: 0, stdout: "--admin URL", emptyOther: true},
		{args: []string{"bans", "--help"}, code: 0, stdout: "Usage: portcullis bans COMMAND", emptyOther: true},
		{args: []string{"bans"}, code: 2, stderr: "portcullis bans: a command is required"},
		{args: []string{"bans", "add", "--help"}, code: 0, stdout: "--for duration", emptyOther: true},
		{args: []string{"bans", "add", "192.0.2.8", "--help"}, code: 0, stdout: "Usage: portcullis bans add [flags] ADDRESS|CIDR", emptyOther: true},
		{args: []string{"help", "bans", "add"}, code: 0, stdout: "Usage: portcullis bans add", emptyOther: true},
		{args: []string{"bans", "list", "-h"}, code: 0, stdout: "Usage: portcullis bans list", emptyOther: true},
		{args: []string{"audit", "--help"}, code: 0, stdout: "Usage: portcullis audit COMMAND", emptyOther: true},
		{args: []string{"audit", "search", "--help"}, code: 0, stdout: "--not-stage STAGE", emptyOther: true},
		{args: []string{"audit", "replay", "--help"}, code: 0, stdout: "--candidate FILE", emptyOther: true},
		{args: []string{"audit", "explain", "-h"}, code: 0, stdout: "--any-method", emptyOther: true},
		{args: []string{"run", "--nope"}, code: 2, stderr: "flag provided but not defined: -nope\n\nUsage: portcullis run [flags]"},
		{args: []string{"bans", "add", "--nope", "192.0.2.8"}, code: 2, stderr: "Usage: portcullis bans add"},
		{args: []string{"audit", "tail", "-n", "x"}, code: 2, stderr: `invalid value "x" for flag -n`},
		{args: []string{"bans", "add", "-c", "missing.yaml", "not-an-ip", "--for", "2h"}, code: 2, stderr: `not an address or CIDR: "not-an-ip"`},
		{args: []string{"bans", "add", "192.0.2.8", "--for", "-1h"}, code: 2, stderr: "--for must be positive"},
		{args: []string{"version", "extra"}, code: 2, stderr: `takes no arguments, got "extra"`},
		{args: []string{"--version"}, code: 0, stdout: "portcullis "},
		{args: []string{"check", "-c", "missing.yaml", "--", "--x"}, code: 2, stderr: "give one configuration file"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var o, e bytes.Buffer
			code := run(tc.args, &o, &e)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, o.String(), e.String())
			}
			if !strings.Contains(o.String(), tc.stdout) || !strings.Contains(e.String(), tc.stderr) {
				t.Errorf("stdout %q\nstderr %q\nwant %q / %q", o.String(), e.String(), tc.stdout, tc.stderr)
			}
			if tc.notStdout != "" && strings.Contains(o.String(), tc.notStdout) {
				t.Errorf("stdout has %q", tc.notStdout)
			}
			if tc.emptyOther && tc.stdout != "" && e.Len() > 0 {
				t.Errorf("help wrote to stderr: %q", e.String())
			}
		})
	}
}

// TestFlagsAfterArguments: flags count wherever they are (#13: "bans add -c
// f 192.0.2.8 --for 2h" ignored --for).
func TestFlagsAfterArguments(t *testing.T) {
	c := &command{name: "x"}
	fs := c.newFlags(&bytes.Buffer{})
	dur := fs.String("for", "1h", "")
	file := fs.String("c", "", "")
	pos, code, ok := c.parseFlags(fs, []string{"-c", "f", "192.0.2.8", "--for", "2h", "--", "-literal"}, &bytes.Buffer{}, &bytes.Buffer{})
	if !ok || code != 0 || *dur != "2h" || *file != "f" || strings.Join(pos, " ") != "192.0.2.8 -literal" {
		t.Fatalf("ok %v code %d for %q c %q positional %q", ok, code, *dur, *file, pos)
	}
}
