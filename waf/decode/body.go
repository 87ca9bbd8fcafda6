package decode

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrUnsupportedEncoding is returned for a Content-Encoding the
// decompressor does not know; the caller inspects the body as sent.
var ErrUnsupportedEncoding = errors.New("unsupported content encoding")

// maxEncodingLayers bounds "Content-Encoding: gzip, gzip, …" stacking.
const maxEncodingLayers = 2

// Decompress undoes a request body's Content-Encoding (gzip, x-gzip,
// deflate as zlib or raw, identity; a list is undone last first), reading
// at most max bytes of output. A body that would expand beyond max is cut
// there and truncated is true: a zip bomb costs max bytes, never more.
// The caller decides whether a truncated body is inspected or refused.
func Decompress(contentEncoding string, body []byte, max int64) (out []byte, truncated bool, err error) {
	var encs []string
	for _, e := range strings.Split(contentEncoding, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		if e != "" && e != "identity" {
			encs = append(encs, e)
		}
	}
	if len(encs) == 0 {
		return body, false, nil
	}
	if len(encs) > maxEncodingLayers {
		return nil, false, fmt.Errorf("content encoding %q: %d layers, at most %d: %w", contentEncoding, len(encs), maxEncodingLayers, ErrUnsupportedEncoding)
	}
	cur := body
	for k := len(encs) - 1; k >= 0; k-- {
		var r io.Reader
		switch encs[k] {
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(bytes.NewReader(cur))
			if err != nil {
				return nil, false, fmt.Errorf("gzip body: %w", err)
			}
			zr.Multistream(true)
			r = zr
		case "deflate":
			// HTTP's deflate is zlib-wrapped; some clients send raw
			// deflate. Try the header first.
			if zr, err := zlib.NewReader(bytes.NewReader(cur)); err == nil {
				r = zr
			} else {
				r = flate.NewReader(bytes.NewReader(cur))
			}
		default:
			return nil, false, fmt.Errorf("content encoding %q: %w", encs[k], ErrUnsupportedEncoding)
		}
		var buf bytes.Buffer
		n, err := io.Copy(&buf, io.LimitReader(r, max+1))
		if err != nil {
			return nil, false, fmt.Errorf("%s body: %w", encs[k], err)
		}
		if n > max {
			truncated = true
			cur = buf.Bytes()[:max]
			// A truncated inner layer cannot be decoded further with
			// confidence; stop here.
			return cur, true, nil
		}
		cur = buf.Bytes()
	}
	return cur, truncated, nil
}
