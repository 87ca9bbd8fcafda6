package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit/store/storetest"
)

func TestCompressRoundTrip(t *testing.T) {
	c := newCodec()
	g := storetest.NewGenerator(11, start, time.Hour, 2000)
	var plain, stored int
	for range 2000 {
		js, err := json.Marshal(g.Next())
		if err != nil {
			t.Fatal(err)
		}
		blob, err := c.compress(js)
		if err != nil {
			t.Fatal(err)
		}
		back, err := expand(blob)
		if err != nil || !bytes.Equal(back, js) {
			t.Fatalf("round trip failed: %v", err)
		}
		plain, stored = plain+len(js), stored+len(blob)
	}
	t.Logf("%d bytes of JSON stored in %d (%.1f%%)", plain, stored, 100*float64(stored)/float64(plain))
	if stored*2 > plain {
		t.Fatalf("records compress to %d of %d bytes: the dictionary no longer fits them", stored, plain)
	}
	cases := []struct {
		name string
		blob []byte
		ok   bool
	}{
		{"plain JSON stays readable", []byte(`{"id":"x"}`), true},
		{"tiny record kept plain", mustCompress(t, c, []byte(`{}`)), true},
		{"empty", nil, false},
		{"unknown encoding", []byte{0x02, 1, 2}, false},
		{"corrupt deflate", []byte{encodingDeflateV1, 0xff, 0xff, 0xff}, false},
	}
	for _, tc := range cases {
		if _, err := expand(tc.blob); (err == nil) != tc.ok {
			t.Errorf("%s: expand error %v", tc.name, err)
		}
	}
}

func mustCompress(t *testing.T, c *codec, js []byte) []byte {
	t.Helper()
	b, err := c.compress(js)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != '{' {
		t.Fatalf("a %d-byte record was compressed to %d bytes", len(js), len(b))
	}
	return b
}

func BenchmarkCompress(b *testing.B) {
	c := newCodec()
	g := storetest.NewGenerator(11, start, time.Hour, 1000)
	var recs [][]byte
	for range 1000 {
		js, _ := json.Marshal(g.Next())
		recs = append(recs, js)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		if _, err := c.compress(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/record")
}

func BenchmarkExpand(b *testing.B) {
	c := newCodec()
	g := storetest.NewGenerator(11, start, time.Hour, 1000)
	var blobs [][]byte
	for range 1000 {
		js, _ := json.Marshal(g.Next())
		blob, _ := c.compress(js)
		blobs = append(blobs, blob)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := expand(blobs[i%len(blobs)]); err != nil {
			b.Fatal(err)
		}
	}
}
