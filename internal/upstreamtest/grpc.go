package upstreamtest

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// GRPCService is a real gRPC service (grpc.testing.TestService) to put
// behind the proxy: unary echo with header and trailer metadata (the
// trailer also reports the X-Forwarded-For the service saw), a call with
// the payload "wait" that waits for its deadline, and a bidirectional echo
// stream.
type GRPCService struct {
	testpb.UnimplementedTestServiceServer
}

// UnaryCall echoes the payload, or waits for the deadline on "wait".
func (GRPCService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	body := in.GetPayload().GetBody()
	if string(body) == "wait" {
		<-ctx.Done() // the deadline must arrive here, through the proxy
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	md, _ := metadata.FromIncomingContext(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-header", "h1"))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t1", "x-saw-forwarded-for", strings.Join(md.Get("x-forwarded-for"), ",")))
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: append([]byte("echo:"), body...)}}, nil
}

// FullDuplexCall echoes every message of the stream as it arrives.
func (GRPCService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		out := &testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: append([]byte("echo:"), in.GetPayload().GetBody()...)}}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}
