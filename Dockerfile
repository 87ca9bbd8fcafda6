# Portcullis container image: a static binary on distroless, non-root.
#   docker build -t portcullis .
#   docker run -p 8080:8080 -v $PWD/portcullis.yaml:/etc/portcullis/portcullis.yaml:ro \
#     -v portcullis-state:/var/lib/portcullis portcullis
#
# The configuration is mounted read-only; everything Portcullis writes goes
# to the volume /var/lib/portcullis, named by PORTCULLIS_STATE_DIR: the
# default tls.state_dir (ACME account and certificates, bans, the audit
# database) and the default audit file. Paths the configuration sets itself
# are relative to /etc/portcullis, like every path in the file.
# Commands run with `docker exec` see the same environment and user:
#   docker exec CONTAINER portcullis bans add -c /etc/portcullis/portcullis.yaml 192.0.2.8
# (Not built in this repository's CI: the build machines have no Docker engine.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go (SQLite through modernc.org/sqlite): no cgo, a static binary.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/portcullis ./cmd/portcullis \
 && mkdir -m 0700 -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/portcullis /usr/local/bin/portcullis
# Writable state, owned by the nonroot user (65532) and 0700 (keys, bans,
# audit records), so a fresh named volume is writable and private too.
COPY --from=build --chown=65532:65532 /out/state /var/lib/portcullis
ENV PORTCULLIS_STATE_DIR=/var/lib/portcullis
WORKDIR /var/lib/portcullis
VOLUME ["/var/lib/portcullis"]
USER nonroot:nonroot
EXPOSE 8080 8443
# The image has no shell and no curl: the binary checks itself. With an
# admin block it asks /readyz; without one, it connects to every listener.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/portcullis", "health", "-c", "/etc/portcullis/portcullis.yaml", "--timeout", "5s"]
# Ports below 1024 need CAP_NET_BIND_SERVICE (docker run --cap-add); the
# example listens on 8080.
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["run", "-c", "/etc/portcullis/portcullis.yaml"]
