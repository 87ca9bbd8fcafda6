package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/portcullis-waf/portcullis/internal/upstreamtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const grpcConfig = `
listeners:
  - address: "127.0.0.1:0"
  - address: "127.0.0.1:0"
    protocol: https
upstreams:
  - name: grpc
    h2c: true
    targets: ["UPSTREAM"]
sites:
  - hosts: ["grpc.test"]
    tls:
      certificate: files
      cert_file: CERTFILE
      key_file: KEYFILE
    routes:
      - path: /grpc.testing.TestService/
        grpc: true
        upstream: grpc
        waf:
          crs_variables:
            allowed_request_content_type: "|application/grpc|"
`

// TestProxyGRPC: a google.golang.org/grpc client talks TLS HTTP/2 to
// Portcullis's https listener, through the WAF, to the proxy, which forwards
// over cleartext HTTP/2 (h2c) to a grpc server: the composition of the
// stages (#7). A unary call and a bidirectional stream in lock step pass
// (the WAF judges the headers only, so the stream is not held), an attack
// in the call's metadata is blocked and recorded, and gRPC's content type
// over HTTP/1.1 passes the WAF but is refused. The proxy's own gRPC
// behaviour (trailers, deadlines) is proxy's TestProxyGRPC.
func TestProxyGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	testpb.RegisterTestServiceServer(gs, upstreamtest.GRPCService{})
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()

	certFile, keyFile, roots := writeCert(t, t.TempDir(), "grpc.test")
	cfg := strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile).Replace(grpcConfig)
	tp := startProxy(t, cfg, "http://"+lis.Addr().String())
	addr := strings.TrimPrefix(tp.HTTPS, "https://")
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "grpc.test"})),
		grpc.WithAuthority("grpc.test"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	t.Run("unary with header and trailer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var header, trailer metadata.MD
		resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}}, grpc.Header(&header), grpc.Trailer(&trailer))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(resp.GetPayload().GetBody()); got != "echo:hello" {
			t.Errorf("body %q", got)
		}
		if header.Get("x-header")[0] != "h1" || len(trailer.Get("x-trailer")) == 0 || trailer.Get("x-trailer")[0] != "t1" {
			t.Errorf("header %v trailer %v", header, trailer)
		}
		if got := trailer.Get("x-saw-forwarded-for"); len(got) == 0 || got[0] != "127.0.0.1" {
			t.Errorf("upstream saw X-Forwarded-For %v", got)
		}
	})

	t.Run("bidirectional stream in lock step", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stream, err := client.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each reply is awaited before the next message is sent: a WAF
		// (or proxy) that waited for the whole request body would hang here.
		for i := 0; i < 5; i++ {
			msg := strings.Repeat("x", i+1)
			if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(msg)}}); err != nil {
				t.Fatal(err)
			}
			in, err := stream.Recv()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if got := string(in.GetPayload().GetBody()); got != "echo:"+msg {
				t.Fatalf("message %d: %q", i, got)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("end of stream: %v (the OK status comes in the trailers)", err)
		}
	})

	t.Run("WAF judges the headers", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "referer", "1' UNION SELECT password FROM users--")
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hi")}})
		if status.Code(err) != codes.PermissionDenied { // grpc-go's reading of HTTP 403
			t.Errorf("attack in metadata: %v, want PermissionDenied", err)
		}
		found := eventually(func() bool {
			tp.records.mu.Lock()
			defer tp.records.mu.Unlock()
			for _, e := range tp.records.entries {
				if e.Stage == "waf" && e.Action == "blocked" && strings.HasPrefix(e.URI, "/grpc.testing.TestService/UnaryCall") {
					return true
				}
			}
			return false
		})
		if !found {
			t.Error("no WAF block record for the gRPC call")
		}
	})

	t.Run("not gRPC on a gRPC route", func(t *testing.T) {
		// gRPC's content type over HTTP/1.1 passes the rule engine (the
		// type is allowed) but is no gRPC call.
		hc := httpsClient(addr, roots, false)
		resp, err := hc.Post("https://grpc.test/grpc.testing.TestService/UnaryCall", "application/grpc", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			e := tp.entryFor(t, resp.Header.Get("X-Request-Id"))
			t.Errorf("HTTP/1.1 on the gRPC route: %d, want 415 (%s %v)", resp.StatusCode, e.Reason, ruleIDs(e))
		}
	})
}

// TestProxyWebSocket: a WebSocket echo through the whole pipeline, whose
// handshake is inspected by the WAF like any request (#7). The proxy's
// idle timeout is proxy's TestProxyWebSocket.
func TestProxyWebSocket(t *testing.T) {
	up := newBackend(t, "ws")
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
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /ws
        upstream: app
        websocket_idle_timeout: 1s
`
	tp := startProxy(t, cfg, up.URL())
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
	if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "echo:ping" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// The handshake goes through the WAF like any request.
	_, resp, err = websocket.Dial(ctx, wsURL+"?q=%3Cscript%3Ealert(1)%3C/script%3E", &websocket.DialOptions{Host: "portcullis.test"})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Errorf("attack in the handshake: %d %v, want 403", code, err)
	}
}
