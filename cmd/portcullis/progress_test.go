//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal pair: what is written to tty is read
// from pty.
func openPTY(t *testing.T) (pty, tty *os.File) {
	t.Helper()
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(pty.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(pty.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return pty, tty
}

// TestProgressOnATerminal: export and replay draw a progress line when
// stderr is a terminal, clear it at the end, and stay silent when stderr
// is not one (#13: long operations printed nothing until the end).
func TestProgressOnATerminal(t *testing.T) {
	fx := newAuditFixture(t)
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 0 // every record: the fixture exports in milliseconds

	pty, tty := openPTY(t)
	defer pty.Close()
	read := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, pty) // ends with EIO once tty is closed
		read <- b.String()
	}()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	code := run([]string{"audit", "export", "--db", fx.db, "-o", out}, io.Discard, tty)
	tty.Close()
	screen := <-read
	if code != 0 {
		t.Fatalf("exit %d: %q", code, screen)
	}
	if !strings.Contains(screen, "\r\x1b[Kexported: 1 records") || !strings.Contains(screen, fmt.Sprintf("exported: %d records", len(fx.entries))) {
		t.Errorf("no progress on the terminal: %q", screen[:min(len(screen), 300)])
	}
	if !strings.Contains(screen, fmt.Sprintf("\r\x1b[K%d record(s) written to %s", len(fx.entries), out)) {
		t.Errorf("the progress line was not cleared before the result: %q", screen[max(0, len(screen)-300):])
	}

	// Not a terminal: nothing but the result.
	var stderr bytes.Buffer
	if code := run([]string{"audit", "export", "--db", fx.db, "-o", out}, io.Discard, &stderr); code != 0 || stderr.String() != fmt.Sprintf("%d record(s) written to %s\n", len(fx.entries), out) {
		t.Errorf("piped: exit %d %q", code, stderr.String())
	}
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if code := run([]string{"audit", "export", "--db", fx.db, "-o", out}, io.Discard, f); code != 0 {
		t.Fatal(code)
	}
	if data, _ := os.ReadFile(f.Name()); strings.Contains(string(data), "exported:") {
		t.Errorf("progress written to a file: %q", data)
	}
}
