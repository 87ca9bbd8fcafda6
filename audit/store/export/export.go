// Package export writes audit records for other tools: JSON lines as
// stored, CSV for spreadsheets, and OCSF 1.1 "HTTP Activity" events for
// SIEMs. The CLI's `audit export` and the dashboard's download use it.
//
// Place in the request path: none. It reads finished audit records.
package export

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// Formats are the names New accepts.
var Formats = []string{"jsonl", "csv", "ocsf"}

// Writer writes records in one format. Close flushes; it does not close the
// underlying writer.
type Writer interface {
	Write(e *audit.Entry) error
	Close() error
}

// Options describe the producer for formats that name it.
type Options struct {
	// Version is Portcullis's version, for OCSF metadata.product.version.
	Version string
}

// New returns a Writer for format (one of Formats) on w.
func New(format string, w io.Writer, opts Options) (Writer, error) {
	switch format {
	case "jsonl":
		return &jsonWriter{enc: newEncoder(w)}, nil
	case "ocsf":
		return &jsonWriter{enc: newEncoder(w), conv: func(e *audit.Entry) any { return OCSF(e, opts.Version) }}, nil
	case "csv":
		c := &csvWriter{w: csv.NewWriter(w)}
		return c, nil
	}
	return nil, fmt.Errorf("unknown export format %q (want %s)", format, strings.Join(Formats, ", "))
}

func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

type jsonWriter struct {
	enc  *json.Encoder
	conv func(*audit.Entry) any
}

func (j *jsonWriter) Write(e *audit.Entry) error {
	var v any = e
	if j.conv != nil {
		v = j.conv(e)
	}
	if err := j.enc.Encode(v); err != nil {
		return fmt.Errorf("export record %s: %w", e.ID, err)
	}
	return nil
}

func (j *jsonWriter) Close() error { return nil }

// CSVHeader is the first row of a CSV export.
var CSVHeader = []string{
	"time", "id", "client_ip", "country", "asn", "host", "method", "uri", "protocol", "status",
	"action", "stage", "reason", "waf_mode", "inbound_anomaly_score", "outbound_anomaly_score",
	"rule_ids", "user_agent", "bytes_sent", "duration_us", "upstream", "site", "route",
}

type csvWriter struct {
	w      *csv.Writer
	header bool
}

func (c *csvWriter) Write(e *audit.Entry) error {
	if !c.header {
		c.header = true
		if err := c.w.Write(CSVHeader); err != nil {
			return fmt.Errorf("export csv: %w", err)
		}
	}
	ids := make([]string, 0, len(e.Rules))
	for _, r := range e.Rules {
		if s := strconv.Itoa(r.ID); !slices.Contains(ids, s) {
			ids = append(ids, s)
		}
	}
	row := []string{
		e.Time.UTC().Format(time.RFC3339Nano), e.ID, e.ClientIP, e.Country, uintOrEmpty(e.ASN),
		e.Host, e.Method, e.URI, e.Protocol, strconv.Itoa(e.Status),
		e.Action, e.Stage, e.Reason, e.WAFMode, strconv.Itoa(e.InboundScore), strconv.Itoa(e.OutboundScore),
		strings.Join(ids, " "), userAgent(e), strconv.FormatInt(e.BytesSent, 10), strconv.FormatInt(e.Durations.Total, 10),
		e.Upstream, e.Site, e.Route,
	}
	for i := range row {
		row[i] = CSVCell(row[i])
	}
	if err := c.w.Write(row); err != nil {
		return fmt.Errorf("export record %s: %w", e.ID, err)
	}
	return nil
}

func (c *csvWriter) Close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("export csv: %w", err)
	}
	return nil
}

// CSVCell defuses spreadsheet formulas: the URI, reason and user agent are
// chosen by whoever sent the request, and a cell starting with = + - @ or a
// tab or carriage return would be run as a formula when the file is opened
// (OWASP "CSV Injection"). Such cells get a leading apostrophe.
func CSVCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func uintOrEmpty(n uint) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(n), 10)
}

func userAgent(e *audit.Entry) string {
	for k, vs := range e.Headers {
		if strings.EqualFold(k, "User-Agent") && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}
