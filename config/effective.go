package config

import (
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// Masked replaces every secret in Effective's output.
const Masked = "[masked]"

// Effective returns the configuration in force as a JSON-ready document
// shaped like the YAML file (the fields as written, placeholders expanded,
// defaults not filled in), with every secret replaced by Masked:
//   - fields tagged secret:"value" (password hashes, token hashes, the
//     EAB HMAC key, the Redis password, alert webhook URLs, which carry
//     their token in the path);
//   - in maps tagged secret:"headers" (header edits, webhook headers), the
//     values of credential-like headers (Authorization, Cookie, *token*,
//     *key*, *secret*, *auth*, *session*, *signature*, *password*);
//   - every field whose value came from {env.NAME} or {file.PATH};
//   - in every other string, the password of a URL (a DSN such as
//     postgres://user:pw@db/x, redis://:pw@host) and password=... or
//     secret=... pairs of a key/value DSN.
//
// It returns nil for a Config that was not loaded from a file (the
// built-in defaults): there is no document.
func (c *Config) Effective() map[string]any {
	if c == nil || c.document == nil {
		return nil
	}
	m := &masker{secret: c.secretPaths}
	out, _ := m.value(reflect.ValueOf(*c.document), "", "").(map[string]any)
	return out
}

type masker struct {
	secret map[string]bool
}

var (
	durationType = reflect.TypeOf(Duration(0))
	byteSizeType = reflect.TypeOf(ByteSize(0))
	adminAuthTyp = reflect.TypeOf(AdminAuth{})

	credentialHeader = regexp.MustCompile(`(?i)authorization|cookie|token|key|secret|auth|session|signature|password|credential`)
	dsnSecretPair    = regexp.MustCompile(`(?i)\b(password|passwd|pwd|secret|token)=('[^']*'|\S+)`)
)

// fromPlaceholder reports whether path or a field containing it held a
// placeholder (a Target written as one URL string is masked as a whole).
func (m *masker) fromPlaceholder(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if m.secret[p] {
			return true
		}
	}
	return false
}

// value converts v (at field path, with the field's secret tag) into JSON
// data; nil means "omit": unset optional fields are left out.
func (m *masker) value(v reflect.Value, path, tag string) any {
	if m.fromPlaceholder(path) && path != "" && isLeafKind(v) {
		if isZero(v) {
			return nil
		}
		return Masked
	}
	switch v.Type() {
	case durationType:
		return time.Duration(v.Int()).String()
	case byteSizeType:
		return v.Int()
	case adminAuthTyp:
		if v.FieldByName("None").Bool() {
			return "none"
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return m.value(v.Elem(), path, tag)
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			if x := m.value(v.Field(i), p, f.Tag.Get("secret")); x != nil {
				out[name] = x
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = m.value(v.Index(i), fmt.Sprintf("%s[%d]", path, i), tag)
		}
		return out
	case reflect.Map:
		if v.Len() == 0 {
			return nil
		}
		out := map[string]any{}
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key().String()
			x := m.value(iter.Value(), path+"."+k, "")
			if tag == "headers" && credentialHeader.MatchString(k) {
				x = Masked
			}
			out[k] = x
		}
		return out
	case reflect.String:
		s := v.String()
		if s == "" {
			return nil
		}
		if tag == "value" {
			return Masked
		}
		return maskInline(s)
	case reflect.Bool:
		if !v.Bool() {
			return nil
		}
		if tag == "value" {
			return Masked
		}
		return true
	case reflect.Int, reflect.Int64:
		if tag == "value" {
			return Masked
		}
		return v.Int()
	case reflect.Float64:
		if tag == "value" {
			return Masked
		}
		return v.Float()
	}
	return nil
}

func isLeafKind(v reflect.Value) bool {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return true
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return true
	case reflect.Struct:
		// A Target or AdminAuth written as one scalar is masked whole.
		return v.Type() == reflect.TypeOf(Target{})
	}
	return false
}

func isZero(v reflect.Value) bool {
	return !v.IsValid() || v.IsZero()
}

// maskInline hides the credentials inside an otherwise harmless string: a
// URL's password and the secret pairs of a key/value DSN.
func maskInline(s string) string {
	if strings.Contains(s, "://") && strings.Contains(s, "@") {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
				s = strings.Replace(u.String(), "xxxxx", Masked, 1)
			}
		}
	}
	return dsnSecretPair.ReplaceAllString(s, "${1}="+Masked)
}
