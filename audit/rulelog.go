package audit

import (
	"fmt"
	"strconv"
	"strings"
)

// RuleLogSink writes one ModSecurity-style error-log line per matched rule:
//
//	2026-11-26T10:00:00Z [client 127.0.0.1] [id "942100"] [msg "..."] [data "..."] [severity "critical"] [tag "..."] [uri "/x"] [unique_id "..."]
//
// Tools built for ModSecurity's error log (fail2ban filters, the CRS project's
// go-ftw test runner) read it unchanged. Values are escaped so that a request
// cannot forge a field or a line. It gets every record, aggregation or not
// (see Synchronous), and recovers from a full disk as FileSink does.
type RuleLogSink struct {
	file     *lineFile
	line     []byte
	repaired int64
}

// OpenRuleLogSink opens (creating 0600 if needed) the rule log at path. A
// torn last line is cut off (see Repaired).
func OpenRuleLogSink(path string) (*RuleLogSink, error) {
	lf, repaired, err := openLineFile(path)
	if err != nil {
		return nil, fmt.Errorf("open rule log %s: %w", path, err)
	}
	return &RuleLogSink{file: lf, repaired: repaired}, nil
}

// Repaired is how many bytes of a torn last line opening cut off.
func (s *RuleLogSink) Repaired() int64 { return s.repaired }

// WritesSynchronously makes the Writer write the rule log before the
// request's response ends (see Synchronous).
func (s *RuleLogSink) WritesSynchronously() {}

// SinkName labels the sink in metrics and logs.
func (s *RuleLogSink) SinkName() string { return "rule_log" }

// Write queues one line per matched rule of e for the next Flush.
func (s *RuleLogSink) Write(e *Entry) error {
	for i := range e.Rules {
		s.line = AppendRuleLogLine(s.line[:0], e, &e.Rules[i])
		s.file.writeLine(s.line)
	}
	return nil
}

// Flush writes the queued lines to the file.
func (s *RuleLogSink) Flush() error {
	if err := s.file.flush(); err != nil {
		return fmt.Errorf("write rule log %s: %w", s.file.path, err)
	}
	return nil
}

// Probe checks that the log's directory takes writes again.
func (s *RuleLogSink) Probe() error { return s.file.probe() }

// Close flushes and closes the file.
func (s *RuleLogSink) Close() error {
	if err := s.file.close(); err != nil {
		return fmt.Errorf("close rule log %s: %w", s.file.path, err)
	}
	return nil
}

// AppendRuleLogLine appends the log line for rule r of entry e, newline included.
func AppendRuleLogLine(b []byte, e *Entry, r *MatchedRule) []byte {
	b = e.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, " [client "...)
	b = appendEscaped(b, e.ClientIP)
	b = append(b, "] Portcullis: "...)
	if e.Action == ActionBlocked && e.Stage == StageWAF {
		b = append(b, "Access denied. "...)
	} else {
		b = append(b, "Warning. "...)
	}
	b = appendField(b, "id", strconv.Itoa(r.ID))
	b = appendField(b, "msg", r.Message)
	b = appendField(b, "data", r.Data)
	if r.MatchedVariable != "" {
		b = appendField(b, "variable", r.MatchedVariable)
	}
	b = appendField(b, "severity", r.Severity)
	for _, t := range r.Tags {
		b = appendField(b, "tag", t)
	}
	b = appendField(b, "hostname", e.Host)
	b = appendField(b, "uri", e.URI)
	b = appendField(b, "unique_id", e.ID)
	b[len(b)-1] = '\n' // replace the trailing space of the last field
	return b
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, '[')
	b = append(b, name...)
	b = append(b, ` "`...)
	b = appendEscaped(b, value)
	return append(b, `"] `...)
}

// appendEscaped escapes quotes, backslashes and control characters so one
// request value stays inside its field and on its line.
func appendEscaped(b []byte, s string) []byte {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' || r == 0x7f }) {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, `\x`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}
