package decode

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// ValueKind says what a walked JSON item is.
type ValueKind uint8

// Kinds of JSON items yielded by Walker.
const (
	KindString ValueKind = iota + 1 // a string value
	KindNumber                      // a number value, as written
	KindKey                         // an object member name
)

// Walker streams a JSON document's strings, numbers and keys with their
// paths, without building the document: one pass, depth and count
// bounded, allocating only for strings that contain escapes (and one path
// buffer). The zero value uses the defaults.
type Walker struct {
	// MaxDepth bounds nesting (default 64); deeper documents end the walk
	// with ErrTooDeep after yielding what came before.
	MaxDepth int
	// MaxValues bounds the items yielded (default 4096).
	MaxValues int
}

// Errors a walk can end with. Values yielded before the error are valid.
var (
	ErrTooDeep   = errors.New("json nesting too deep")
	ErrTooMany   = errors.New("too many json values")
	ErrMalformed = errors.New("malformed json")
)

// Walk calls fn for every key, string and number in doc, in document
// order. path is the dotted path of the item ("user.name", "items.0";
// a key's path ends with the key itself); it is only valid during the
// call. fn returns false to stop. Walk returns nil at the end of a
// well-formed document, or the reason it stopped early.
func (w Walker) Walk(doc string, fn func(path []byte, value string, kind ValueKind) bool) error {
	maxDepth, maxValues := w.MaxDepth, w.MaxValues
	if maxDepth <= 0 {
		maxDepth = 64
	}
	if maxValues <= 0 {
		maxValues = 4096
	}
	st := jwalk{doc: doc, fn: fn, maxDepth: maxDepth, left: maxValues, path: make([]byte, 0, 64)}
	st.ws()
	if err := st.value(0); err != nil {
		if err == errStop {
			return nil
		}
		return err
	}
	st.ws()
	if st.i != len(st.doc) {
		return fmt.Errorf("%w: trailing data at offset %d", ErrMalformed, st.i)
	}
	return nil
}

var errStop = errors.New("stopped")

type jwalk struct {
	doc      string
	i        int
	fn       func([]byte, string, ValueKind) bool
	maxDepth int
	left     int
	path     []byte
}

func (s *jwalk) ws() {
	for s.i < len(s.doc) {
		switch s.doc[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *jwalk) malformed(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrMalformed, what, s.i)
}

func (s *jwalk) emit(v string, k ValueKind) error {
	if s.left <= 0 {
		return ErrTooMany
	}
	s.left--
	if !s.fn(s.path, v, k) {
		return errStop
	}
	return nil
}

func (s *jwalk) value(depth int) error {
	if s.i >= len(s.doc) {
		return s.malformed("unexpected end")
	}
	switch c := s.doc[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		v, err := s.str()
		if err != nil {
			return err
		}
		return s.emit(v, KindString)
	case c == '-' || ('0' <= c && c <= '9'):
		j := s.i
		for s.i < len(s.doc) && isNumByte(s.doc[s.i]) {
			s.i++
		}
		return s.emit(s.doc[j:s.i], KindNumber)
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(s.doc)-s.i >= len(lit) && s.doc[s.i:s.i+len(lit)] == lit {
				s.i += len(lit)
				return nil
			}
		}
		return s.malformed("unexpected byte")
	}
}

func isNumByte(c byte) bool {
	return ('0' <= c && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func (s *jwalk) push(seg string) int {
	mark := len(s.path)
	if mark > 0 {
		s.path = append(s.path, '.')
	}
	s.path = append(s.path, seg...)
	return mark
}

func (s *jwalk) object(depth int) error {
	if depth > s.maxDepth {
		return ErrTooDeep
	}
	s.i++ // {
	s.ws()
	if s.i < len(s.doc) && s.doc[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if s.i >= len(s.doc) || s.doc[s.i] != '"' {
			return s.malformed("expected member name")
		}
		k, err := s.str()
		if err != nil {
			return err
		}
		mark := s.push(k)
		if err := s.emit(k, KindKey); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.doc) || s.doc[s.i] != ':' {
			return s.malformed("expected ':'")
		}
		s.i++
		s.ws()
		if err := s.value(depth); err != nil {
			return err
		}
		s.path = s.path[:mark]
		s.ws()
		if s.i >= len(s.doc) {
			return s.malformed("unexpected end")
		}
		switch s.doc[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.malformed("expected ',' or '}'")
		}
	}
}

func (s *jwalk) array(depth int) error {
	if depth > s.maxDepth {
		return ErrTooDeep
	}
	s.i++ // [
	s.ws()
	if s.i < len(s.doc) && s.doc[s.i] == ']' {
		s.i++
		return nil
	}
	var num [20]byte
	for n := 0; ; n++ {
		mark := s.push(string(strconv.AppendInt(num[:0], int64(n), 10)))
		s.ws()
		if err := s.value(depth); err != nil {
			return err
		}
		s.path = s.path[:mark]
		s.ws()
		if s.i >= len(s.doc) {
			return s.malformed("unexpected end")
		}
		switch s.doc[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.malformed("expected ',' or ']'")
		}
	}
}

// str reads a string at s.i (on the opening quote). Escape-free strings
// are substrings of doc; others are decoded into a new string.
func (s *jwalk) str() (string, error) {
	s.i++
	j := s.i
	esc := false
	for s.i < len(s.doc) {
		c := s.doc[s.i]
		if c == '"' {
			v := s.doc[j:s.i]
			s.i++
			if esc {
				return unescapeJSON(v), nil
			}
			return v, nil
		}
		if c == '\\' {
			esc = true
			s.i++
		}
		s.i++
	}
	return "", s.malformed("unterminated string")
}

// unescapeJSON decodes the escapes of a JSON string body. Invalid escapes
// are kept as the escaped byte; lone surrogates become U+FFFD.
func unescapeJSON(v string) string {
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' || i+1 >= len(v) {
			b = append(b, c)
			continue
		}
		i++
		switch e := v[i]; e {
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'u':
			if i+4 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) && isHex(v[i+3]) && isHex(v[i+4]) {
				r := hex4(v[i+1:])
				i += 4
				if 0xD800 <= r && r < 0xDC00 && i+6 < len(v) && v[i+1] == '\\' && v[i+2] == 'u' &&
					isHex(v[i+3]) && isHex(v[i+4]) && isHex(v[i+5]) && isHex(v[i+6]) {
					if lo := hex4(v[i+3:]); 0xDC00 <= lo && lo < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
						i += 6
					}
				}
				b = utf8.AppendRune(b, r)
				continue
			}
			b = append(b, e)
		default:
			b = append(b, e)
		}
	}
	return string(b)
}
