package reputation

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// MaxLineLength bounds one line of a list, comments included. Real lists
// have lines of a few dozen bytes; a longer line means the input is not a
// list (an HTML error page, a binary file).
const MaxLineLength = 4096

// DefaultMaxEntries is the entry bound used when a caller passes 0. A
// million prefixes cost about 20 MiB as a Set.
const DefaultMaxEntries = 1_000_000

// ParseError is a malformed list line. Line counts from 1.
type ParseError struct {
	Line int
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *ParseError) Unwrap() error { return e.Err }

// ParseList reads a list of IP addresses and CIDRs, one per line, as
// published by FireHOL (.netset, .ipset), Spamhaus DROP/EDROP (the text
// format, "1.2.3.0/24 ; SBL123") and most blocklists:
//
//   - a line holds one IPv4 or IPv6 address or CIDR; a bare address is a
//     /32 or /128;
//   - "#" and ";" start a comment, on a line of its own or after the entry;
//   - blank lines, surrounding spaces and tabs, CRLF line ends and a leading
//     UTF-8 byte order mark are ignored;
//   - host bits in a CIDR are cleared: "1.2.3.4/24" is read as 1.2.3.0/24,
//     which is what firewalls do with it and what the publisher means: the
//     whole network. Zones ("fe80::1%eth0"), address ranges, leading zeros
//     in IPv4 ("010.0.0.1", ambiguous octal) and any other text are errors.
//
// A malformed line fails the whole list with a *ParseError naming the line:
// a feed that is partly garbage is not trusted partly. So does a line longer
// than MaxLineLength or more than maxEntries entries (0 means
// DefaultMaxEntries). Duplicates are returned as they appear; NewSet
// removes them.
func ParseList(r io.Reader, maxEntries int) ([]netip.Prefix, error) {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	// ReadSlice needs the newline to fit in the buffer as well.
	br := bufio.NewReaderSize(r, MaxLineLength+2)
	var out []netip.Prefix
	for line := 1; ; line++ {
		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, &ParseError{line, fmt.Errorf("longer than %d bytes", MaxLineLength)}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read line %d: %w", line, err)
		}
		if line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
		}
		if len(bytes.TrimRight(raw, "\r\n")) > MaxLineLength {
			return nil, &ParseError{line, fmt.Errorf("longer than %d bytes", MaxLineLength)}
		}
		p, ok, perr := parseEntry(string(raw))
		if perr != nil {
			return nil, &ParseError{line, perr}
		}
		if ok {
			if len(out) == maxEntries {
				return nil, &ParseError{line, fmt.Errorf("more than %d entries", maxEntries)}
			}
			out = append(out, p)
		}
		if err != nil { // io.EOF after the last line
			return out, nil
		}
	}
}

// parseEntry parses one list line. ok is false for a blank or comment line.
func parseEntry(line string) (p netip.Prefix, ok bool, err error) {
	if i := strings.IndexAny(line, "#;"); i >= 0 {
		line = line[:i]
	}
	fields := strings.Fields(line)
	switch len(fields) {
	case 0:
		return netip.Prefix{}, false, nil
	case 1:
	default:
		return netip.Prefix{}, false, fmt.Errorf("unexpected text %q after the address (one entry per line)", fields[1])
	}
	p, err = parsePrefix(fields[0])
	return p, err == nil, err
}

// parsePrefix parses one address or CIDR: host bits cleared, a bare
// address as a single-address prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an IP address or CIDR: %w", err)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q has a zone; lists hold global addresses", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
