package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/internal/upstreamtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const grpcConfig = `
upstreams:
  - name: grpc
    h2c: true
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /grpc.testing.TestService/
        grpc: true
        upstream: grpc
`

// TestProxyGRPC: a google.golang.org/grpc client talks TLS HTTP/2 to the
// proxy stage, which forwards over cleartext HTTP/2 (h2c) to a grpc server:
// unary calls with header and trailer metadata, a bidirectional stream in
// lock step, a deadline that reaches the server, and a non-gRPC request on
// the gRPC route refused (#7). The same call through the WAF (headers
// judged, body streamed) is gateway's TestProxyGRPC.
func TestProxyGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	testpb.RegisterTestServiceServer(gs, upstreamtest.GRPCService{})
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()

	tp := newFront(t, strings.ReplaceAll(grpcConfig, "UPSTREAM", "http://"+lis.Addr().String()))
	tp.srv.EnableHTTP2 = true
	tp.srv.StartTLS()
	roots := x509.NewCertPool()
	roots.AddCert(tp.srv.Certificate())
	addr := tp.srv.Listener.Addr().String()
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "example.com"})),
		grpc.WithAuthority("example.com"))
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
		if len(header.Get("x-header")) == 0 || header.Get("x-header")[0] != "h1" || len(trailer.Get("x-trailer")) == 0 || trailer.Get("x-trailer")[0] != "t1" {
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
		// Each reply is awaited before the next message is sent: a proxy
		// that waited for the whole request body would hang here.
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

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("wait")}})
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("code %v (%v), want DeadlineExceeded", status.Code(err), err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("deadline of 300ms took %s", d)
		}
	})

	t.Run("upstream down: a gRPC status, not a page", func(t *testing.T) {
		dead, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		deadAddr := dead.Addr().String()
		dead.Close() // connection refused from now on
		down := newFront(t, strings.ReplaceAll(grpcConfig, "UPSTREAM", "http://"+deadAddr))
		down.srv.EnableHTTP2 = true
		down.srv.StartTLS()
		droots := x509.NewCertPool()
		droots.AddCert(down.srv.Certificate())
		dconn, err := grpc.NewClient("passthrough:///"+down.srv.Listener.Addr().String(),
			grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: droots, ServerName: "example.com"})),
			grpc.WithAuthority("example.com"))
		if err != nil {
			t.Fatal(err)
		}
		defer dconn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = testpb.NewTestServiceClient(dconn).UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}})
		st := status.Convert(err)
		if st.Code() != codes.Unavailable || !strings.HasPrefix(st.Message(), "request ") || strings.Contains(st.Message(), deadAddr) || strings.Contains(st.Message(), "html") {
			t.Errorf("dead upstream: %v, want UNAVAILABLE naming the request id only", err)
		}
	})

	t.Run("not gRPC on a gRPC route", func(t *testing.T) {
		// gRPC's content type over HTTP/1.1 is no gRPC call.
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "example.com"},
			TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
		}}
		resp, err := hc.Post("https://"+addr+"/grpc.testing.TestService/UnaryCall", "application/grpc", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Proto != "HTTP/1.1" || resp.StatusCode != http.StatusUnsupportedMediaType {
			e := tp.entryFor(t, resp.Header.Get("X-Request-Id"))
			t.Errorf("%s on the gRPC route: %d, want HTTP/1.1 and 415 (%s)", resp.Proto, resp.StatusCode, e.Reason)
		}
	})
}
