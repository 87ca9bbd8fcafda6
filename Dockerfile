# Portcullis container image: a static binary on distroless, non-root.
#   docker build -t portcullis .
#   docker run -p 8080:8080 -v $PWD/portcullis.yaml:/etc/portcullis/portcullis.yaml:ro \
#     -v portcullis-state:/var/lib/portcullis portcullis
# (Not built in this repository's CI: the build machines have no Docker engine.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go (SQLite through modernc.org/sqlite): no cgo, a static binary.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/portcullis ./cmd/portcullis \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/portcullis /usr/local/bin/portcullis
# Writable state (ACME account and certificates, bans, audit database),
# owned by the nonroot user so a fresh named volume is writable too.
COPY --from=build --chown=65532:65532 /out/state /var/lib/portcullis
WORKDIR /var/lib/portcullis
VOLUME ["/var/lib/portcullis"]
USER nonroot:nonroot
EXPOSE 8080 8443
# Ports below 1024 need CAP_NET_BIND_SERVICE (docker run --cap-add); the
# example listens on 8080.
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["run", "-c", "/etc/portcullis/portcullis.yaml"]
