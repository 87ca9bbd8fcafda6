package reputation

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		want    []string // expected prefixes
		errLine int      // > 0: expect a *ParseError on this line
		errText string
	}{
		{name: "empty", in: "", want: nil},
		{name: "only comments and blanks", in: "# a\n; b\n\n   \n\t\n", want: nil},
		{name: "cidrs", in: "10.0.0.0/8\n2001:db8::/32\n", want: []string{"10.0.0.0/8", "2001:db8::/32"}},
		{name: "bare addresses", in: "192.0.2.1\n2001:db8::1", want: []string{"192.0.2.1/32", "2001:db8::1/128"}},
		{name: "no final newline", in: "10.0.0.0/8", want: []string{"10.0.0.0/8"}},
		{name: "DROP trailing comment", in: "1.2.3.0/24 ; SBL123\n", want: []string{"1.2.3.0/24"}},
		{name: "hash trailing comment", in: "1.2.3.0/24 # note\n", want: []string{"1.2.3.0/24"}},
		{name: "comment without space", in: "1.2.3.0/24;SBL1\n1.2.4.0/24#x\n", want: []string{"1.2.3.0/24", "1.2.4.0/24"}},
		{name: "whitespace", in: "  \t10.0.0.0/8 \t\n", want: []string{"10.0.0.0/8"}},
		{name: "CRLF", in: "10.0.0.0/8\r\n192.0.2.0/24\r\n", want: []string{"10.0.0.0/8", "192.0.2.0/24"}},
		{name: "BOM", in: "\xef\xbb\xbf10.0.0.0/8\n", want: []string{"10.0.0.0/8"}},
		{name: "host bits cleared", in: "192.0.2.77/24\n2001:db8::1/32\n", want: []string{"192.0.2.0/24", "2001:db8::/32"}},
		{name: "edges", in: "0.0.0.0/0\n::/0\n255.255.255.255/32\n", want: []string{"0.0.0.0/0", "::/0", "255.255.255.255/32"}},
		{name: "mapped kept as written", in: "::ffff:192.0.2.0/120\n", want: []string{"::ffff:192.0.2.0/120"}},
		{name: "upper-case IPv6", in: "2001:DB8::/32\n", want: []string{"2001:db8::/32"}},
		{name: "duplicates kept", in: "10.0.0.0/8\n10.0.0.0/8\n", want: []string{"10.0.0.0/8", "10.0.0.0/8"}},
		{name: "at max entries", in: "10.0.0.0/8\n11.0.0.0/8\n# end\n", max: 2, want: []string{"10.0.0.0/8", "11.0.0.0/8"}},

		{name: "garbage", in: "10.0.0.0/8\nhello\n", errLine: 2, errText: "not an IP address or CIDR"},
		{name: "bad octet", in: "# x\n\n1.2.3.999/24\n", errLine: 3, errText: "not a CIDR"},
		{name: "bad length", in: "10.0.0.0/33\n", errLine: 1, errText: "not a CIDR"},
		{name: "leading zeros", in: "010.0.0.1\n", errLine: 1},
		{name: "range", in: "1.2.3.4-1.2.3.9\n", errLine: 1},
		{name: "two entries on a line", in: "1.2.3.4 1.2.3.5\n", errLine: 1, errText: "unexpected text \"1.2.3.5\""},
		{name: "zone", in: "fe80::1%eth0\n", errLine: 1, errText: "zone"},
		{name: "zone in cidr", in: "fe80::1%eth0/64\n", errLine: 1},
		{name: "HTML error page", in: "<html><body>Rate limited</body></html>\n", errLine: 1},
		{name: "too many entries", in: "10.0.0.0/8\n11.0.0.0/8\n12.0.0.0/8\n", max: 2, errLine: 3, errText: "more than 2 entries"},
		{name: "line too long", in: "10.0.0.0/8\n#" + strings.Repeat("x", MaxLineLength) + "\n", errLine: 2, errText: "longer than"},
		{name: "line too long at EOF", in: strings.Repeat("1", MaxLineLength+10), errLine: 1, errText: "longer than"},
		{name: "NUL", in: "10.0.0.0/8\x00\n", errLine: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseList(strings.NewReader(tt.in), tt.max)
			if tt.errLine > 0 {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Line != tt.errLine {
					t.Fatalf("ParseList = %v, %v; want a ParseError on line %d", got, err, tt.errLine)
				}
				if !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d: ", tt.errLine)) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error %q does not name line %d and %q", err, tt.errLine, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseList: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseList = %v, want %v", got, tt.want)
			}
			for i, w := range tt.want {
				if got[i] != netip.MustParsePrefix(w) {
					t.Errorf("entry %d = %s, want %s", i, got[i], w)
				}
			}
		})
	}
}

