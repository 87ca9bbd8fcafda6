package challenge

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/portcullis-waf/portcullis/respond"
)

// solver is the page's script. It stays constant (the nonce and difficulty
// come from data attributes) so that the page's Content-Security-Policy can
// allow exactly it by hash. SHA-256 is computed in plain JavaScript, not
// with crypto.subtle, which browsers offer only in secure contexts (not on
// plain-HTTP sites). Work is done in slices so the page stays responsive.
const solver = `(function () {
  var K = [0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
    0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
    0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
    0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
    0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
    0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
    0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
    0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];
  var w = new Array(64);
  function sha256(s) {
    var m = [], i, t;
    for (i = 0; i < s.length; i++) m.push(s.charCodeAt(i) & 255);
    var bitLen = s.length * 8;
    m.push(0x80);
    while (m.length % 64 !== 56) m.push(0);
    m.push(0, 0, 0, 0, (bitLen >>> 24) & 255, (bitLen >>> 16) & 255, (bitLen >>> 8) & 255, bitLen & 255);
    var H = [0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19];
    for (var j = 0; j < m.length; j += 64) {
      for (t = 0; t < 16; t++) w[t] = (m[j+4*t] << 24) | (m[j+4*t+1] << 16) | (m[j+4*t+2] << 8) | m[j+4*t+3];
      for (t = 16; t < 64; t++) {
        var x = w[t-15], y = w[t-2];
        var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[t] = (w[t-16] + s0 + w[t-7] + s1) | 0;
      }
      var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (t = 0; t < 64; t++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
      H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
    }
    return H;
  }
  function zeros(H) {
    for (var i = 0, n = 0; i < 8; i++) {
      var v = H[i] >>> 0;
      if (v !== 0) return n + Math.clz32(v);
      n += 32;
    }
    return n;
  }
  var el = document.getElementById("pc");
  var nonce = el.getAttribute("data-nonce"), need = +el.getAttribute("data-bits");
  var secure = el.getAttribute("data-secure") === "1";
  var status = document.getElementById("pc-status");
  status.textContent = "Checking your browser\u2026";
  var counter = 0;
  function work() {
    for (var end = counter + 20000; counter < end; counter++) {
      if (zeros(sha256(nonce + ":" + counter)) >= need) {
        document.cookie = "portcullis_pow=" + nonce + ":" + counter + "; path=/; max-age=300; SameSite=Lax" + (secure ? "; Secure" : "");
        status.textContent = "Done, loading\u2026";
        location.reload();
        return;
      }
    }
    setTimeout(work, 0);
  }
  setTimeout(work, 0);
})();`

const style = `body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.4em}code{font-size:.9em}`

var (
	scriptHash = hashOf(solver)
	styleHash  = hashOf(style)
	// csp allows the page's own script and style only, no other resource,
	// no framing.
	csp = "default-src 'none'; script-src '" + scriptHash + "'; style-src '" + styleHash + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

var page = template.Must(template.New("challenge").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
<title>Checking your browser</title><style>` + style + `</style></head>
<body><h1>One moment</h1>
<div id="pc" data-nonce="{{.Nonce}}" data-bits="{{.Bits}}" data-secure="{{.Secure}}"></div>
<p id="pc-status">This site checks that visitors use a web browser before letting them in.</p>
<noscript><p><strong>JavaScript is required to continue.</strong> This check keeps automated traffic
away from the site; it runs a short computation in your browser and then loads the page.
Enable JavaScript and reload this page, or contact the site owner if you cannot.</p></noscript>
<p>Request id: <code>{{.RequestID}}</code></p>
<script>` + solver + `</script>
</body></html>
`))

// ReasonChallengeRequired is the machine-readable reason of the JSON
// answer: the request needs a pass the client can only get by running the
// page's script in a browser.
const ReasonChallengeRequired = "challenge_required"

// jsonMessage tells an API client what it cannot do, without naming what
// sent it here (no route, filter or rule).
const jsonMessage = "This resource is protected by a browser check: a JavaScript proof of work that a web browser solves " +
	"to obtain a pass cookie. A client that does not run JavaScript cannot pass it. Open the site in a browser, " +
	"or contact the site's administrator and quote the request id."

// jsonAnswer is the challenge's answer to a client that asked for JSON.
// "status", "error" and "request_id" are the fields of every JSON refusal
// (package respond); "reason" tells it apart from a block.
type jsonAnswer struct {
	Status    int    `json:"status"`
	Error     string `json:"error"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
	Message   string `json:"message"`
}

// ServePage answers r, a request of cl, with the challenge and status (403
// on a challenged route or after a deny list or GeoIP hit, 429 after a
// rate limit): the proof-of-work page, or, for a client that asked for
// JSON (respond.WantsJSON, the decision block pages follow), a JSON body
// with the status, the reason ReasonChallengeRequired and the request id.
// An API client cannot run the page's script, so it gets no nonce, only
// the explanation. Either is not the content asked for, and must not be
// cached or indexed.
func (c *Challenger) ServePage(w http.ResponseWriter, r *http.Request, cl Client, requestID string, now time.Time, status int) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if respond.WantsJSON(r) {
		text := http.StatusText(status)
		if text == "" {
			text = "Error"
		}
		body, err := json.Marshal(jsonAnswer{Status: status, Error: text, Reason: ReasonChallengeRequired, RequestID: requestID, Message: jsonMessage})
		if err != nil { // strings and an int: cannot fail
			panic(fmt.Errorf("challenge: encode the JSON answer: %w", err))
		}
		body = append(body, '\n')
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	w.WriteHeader(status)
	secure := "0"
	if cl.Secure {
		secure = "1"
	}
	_ = page.Execute(w, struct {
		Nonce, Bits, Secure, RequestID string
	}{c.Nonce(cl, now), strconv.Itoa(c.o.Difficulty), secure, requestID})
}
