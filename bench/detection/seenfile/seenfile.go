// Package seenfile reads and writes the seen-before set of bench/detection
// (issue 15): the identities of every request of a retired corpus, which
// the tuning/held-out split sends to the tuning part. The scoreboard
// (bench/detection) and the detector-only evaluator
// (waf/detect/internal/eval) read the same file through it.
//
// Format: gzip of the line "portcullis detection seen-before v3\n", the
// number of identities as a uvarint, then the identities in ascending
// order as uvarint deltas from the previous one (the first from 0).
package seenfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

const magic = "portcullis detection seen-before v3\n"

// maxIDs bounds the count a file may claim.
const maxIDs = 1 << 24

// Encode returns the file for ids (sorted and deduplicated first).
func Encode(ids []uint64) []byte {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var raw bytes.Buffer
	raw.WriteString(magic)
	raw.Write(binary.AppendUvarint(nil, uint64(len(ids))))
	prev := uint64(0)
	for _, id := range ids {
		raw.Write(binary.AppendUvarint(nil, id-prev))
		prev = id
	}
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	zw.Write(raw.Bytes())
	zw.Close()
	return out.Bytes()
}

// Decode returns the identities of a file Encode wrote, in ascending order.
func Decode(b []byte) ([]uint64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(zr)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != magic {
		return nil, errors.New("not a seen-before file")
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > maxIDs {
		return nil, errors.New("bad count")
	}
	ids := make([]uint64, 0, n)
	prev := uint64(0)
	for i := uint64(0); i < n; i++ {
		d, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, fmt.Errorf("identity %d: %w", i, err)
		}
		prev += d
		ids = append(ids, prev)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return ids, nil
}