func TestParseListLongCommentWithinLimit(t *testing.T) {
	in := "#" + strings.Repeat("x", MaxLineLength-1) + "\r\n10.0.0.0/8\n"
	got, err := ParseList(strings.NewReader(in), 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("a %d-byte line was refused: %v %v", MaxLineLength, got, err)
	}
}

// failingReader returns data and then an I/O error, like a dropped download.
type failingReader struct{ data string }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, errors.New("connection reset")
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestParseListReadError(t *testing.T) {
	_, err := ParseList(&failingReader{"10.0.0.0/8\n11.0."}, 0)
	if err == nil || !strings.Contains(err.Error(), "connection reset") || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("read error = %v, want it with the line it stopped on", err)
	}
}

func TestParseSamples(t *testing.T) {
	tests := []struct {
		file    string
		entries int
		in, out []string // addresses on and off the list
	}{
		{"firehol_sample.netset", 9, []string{"10.1.2.3", "198.51.100.7", "203.0.113.190", "250.1.1.1"}, []string{"198.51.100.8", "203.0.113.200", "11.0.0.1"}},
		{"drop_sample.txt", 4, []string{"192.0.2.9", "203.0.113.100"}, []string{"203.0.113.1", "2001:db8::1"}},
		{"dropv6_sample.txt", 3, []string{"2001:db8::1", "3fff::1"}, []string{"2001:db9::1", "192.0.2.1"}},
		{"mixed_sample.txt", 5, []string{"192.0.2.1", "2001:db8::1", "198.51.100.200", "::ffff:203.0.113.5", "203.0.113.5", "2001:db8:abcd::9"}, []string{"192.0.2.2", "2001:db8::2"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			entries, err := ParseList(f, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != tt.entries {
				t.Fatalf("%d entries, want %d: %v", len(entries), tt.entries, entries)
			}
			s := NewSet(entries)
			for _, a := range tt.in {
				if _, ok := s.Lookup(netip.MustParseAddr(a)); !ok {
					t.Errorf("%s not matched", a)
				}
			}
			for _, a := range tt.out {
				if p, ok := s.Lookup(netip.MustParseAddr(a)); ok {
					t.Errorf("%s matched %s", a, p)
				}
			}
		})
	}
}

// FuzzParseList feeds arbitrary bytes to the list parser, which reads
// attacker-reachable input (a feed on the network). It must not panic, must
// respect its bounds, must return only valid masked prefixes, and what it
// accepts must read back the same when written out one per line.
func FuzzParseList(f *testing.F) {
	samples, _ := filepath.Glob("testdata/*_sample.*")
	for _, s := range samples {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data, 0)
		}
	}
	f.Add([]byte("1.2.3.0/24 ; SBL123\n2001:db8::/32 # x\r\n\xef\xbb\xbf"), 2)
	f.Add([]byte("fe80::1%eth0\n"), 0)
	f.Add([]byte("::ffff:1.2.3.4/104\n1.2.3.4/0\n"), 1)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max %= 1000
		entries, err := ParseList(strings.NewReader(string(data)), max)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		bound := max
		if bound <= 0 {
			bound = DefaultMaxEntries
		}
		if len(entries) > bound {
			t.Fatalf("%d entries, bound %d", len(entries), bound)
		}
		var b strings.Builder
		for _, p := range entries {
			if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" {
				t.Fatalf("bad entry %v", p)
			}
			b.WriteString(p.String() + "\n")
		}
		again, err := ParseList(strings.NewReader(b.String()), max)
		if err != nil || len(again) != len(entries) {
			t.Fatalf("round trip: %v, %d vs %d entries", err, len(again), len(entries))
		}
		for i := range again {
			if again[i] != entries[i] {
				t.Fatalf("round trip entry %d: %s vs %s", i, again[i], entries[i])
			}
		}
		NewSet(entries) // must not panic
	})
}
