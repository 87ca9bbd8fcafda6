package audit

import (
	"strings"
	"testing"
)

func TestRedactBody(t *testing.T) {
	r := NewRedactor(nil, []string{"pin"})
	const mp = "multipart/form-data; boundary=XyZ"
	tests := []struct {
		name, contentType, body string
		limit                   int
		want                    string
		truncated               bool
	}{
		{"form", "application/x-www-form-urlencoded", "user=ada&password=s3cret&comment=hi", 100, "user=ada&password=[redacted]&comment=hi", false},
		{"form encoded name", "application/x-www-form-urlencoded; charset=utf-8", "pass%77ord=x&PIN=1", 100, "pass%77ord=[redacted]&PIN=[redacted]", false},
		{"form cut", "application/x-www-form-urlencoded", "a=1&password=s3cret", 15, "a=1&password=[redacted]", true},
		{"json flat", "application/json", `{"user": "ada", "password": "s3\"cret", "n": 1}`, 100, `{"user": "ada", "password": "[redacted]", "n": 1}`, false},
		{"json nested and number", "application/json", `{"a":{"token":12345,"b":[1,{"pin":"0000"}]},"c":"password"}`, 100, `{"a":{"token":"[redacted]","b":[1,{"pin":"[redacted]"}]},"c":"password"}`, false},
		{"json composite secret", "application/vnd.api+json", `{"secret": {"k": [1,2]}, "x": true}`, 100, `{"secret": "[redacted]", "x": true}`, false},
		{"json array of objects", "application/json", `[{"password":"a"},{"password":"b"}]`, 100, `[{"password":"[redacted]"},{"password":"[redacted]"}]`, false},
		{"json value equal to key name", "application/json", `{"x":"password","password":"p"}`, 100, `{"x":"password","password":"[redacted]"}`, false},
		{"json cut inside secret", "application/json", `{"user":"ada","password":"s3cr`, 100, `{"user":"ada","password"`, true},
		{"json invalid", "application/json", `{"user" 1}`, 100, `{"user"`, true},
		{"multipart", mp, "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nada\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\ns3cret\r\n--XyZ--\r\n", 1000,
			"--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nada\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n[redacted]\r\n--XyZ--\r\n", false},
		{"multipart cut in secret", mp, "--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\ns3cret and more", 1000,
			"--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n[redacted]", true},
		{"json nested secret name", "application/json", `{"user":{"password":"p"},"api_key":"k"}`, 100, `{"user":{"password":"[redacted]"},"api_key":"[redacted]"}`, false},
		{"form bracketed name", "application/x-www-form-urlencoded", "user%5Bpassword%5D=s3cret&user[name]=ada", 100, "user%5Bpassword%5D=[redacted]&user[name]=ada", false},
		{"multipart bare LF", mp, "--XyZ\nContent-Disposition: form-data; name=\"password\"\n\ns3cret\n--XyZ--\n", 1000,
			"--XyZ\nContent-Disposition: form-data; name=\"password\"\n\n[redacted]\r\n--XyZ--\n", false},
		{"other type kept", "text/plain", "password=s3cret", 100, "password=s3cret", false},
		{"empty", "application/json", "", 100, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated := r.Body(tt.contentType, []byte(tt.body), tt.limit)
			if got != tt.want || truncated != tt.truncated {
				t.Errorf("Body = %q, %v\n want %q, %v", got, truncated, tt.want, tt.truncated)
			}
		})
	}
}

// FuzzRedactBody checks that no body, however malformed, panics the
// redactor or makes it keep more than the limit plus markers, and that a
// secret value in a well-formed JSON or form body never survives.
func FuzzRedactBody(f *testing.F) {
	f.Add("application/json", `{"password":"SECRETVALUE","a":[1,{"b":null}]}`)
	f.Add("application/x-www-form-urlencoded", "a=1&password=SECRETVALUE")
	f.Add("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nSECRETVALUE\r\n--b--")
	f.Add("application/json", `[[[[{"token":{"token":"SECRETVALUE"}}]]]]`)
	r := NewRedactor(nil, nil)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		got, _ := r.Body(contentType, []byte(body), 4096)
		if len(body) <= 4096 && len(got) > len(body)+len(Redacted)*strings.Count(body, "password")+len(Redacted)*64 {
			t.Fatalf("kept %d bytes of a %d byte body", len(got), len(body))
		}
		if strings.HasPrefix(contentType, "application/json") && strings.Contains(body, `"password":"SECRETVALUE"`) && strings.Contains(got, "SECRETVALUE") {
			t.Fatalf("secret survived: %q", got)
		}
	})
}
