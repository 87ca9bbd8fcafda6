package store

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Records are stored as DEFLATE with a preset dictionary of what every
// record repeats (field names, CRS tags, common headers): a record of about
// 850 bytes of JSON takes about a quarter of that, so the same MaxBytes
// keeps several times the history. The first byte says how a blob is
// encoded, so a future dictionary can be added beside this one:
//
//	'{'   plain JSON
//	0x01  DEFLATE (RFC 1951) with dictionaryV1
const (
	encodingDeflateV1 = 0x01
)

// dictionaryV1 must never change: stored records need it to be read. The
// most common strings come last, where DEFLATE reaches them cheapest.
var dictionaryV1 = []byte(`"sampled":true,"request_body":"","request_body_truncated":true,"peer":"","allow_listed":"","as_org":"","fail_open":true,` +
	`"Content-Type":["application/x-www-form-urlencoded"],"Content-Length":["` +
	`"Referer":["https://"],"X-Forwarded-For":["","Sec-Fetch-Mode":["navigate"],"Sec-Fetch-Site":["same-origin"],"Connection":["keep-alive"],` +
	`Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15` +
	`Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","` +
	`"reason":"rate limit exceeded","reason":"banned until ","stage":"ratelimit","stage":"ban","stage":"reputation","stage":"geoip","stage":"protocol",` +
	`"action":"error","stage":"proxy","reason":"upstream ","action":"detected","reason":"1 rule(s) matched, anomaly score  below the threshold",` +
	`{"id":949110,"message":"Inbound Anomaly Score Exceeded (Total Score: ","severity":"emergency","tags":["anomaly-evaluation","OWASP_CRS"],"phase":2},` +
	`{"id":980170,"message":"Anomaly Scores: (Inbound Scores: blocking=, detection=, per_pl=-0-0-0, threshold=5) - (Outbound Scores: blocking=0, detection=0, per_pl=0-0-0-0, threshold=4) - (SQLI=0, XSS=0, RFI=0, LFI=0, RCE=0, PHPI=0, HTTP=0, SESS=0, COMBINED_SCORE=)","tags":["reporting","OWASP_CRS"],"phase":5}],` +
	`"attack-protocol","attack-rce","attack-lfi","attack-xss","attack-injection-php","attack-reputation-scanner","capec/1000/210/272",` +
	`"rules":[{"id":94,"message":"SQL Injection Attack Detected via libinjection","data":"Matched Data:  found within ARGS:: ","variable":"ARGS:",` +
	`"matched_data":"","severity":"critical","tags":["application-multi","language-multi","platform-multi","attack-sqli","paranoia-level/1","OWASP_CRS","capec/1000/152/248/66","PCI/6.5.2"],"paranoia_level":1,"phase":2},` +
	`"status":403,"action":"blocked","stage":"waf","reason":"request denied by rule 949110","waf_mode":"block","inbound_anomaly_score":5,` +
	`{"id":"","time":"2026-11-26T00:00:00.000000000Z","client_ip":"","client_port":,"country":"","asn":,"host":"","method":"GET","uri":"/","protocol":"HTTP/1.1",` +
	`"site":"","route":"/","status":200,"action":"allowed","waf_mode":"block","inbound_anomaly_score":0,"outbound_anomaly_score":0,` +
	`"request_headers":{"Accept":["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],"Accept-Encoding":["gzip, deflate, br"],` +
	`"Accept-Language":["en-US,en;q=0.9"],"Cookie":["[redacted]"],"Authorization":["[redacted]"],"User-Agent":["Mozilla/5.0 (` +
	`"upstream":"http://","bytes_sent":,"duration_us":{"waf":,"upstream":,"total":}}`)

// codec compresses and expands record blobs, reusing its buffers; it is
// not safe for concurrent use (one per goroutine or from a pool).
type codec struct {
	w   *flate.Writer
	out bytes.Buffer
}

func newCodec() *codec {
	w, err := flate.NewWriterDict(io.Discard, 2, dictionaryV1)
	if err != nil {
		panic(err) // only for an invalid level
	}
	return &codec{w: w}
}

// compress returns the stored form of a record's JSON (a new slice).
func (c *codec) compress(js []byte) ([]byte, error) {
	c.out.Reset()
	c.out.WriteByte(encodingDeflateV1)
	c.w.Reset(&c.out)
	if _, err := c.w.Write(js); err != nil {
		return nil, err
	}
	if err := c.w.Close(); err != nil {
		return nil, err
	}
	// Keep plain JSON when compression does not pay (tiny records).
	if c.out.Len() >= len(js) {
		return bytes.Clone(js), nil
	}
	return bytes.Clone(c.out.Bytes()), nil
}

var readers = sync.Pool{New: func() any { return flate.NewReaderDict(bytes.NewReader(nil), dictionaryV1) }}

// expand returns the JSON of a stored record.
func expand(blob []byte) ([]byte, error) {
	if len(blob) == 0 {
		return nil, errors.New("empty record")
	}
	switch blob[0] {
	case '{':
		return blob, nil
	case encodingDeflateV1:
		r := readers.Get().(io.ReadCloser)
		defer readers.Put(r)
		if err := r.(flate.Resetter).Reset(bytes.NewReader(blob[1:]), dictionaryV1); err != nil {
			return nil, err
		}
		out, err := io.ReadAll(io.LimitReader(r, maxRecordJSON+1))
		if err != nil {
			return nil, fmt.Errorf("expand record: %w", err)
		}
		if len(out) > maxRecordJSON {
			return nil, errors.New("expand record: longer than the largest record")
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown record encoding 0x%02x", blob[0])
}

// maxRecordJSON bounds an expanded record, as audit.MaxRecordSize bounds a
// line in a file.
const maxRecordJSON = 16 << 20
