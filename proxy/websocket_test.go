package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/portcullis-waf/portcullis/internal/upstreamtest"
)

// TestProxyWebSocket: a WebSocket echo through the proxy stage, and the
// route's idle timeout closing a silent connection (#7). That the handshake
// is inspected by the WAF is gateway's TestProxyWebSocket.
func TestProxyWebSocket(t *testing.T) {
	up := upstreamtest.New(t, "ws")
	up.Handler = func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	}
	cfg := `upstreams:
  - name: app
    targets: ["` + up.URL() + `"]
sites:
  - hosts: ["*"]
    routes:
      - path: /ws
        upstream: app
        websocket_idle_timeout: 1s
`
	tp := startFront(t, cfg)
	wsURL := "ws" + strings.TrimPrefix(tp.URL, "http") + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Host: "portcullis.test"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	// Traffic more often than the idle timeout keeps the connection open.
	for i := 0; i < 4; i++ {
		if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		_, msg, err := c.Read(ctx)
		if err != nil || string(msg) != "echo:ping" {
			t.Fatalf("echo %d: %q %v", i, msg, err)
		}
		// The behaviour under test: pauses shorter than the 1s idle
		// timeout, 1.2s in all, must not close the connection.
		time.Sleep(300 * time.Millisecond)
	}
	// Silence past the idle timeout: the proxy closes the connection
	// (the read's own deadline is far longer, so it is not what ends it).
	start := time.Now()
	idle, cancelIdle := context.WithTimeout(context.Background(), 30*time.Second)
	_, _, err = c.Read(idle)
	if err == nil || idle.Err() != nil {
		t.Errorf("idle connection not closed by the proxy: %v after %s", err, time.Since(start))
	}
	cancelIdle()
	t.Logf("idle WebSocket closed after %s", time.Since(start).Round(10*time.Millisecond))
}
