package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// lineFile appends whole lines to a file. Lines wait in memory until flush,
// which hands them to the file in one write, so a reader tailing the file (a
// log shipper, go-ftw) only ever sees whole records:
//
//   - A failed write (a full disk) loses the lines of that flush, and what
//     part of them reached the file is cut off again, so the file still ends
//     with a whole line and holds no record the Writer counted as lost. The
//     next flush starts afresh: there is no sticky error as in a
//     bufio.Writer, so the file works again as soon as there is room.
//   - Opening a file whose last line has no newline (the process died in the
//     middle of a write) cuts that torn tail off, so the next record does not
//     run into it.
//
// When a partial line cannot be cut off (the file is append-only, say), the
// next write starts with a newline instead: the torn part becomes one
// malformed line of its own, which readers skip or report, and every later
// record is whole.
type lineFile struct {
	path      string
	f         *os.File
	buf       []byte // whole lines not yet in the file
	terminate bool   // the file ends in a partial line that could not be cut
}

// maxTornScan bounds how far back opening looks for the last newline. A
// file whose last 64 MiB hold none is not a torn audit file (the writer
// never writes that much in one go): its tail is terminated, not cut.
const maxTornScan = 64 << 20

// openLineFile opens path for appending (creating it 0600) and repairs a torn
// tail. repaired is how many bytes were cut off (or 1 when a newline was
// added instead).
func openLineFile(path string) (lf *lineFile, repaired int64, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, err
	}
	lf = &lineFile{path: path, f: f}
	repaired, err = lf.repairTail()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("repair torn last line: %w", err)
	}
	return lf, repaired, nil
}

// repairTail cuts a last line that lacks its newline.
func (l *lineFile) repairTail() (int64, error) {
	fi, err := l.f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if size == 0 || !fi.Mode().IsRegular() {
		return 0, nil
	}
	var last [1]byte
	if _, err := l.f.ReadAt(last[:], size-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		return 0, nil
	}
	chunk := make([]byte, 64<<10)
	for end := size; end > 0 && size-end < maxTornScan; {
		n := min(int64(len(chunk)), end)
		off := end - n
		if _, err := l.f.ReadAt(chunk[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk[:n], '\n'); i >= 0 {
			keep := off + int64(i) + 1
			return size - keep, l.f.Truncate(keep)
		}
		end = off
		if end == 0 {
			// No newline at all: one torn record is the whole file.
			return size, l.f.Truncate(0)
		}
	}
	l.terminate = true
	return 1, nil
}

// writeLine queues one complete line (ending in '\n') for the next flush.
func (l *lineFile) writeLine(line []byte) {
	l.buf = append(l.buf, line...)
}

// flush writes the queued lines. On error they are dropped (the caller
// counts them lost) and any part of them that reached the file is cut off.
func (l *lineFile) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	data := l.buf
	if l.terminate {
		data = append([]byte{'\n'}, l.buf...)
	}
	n, err := l.f.Write(data)
	l.reset()
	if err == nil {
		l.terminate = false
		return nil
	}
	if n > 0 {
		if cerr := l.cut(int64(n)); cerr != nil {
			l.terminate = true
			return errors.Join(err, fmt.Errorf("cut the partial write: %w", cerr))
		}
	}
	return err
}

// cut removes the last n bytes, which one failed write appended.
func (l *lineFile) cut(n int64) error {
	fi, err := l.f.Stat()
	if err != nil {
		return err
	}
	return l.f.Truncate(max(fi.Size()-n, 0))
}

// reset empties the buffer, letting go of one that a burst made large.
func (l *lineFile) reset() {
	if cap(l.buf) > 4<<20 {
		l.buf = nil
		return
	}
	l.buf = l.buf[:0]
}

func (l *lineFile) close() error { return errors.Join(l.flush(), l.f.Close()) }

// probe checks that the file's directory takes writes again.
func (l *lineFile) probe() error { return ProbeDir(filepath.Dir(l.path)) }

// probeBytes is how much ProbeDir writes: as much as a large record.
const probeBytes = 64 << 10

// ProbeDir checks whether a directory accepts a write of a large record's
// size, by writing and removing a small hidden file in it. A sink that
// failed (a full disk) uses it to notice that space is back without
// writing a record (see Prober).
func ProbeDir(dir string) error {
	f, err := os.CreateTemp(dir, ".portcullis-probe-*")
	if err != nil {
		return fmt.Errorf("probe %s: %w", dir, err)
	}
	_, werr := f.Write(make([]byte, probeBytes))
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("probe %s: %w", dir, err)
	}
	return nil
}
