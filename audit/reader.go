package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// MaxRecordSize bounds one JSON line when reading; a longer line is reported as
// an error rather than buffered without limit.
const MaxRecordSize = 16 << 20

// ReadResult summarises a read of a JSON-lines audit file.
type ReadResult struct {
	Records int
	// TornTail is true when the last line had no newline and did not parse:
	// the writer was killed mid-line. The line is skipped, not an error.
	TornTail bool
}

// Read decodes every record in r and calls fn for each. A torn last line is
// skipped and reported in the result; a malformed line anywhere else is an
// error naming its line number, because that is corruption, not a crash.
func Read(r io.Reader, fn func(*Entry) error) (ReadResult, error) {
	var res ReadResult
	br := bufio.NewReaderSize(r, 64<<10)
	lineNo := 0
	for {
		line, err := readLine(br)
		if len(line) == 0 && err == io.EOF {
			return res, nil
		}
		if err != nil && err != io.EOF {
			return res, fmt.Errorf("audit line %d: %w", lineNo+1, err)
		}
		lineNo++
		complete := err == nil // a line ending in '\n'
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 {
			if !complete {
				return res, nil
			}
			continue
		}
		var e Entry
		if derr := json.Unmarshal(trimmed, &e); derr != nil {
			if !complete {
				res.TornTail = true
				return res, nil
			}
			return res, fmt.Errorf("audit line %d: %w", lineNo, derr)
		}
		res.Records++
		if ferr := fn(&e); ferr != nil {
			return res, ferr
		}
		if !complete {
			return res, nil
		}
	}
}

// readLine returns one line including its newline (io.EOF when the last line
// lacks one), refusing lines longer than MaxRecordSize.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(out)+len(chunk) > MaxRecordSize {
			return nil, fmt.Errorf("record longer than %d bytes", MaxRecordSize)
		}
		out = append(out, chunk...)
		switch err {
		case nil:
			return out, nil
		case bufio.ErrBufferFull:
			continue
		default:
			return out, err
		}
	}
}
